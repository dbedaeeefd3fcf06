import type { AccessWidth, GuestMemory } from './bus.js';
import type { Icount } from './cpu.js';
import type { StateSection } from './snapshot.js';
import type { PlainValue } from './values.js';

/**
 * The device contract.
 *
 * A device is a state machine the guest sees through MMIO registers, plus a host half (a console,
 * a disk file, a socket). Everything non-deterministic crosses one of three doors of
 * {@link DeviceEnv} — `inject`, `nondet`, `output` — and nothing else may. A device that keeps to
 * this is recorded, replayed and made fault tolerant by the machine without further work.
 *
 * Guest-visible state changes only inside `readMmio`/`writeMmio` and `applyEvent`. Inside them:
 * no `Date.now`, no `Math.random`, no host timers, no host-dependent iteration order, no I/O, no
 * `await`. Host work (reading a file, a socket) happens in the host half, which hands its results
 * to the guest side only through `env.inject`.
 */

/** An asynchronous input for a device: what arrived, as plain data. */
export interface DeviceEventPayload {
  /** What happened, in the device's own words: `rx-bytes`, `request-completed`, `timer-fired`. */
  readonly type: string;
  readonly data?: PlainValue;
}

/** An event addressed to one device of a machine. */
export interface DeviceEvent extends DeviceEventPayload {
  /** The name of the device it is for (see {@link DevicePlacement.name}). */
  readonly device: string;
}

/** An interrupt line a device drives: a PLIC source, or a line into the hart. */
export interface InterruptLine {
  /** Raises (true) or lowers (false) the line. Level-triggered; repeating a level is harmless. */
  set(level: boolean): void;
}

/**
 * Guest time, provided by the machine. It is a function of the execution point and of clock samples
 * the machine logs as events (host clock) or of the execution point alone (`--clock icount`), so
 * a replay reads the same times without logging each read. Devices read time only through this,
 * never from the host directly. Read it only inside an MMIO handler or `applyEvent`.
 */
export interface GuestClock {
  /** Nanoseconds since the machine booted (what CLINT `mtime` counts, at 100 ns per tick). */
  monotonicNs(): number;
  /** Nanoseconds since the Unix epoch (what a real-time clock reports). */
  realtimeNs(): number;
}

/** Power control of the board, for devices such as the test finisher. */
export interface MachineControl {
  /** Stops the machine after the current step with this exit status (0 = success). */
  powerOff(exitStatus: number): void;
  /** Resets the machine after the current step. */
  reset(): void;
}

/**
 * What the machine gives a device. Valid from {@link Device.attach} until the machine is disposed.
 */
export interface DeviceEnv {
  /** The device's name within the machine. */
  readonly name: string;

  /**
   * Door 1: host → device, asynchronous. Called by the host half (never by guest-side code) at
   * any time. Standalone and primary: the event is applied by {@link Device.applyEvent} at the next
   * step boundary (and, on a primary, logged with that icount). Backup and replay: ignored; the
   * logged event is applied at its recorded icount instead.
   */
  inject(event: DeviceEventPayload): void;

  /**
   * Door 1, scheduled: inject `event` once guest time reaches `monotonicNs` (immediately when it
   * already has). A later call with the same `key` replaces the earlier one. Used for device
   * timers (CLINT mtimecmp). Backup and replay: ignored, as for `inject`.
   */
  injectAt(key: string, monotonicNs: number, event: DeviceEventPayload): void;
  /** Cancels a pending {@link DeviceEnv.injectAt} with this key, if any. */
  cancelInjectAt(key: string): void;

  /**
   * Door 2: a value decided by the host during an instruction (an entropy byte, a sensor value).
   * Call it only from an MMIO handler or `applyEvent`. Standalone: returns `read()`. Primary:
   * returns `read()` and logs it with the current icount and `key`. Backup and replay: returns
   * the logged value without calling `read`; a different `key` at this point is a divergence.
   * `key` names what is read (`entropy`, `temperature`) so a replay can check it.
   */
  nondet<T extends PlainValue>(key: string, read: () => T): T;

  /**
   * Door 3: device → outside world (a console byte, a network frame, a write to a shared disk).
   * Standalone: delivered now. Primary: held until the backup acknowledged a log position that
   * covers this execution point (the output rule). Backup and replay: dropped. `kind` names the
   * stream (`console`, `frame`, `disk-write`).
   *
   * The promise resolves when the output is released (at once when standalone, on a backup and on
   * a replay, where nothing waits). A device whose host half acts on the outside world itself (a
   * disk write) awaits it before acting; on a machine that halts, it never resolves. Most devices
   * ignore it.
   */
  output(kind: string, data: Uint8Array): Promise<void>;

  /** Guest memory for DMA; use only inside an MMIO handler or `applyEvent`. */
  readonly memory: GuestMemory;
  /** The device's interrupt line (its PLIC source), or a line that goes nowhere if it has none. */
  readonly irq: InterruptLine;
  /** Guest time; read it only inside an MMIO handler or `applyEvent`. */
  readonly clock: GuestClock;
  /** The current execution point. */
  icount(): Icount;
  /** Board power control. */
  readonly control: MachineControl;
}

/** Where the machine placed a device. */
export interface DevicePlacement {
  /** Unique within the machine; names the device in logs, snapshots and events. */
  readonly name: string;
  /** Guest-physical base address of the MMIO window. */
  readonly base: number;
  /** PLIC source number of its interrupt, or 0 for none. */
  readonly irq: number;
}

/** A value of a device-tree property. Numbers are 32-bit cells; `[]` is an empty property. */
export type DeviceTreeValue = string | readonly string[] | readonly number[] | Uint8Array;

/** A node of the flattened device tree the machine hands the guest in `a1`. */
export interface DeviceTreeNode {
  /** Node name with unit address, e.g. `serial@10000000`. */
  readonly name: string;
  readonly properties: { readonly [name: string]: DeviceTreeValue };
  readonly children?: readonly DeviceTreeNode[];
}

/**
 * A device model. A plain object of this type is a complete custom device: attach it to a machine
 * and it is recorded, replayed and fault tolerant.
 */
export interface Device {
  /** The kind of device (`ns16550a`, `virtio-blk`); names its state sections. */
  readonly kind: string;
  /** Size in bytes of the MMIO window (a multiple of 4 KiB is customary). */
  readonly mmioSize: number;

  /** Called once by the machine before the guest runs, with the device's placement. */
  attach(env: DeviceEnv, placement: DevicePlacement): void;

  /**
   * A guest load from the window. `offset` is from the window's base; `width` is 1, 2 or 4. Returns
   * an unsigned 32-bit value (the low `width` bytes count). May change guest-visible state (reading
   * a receive register pops a byte). Must not throw for any offset or width: answer as the
   * device's spec says (often 0).
   */
  readMmio(offset: number, width: AccessWidth): number;
  /** A guest store to the window. Same rules as {@link Device.readMmio}. */
  writeMmio(offset: number, width: AccessWidth, value: number): void;

  /**
   * Applies an event that came through `env.inject` (on a primary or standalone) or from the log (on
   * a backup or replay), at a step boundary. May change guest-visible state, raise interrupts and
   * do DMA through `env.memory`. Must accept any payload without throwing: a log may be hostile.
   */
  applyEvent(event: DeviceEventPayload): void;

  /** Puts the guest-visible state back to its power-on values (a board reset). */
  reset(): void;

  /** Saves the guest-visible state (not the host half's). */
  saveState(): StateSection;
  /** Restores a state saved by `saveState`; throws `SnapshotError` when it cannot. */
  restoreState(section: StateSection): void;

  /** The device-tree node that describes it, so guests can find it. */
  deviceTree?(placement: DevicePlacement): DeviceTreeNode;

  /**
   * Called once on a backup that becomes the primary, after the last logged event was applied.
   * A device reissues here the host work that was in flight (idempotent disk requests) so its
   * completions arrive through `inject` as on any primary.
   */
  onGoLive?(): void;

  /**
   * A follower (backup, replay) is about to apply a logged `event`: undefined when it can be
   * applied now, or a promise that settles once the host work it needs is done (a disk read the
   * backup performs itself, whose data the log does not carry). The machine waits for it.
   */
  whenReadyFor?(event: DeviceEventPayload): Promise<void> | undefined;

  /**
   * The execution point (icount) at which the oldest host work still pending was issued, when
   * that work is a read of shared state the primary may overwrite later (a backup reading a shared
   * disk itself); undefined when none is pending. A backup reports progress no further than it.
   */
  hostWorkPendingSince?(): number | undefined;

  /** Releases host resources (files, sockets) when the machine is disposed. */
  dispose?(): void;
}
