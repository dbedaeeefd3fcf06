/**
 * The checks every backend makes on its arguments before it touches anything, so that a bad VM id
 * or owner fails the same way (`ConfigError`) whichever arbiter is behind the interface.
 */
import { ConfigError } from '@ftvm/core';

/** 1 to 128 of `A-Z a-z 0-9 _ . : -`. */
const VM_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** 1 to 128 code points, none of them a control, format, surrogate, private-use or unassigned one. */
const OWNER_PATTERN = /^[^\p{C}]{1,128}$/u;

/**
 * Checks a VM id: 1 to 128 characters of `[A-Za-z0-9_.:-]`, and not `.` or `..` (ids become path
 * components in the file arbiter and key segments in etcd).
 */
export function assertValidVmId(vmId: unknown): asserts vmId is string {
  if (typeof vmId !== 'string' || !VM_ID_PATTERN.test(vmId) || vmId === '.' || vmId === '..') {
    throw new ConfigError(
      `invalid VM id ${describe(vmId)}: use 1 to 128 characters of A-Z a-z 0-9 _ . : - (not "." or "..")`,
    );
  }
}

/** Checks an epoch: a non-negative safe integer. */
export function assertValidEpoch(epoch: unknown, what = 'epoch'): asserts epoch is number {
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    throw new ConfigError(`invalid ${what} ${describe(epoch)}: must be a non-negative safe integer`);
  }
}

/** Checks an epoch to move from: a non-negative safe integer whose successor is one too. */
export function assertValidFromEpoch(fromEpoch: unknown): asserts fromEpoch is number {
  assertValidEpoch(fromEpoch, 'fromEpoch');
  if (fromEpoch >= Number.MAX_SAFE_INTEGER) {
    throw new ConfigError(`invalid fromEpoch ${fromEpoch}: its successor is not a safe integer`);
  }
}

/**
 * Checks an owner: 1 to 128 printable characters (no control, format, surrogate, private-use or
 * unassigned code points; so never a newline).
 */
export function assertValidOwner(owner: unknown): asserts owner is string {
  if (typeof owner !== 'string' || !OWNER_PATTERN.test(owner)) {
    throw new ConfigError(`invalid owner ${describe(owner)}: use 1 to 128 printable characters`);
  }
}

/** Checks the three arguments of `testAndSet`. */
export function assertValidTestAndSet(vmId: unknown, fromEpoch: unknown, owner: unknown): void {
  assertValidVmId(vmId);
  assertValidFromEpoch(fromEpoch);
  assertValidOwner(owner);
}

/** True when `value` could be a stored owner (what {@link assertValidOwner} accepts). */
export function isValidOwner(value: unknown): value is string {
  return typeof value === 'string' && OWNER_PATTERN.test(value);
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 40
      ? `${JSON.stringify(value.slice(0, 40))}… (${value.length} chars)`
      : JSON.stringify(value);
  }
  return typeof value === 'number' ? String(value) : typeof value;
}
