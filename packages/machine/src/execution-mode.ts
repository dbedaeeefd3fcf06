import type { DeviceEventPayload, PlainValue } from '@ftvm/core';
import type { MachineMode, SliceOutcome, SliceTimeLimit } from './machine-types.js';

/**
 * Steps of one CPU run inside a slice: between runs the machine covers pending outputs with a
 * progress mark (so an output waits for its log position at most this many steps) and checks a
 * slice's host-time limit.
 */
export const RUN_CHUNK_STEPS = 65_536;

/** The fewest steps a run is cut to when the guest runs slowly. */
export const RUN_CHUNK_STEPS_MIN = 1024;
/** What a run should take at most when a slice has a host-time limit: ~a fifth of the default 10 ms. */
const RUN_CHUNK_TARGET_NS = 2_000_000;

/**
 * Sizes the runs of a slice that has a host-time limit by how fast the guest runs now. Warm code
 * does 65,536 steps in well under a millisecond; code met for the first time (a kernel booting)
 * is interpreted and compiled at a microsecond a step or more, and a full-size run would hold the
 * thread for 100 ms past the limit: a peer waiting for heartbeats takes that for a failure.
 */
export class RunChunkSizer {
  #steps = RUN_CHUNK_STEPS;

  /** Steps for the next run. */
  get steps(): number {
    return this.#steps;
  }

  /** A run of `steps` took `elapsedNs` of host time: size the next one to take the target. */
  ran(steps: number, elapsedNs: number): void {
    if (steps <= 0) return;
    const fitting = elapsedNs <= 0 ? RUN_CHUNK_STEPS : Math.floor((RUN_CHUNK_TARGET_NS * steps) / elapsedNs);
    // Grows back gently (twice a run), shrinks at once.
    this.#steps = Math.max(RUN_CHUNK_STEPS_MIN, Math.min(RUN_CHUNK_STEPS, fitting, this.#steps * 2));
  }
}

/** What the output door answers when nothing holds the output. */
export const RELEASED: Promise<void> = Promise.resolve();
export const NOTHING_TO_RELEASE = (): void => {};

/**
 * One mode of a machine (the core README, "The device contract"): what its doors do with host inputs,
 * timers, non-deterministic reads and outputs, and how it runs a slice. The `Machine` delegates
 * to its current mode and swaps it when a replay goes live; a new role is a new implementation,
 * not new branches. (`live-mode.ts`: standalone and record; `replay-mode.ts`: replay.)
 *
 * The doors are called per MMIO access and `runSlice` per slice: implementations allocate nothing
 * per call beyond what the door itself hands out.
 */
export interface ExecutionMode {
  readonly mode: MachineMode;
  /** The sequence number the next appended entry gets (record) or the next entry expected (replay). */
  readonly nextSeq: number;
  /** True once a replay applied its whole log, the guest still running: it may go live. */
  readonly canGoLive: boolean;
  /** A replay held up by a device's own host work: settles when it is done (see `Machine.deviceWait`). */
  readonly deviceWait: Promise<void> | undefined;

  /** Door 1: a host input for `device`, applied at the next step boundary. */
  inject(device: string, event: DeviceEventPayload): void;
  /** Door 1, scheduled: arms a device timer at a guest time. */
  injectAt(device: string, key: string, deadlineNs: number, event: DeviceEventPayload): void;
  /** Door 2: a non-deterministic read. */
  nondet<T extends PlainValue>(device: string, key: string, read: () => T): T;
  /** Door 3: an output; the promise settles once the output may leave. */
  output(device: string, kind: string, data: Uint8Array): Promise<void>;

  /** Executes at most `maxSteps` steps (the machine is not stopped). */
  runSlice(maxSteps: number, limit: SliceTimeLimit | undefined): SliceOutcome;
  /** How long until the earliest device timer fires, or undefined when none will here. */
  nextTimerDelayNs(): number | undefined;
  /** Applies the pending host inputs now (before state is saved); a replay has none. */
  applyPendingInputs(): void;
  /** Record mode: marks the end of a recording that did not end by a power-off. */
  endRecording(): void;
  /** A restored machine: the log continues from `nextSeq`. */
  restoreLogPosition(nextSeq: number): void;
  /** A restored machine: what the mode keeps about the execution point starts again from it. */
  afterRestore(): void;
}
