// The machine's public types: its options, modes, outputs and slice outcomes.
import type { Device, LogSink, LogSource } from '@ftvm/core';
import type { HostClock } from './host.js';

/**
 * How the machine treats its doors (the core README, "The device contract"):
 * - `standalone`: host inputs are applied at the next step boundary, outputs delivered at once.
 * - `record`: as standalone, and every event and non-deterministic read is appended to a log.
 * - `replay`: host inputs are ignored; events come from a log at their icount, reads are answered
 *   from it and checked; outputs are dropped (or handed on for checking).
 */
export type MachineMode = 'standalone' | 'record' | 'replay';

/**
 * Guest time: `host` follows the host clock, sampled at step boundaries (each sample a logged
 * event) and interpolated from icount between samples; `icount` derives it from the execution point
 * alone (fully deterministic runs).
 */
export type ClockMode = 'host' | 'icount';

/** A device added by the user, next to the board's own. */
export interface UserDeviceSpec {
  /** Unique name (letters, digits, `-`, `_`). */
  readonly name: string;
  readonly device: Device;
  /** Guest-physical base; by default the next free place on the platform bus (0x0400_0000). */
  readonly base?: number;
  /** PLIC source; by default the next free platform-bus source (64…95); 0 for none. */
  readonly irq?: number;
}

export interface MachineOptions {
  /** Guest RAM in bytes (default 64 MiB). */
  readonly ramSizeBytes?: number;
  readonly mode?: MachineMode;
  readonly clock?: ClockMode;
  /** Host time for the `host` clock mode. Required unless `clock` is `icount` or mode is replay. */
  readonly hostClock?: HostClock;
  /** With the `icount` clock: the real-time clock's value at boot, ns since the epoch (default 2026-01-01). */
  readonly realtimeBaseNs?: number;
  /** Record mode: where log entries go. */
  readonly log?: LogSink;
  /** Replay mode: the log to follow. */
  readonly replayLog?: LogSource;
  /**
   * Record mode: log every output too (for record files), so a replay can check it produces the
   * same. Replay mode: the log holds outputs; check them. Part of the machine configuration.
   */
  readonly logOutputs?: boolean;
  /** Record mode: append a state-hash checkpoint every this many steps (0 = none). */
  readonly checkpointIntervalSteps?: number;
  /** Outputs of the devices (console bytes, frames). Not called in replay unless `replayOutputs`. */
  readonly onOutput?: (output: MachineOutput) => void;
  /** Replay mode: hand outputs to `onOutput` too (to check or show them). */
  readonly replayOutputs?: boolean;
  /** The kernel command line, as QEMU's `-append`: the guest finds it in `/chosen/bootargs`. */
  readonly bootArgs?: string;
  /** Devices beyond the board's. */
  readonly devices?: readonly UserDeviceSpec[];
  /**
   * The log's first sequence number: record mode appends from it, replay mode expects it first
   * (a backup cloned from a running primary follows the log from where the clone was taken).
   * Default 0; a restored snapshot sets it.
   */
  readonly firstSeq?: number;
  /**
   * Record mode: outputs are held until the owner of the machine releases them (an FT primary
   * releases an output when the backup acknowledged its covering log position). By default an
   * output is released as soon as it is covered. A held output is also covered at once: the CPU's
   * run ends after the instruction that produced it, where an output that is not held waits for
   * the run to end. That is at most once per 16,384 steps for each kind of output: of a burst of
   * console bytes the first is covered at once and the others when the run ends.
   */
  readonly holdOutputs?: boolean;
  /** Virtio devices for the slots, in slot order (slot n at 0x1000_1000 + n·0x1000). */
  readonly virtioSlots?: readonly (Device | undefined)[];
}

/**
 * One output of a device, with the point it was produced at.
 *
 * The output rule (docs/architecture.md, the fault-tolerance table): an output produced during the step
 * at icount N may leave only once the backup has acknowledged a log position from which it would
 * execute at least through step N. In record mode the machine hands an output to `onOutput` only
 * once the log holds such a position, `coveringSeq`: the first entry after the output that lets a
 * follower run past N (an event, checkpoint, progress mark or stop at an icount above N). When no
 * such entry comes by itself, the machine appends a progress mark for it at the end of the run
 * chunk or slice. Counting the entries appended before the output is not enough: a backup holding
 * them only may go live before N.
 */
export interface MachineOutput {
  readonly device: string;
  readonly kind: string;
  readonly data: Uint8Array;
  readonly icount: number;
  /**
   * Record mode: the sequence number of the log entry that covers this output; a backup that
   * acknowledged it may let it go. -1 on a standalone machine or a replay (no log to cover it).
   */
  readonly coveringSeq: number;
  /**
   * Lets the output go: resolves the promise the device got from its output door. A machine with
   * `holdOutputs` waits for this; otherwise it was called already. Calling it twice is harmless.
   */
  release(): void;
}

/** Why a slice of execution ended. */
export type SliceEnd =
  /** The step budget was used; more can run. */
  | 'budget'
  /** The hart waits for an interrupt; a host input or a timer must come first. */
  | 'waiting'
  /** Replay: the log has nothing more yet (a live stream); more can run once it arrives. */
  | 'log-starved'
  /** The machine stopped: powered off, or (replay) the log ended. */
  | 'stopped'
  /** Record mode: the log sink is full; run again once it has room. */
  | 'log-full';

/**
 * A bound on a slice in host time, so a guest that polls an MMIO register (slow steps) cannot hold
 * the thread for long: checked between run chunks of at most {@link RUN_CHUNK_STEPS} steps.
 */
export interface SliceTimeLimit {
  /** The host's monotonic clock, in nanoseconds. */
  readonly nowNs: () => number;
  /** End the slice once `nowNs()` reaches this. */
  readonly deadlineNs: number;
}

export interface SliceOutcome {
  readonly steps: number;
  readonly end: SliceEnd;
}
