import { VirtioStatus } from '../constants.js';

/**
 * The device status state machine of virtio 1.2 §2.1 ("Device Status Field") driven in the order
 * of §3.1.1 ("Driver Requirements: Device Initialization"):
 *
 *   reset (0) → ACKNOWLEDGE → +DRIVER → (features negotiated) +FEATURES_OK → (queues set up) +DRIVER_OK
 *
 * and, from §2.1.1, FAILED may be added at any point ("something went wrong in the guest"), and
 * writing 0 resets the device from any state (§2.4). Writing the status it already has changes
 * nothing. DEVICE_NEEDS_RESET (64) belongs to the device: it is never part of a transition, the
 * transport keeps it until a reset.
 *
 * Every other write (a bit skipped, a bit cleared, anything after FAILED but a reset) is refused:
 * the transport answers DEVICE_NEEDS_RESET and a configuration-change interrupt.
 */

const { acknowledge: A, driver: D, featuresOk: F, driverOk: OK, failed: FAILED } = VirtioStatus;

/** Allowed `from → to` status writes besides "reset" and "same again". Keys and values exclude bit 64. */
export const ALLOWED_STATUS_TRANSITIONS: ReadonlyMap<number, readonly number[]> = new Map<
  number,
  readonly number[]
>([
  // §3.1.1 step 2: the guest OS noticed the device.
  [0, [A, FAILED]],
  // §3.1.1 step 3: the guest OS knows how to drive it.
  [A, [A | D, A | FAILED]],
  // §3.1.1 step 5: feature negotiation done (the transport may still refuse FEATURES_OK, §2.2.2).
  [A | D, [A | D | F, A | D | FAILED]],
  // §3.1.1 step 8: queues set up; the device is live.
  [A | D | F, [A | D | F | OK, A | D | F | FAILED]],
  [A | D | F | OK, [A | D | F | OK | FAILED]],
]);

/** The device status bits a driver may write (all but DEVICE_NEEDS_RESET). */
export const DRIVER_STATUS_BITS = A | D | F | OK | FAILED;

/** What a driver's status write does. */
export type StatusWriteOutcome = 'reset' | 'unchanged' | 'advance' | 'refused';

/**
 * Classifies the driver's write of `written` (any byte; only 0 resets, as on QEMU) over the
 * `current` status (without bit 64). Bit 64 in `written` is ignored.
 */
export function classifyStatusWrite(current: number, written: number): StatusWriteOutcome {
  if (written === 0) return 'reset';
  const requested = written & ~VirtioStatus.deviceNeedsReset;
  if (requested === current) return 'unchanged';
  if ((requested & ~DRIVER_STATUS_BITS) !== 0) return 'refused';
  return ALLOWED_STATUS_TRANSITIONS.get(current)?.includes(requested) ? 'advance' : 'refused';
}
