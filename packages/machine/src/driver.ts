import type { LogSource } from '@ftvm/core';
import type { HostScheduler } from './host.js';
import type { Machine } from './machine.js';
import { sliceTimeLimit, Waiter } from './waiter.js';

/** How often a replay starved of a log that cannot wake it (no `onAvailable`) looks for more. */
export const LOG_POLL_INTERVAL_NS = 10_000_000;

/** Steps per slice: long enough to amortise the host round trip, short enough for prompt I/O. */
export const DEFAULT_SLICE_STEPS = 2_000_000;
/** Host time a slice may take at most, so the host's own work (I/O, heartbeats) is never held long. */
export const DEFAULT_SLICE_TIME_MS_MAX = 20;

export interface RunOptions {
  readonly sliceSteps?: number;
  /** Ends the run early (the machine stays usable). */
  readonly signal?: AbortSignal;
  /** Called after every slice with the total steps so far. */
  readonly onProgress?: (steps: number) => void;
  /** The log the machine follows, when it replays: its `onAvailable` wakes a starved replay. */
  readonly replayLog?: LogSource;
  /** Record mode with a sink that can be full: resolves once it has room again. */
  readonly logHasRoom?: () => Promise<void>;
  /** Ends each slice after this much host time too (default 20 ms; 0 for no limit). */
  readonly sliceTimeMsMax?: number;
}

export interface RunResult {
  /** Steps executed by this run. */
  readonly steps: number;
  /** The guest's exit status when it powered off; undefined when the run ended otherwise. */
  readonly exitStatus: number | undefined;
  /** Why the run ended. */
  readonly end: 'stopped' | 'aborted' | 'log-ended';
}

/**
 * Drives a machine until it stops: runs slices, lets the host's event loop in between (so host
 * inputs arrive), and sleeps while the hart waits for an interrupt (until a timer is due or an
 * input arrives) instead of spinning.
 */
export async function runMachine(
  machine: Machine,
  host: HostScheduler,
  options: RunOptions = {},
): Promise<RunResult> {
  const sliceSteps = options.sliceSteps ?? DEFAULT_SLICE_STEPS;
  let steps = 0;
  const sliceTimeMs = options.sliceTimeMsMax ?? DEFAULT_SLICE_TIME_MS_MAX;
  // An input, a timer, more log or an abort ends the wait (see Waiter for the two rules).
  const waiter = new Waiter(host);
  const wake = () => waiter.wake();
  machine.onWake(wake);
  const wakeable = options.replayLog?.onAvailable !== undefined;
  options.replayLog?.onAvailable?.(wake);
  const aborted = () => options.signal?.aborted === true;
  options.signal?.addEventListener('abort', wake, { once: true });
  try {
    for (;;) {
      if (aborted()) return { steps, exitStatus: undefined, end: 'aborted' };
      const outcome = machine.runSlice(
        sliceSteps,
        sliceTimeMs > 0 ? sliceTimeLimit(host, sliceTimeMs) : undefined,
      );
      steps += outcome.steps;
      options.onProgress?.(steps);
      switch (outcome.end) {
        case 'stopped':
          return {
            steps,
            exitStatus: machine.exitStatus,
            end: machine.exitStatus === undefined ? 'log-ended' : 'stopped',
          };
        case 'budget':
          await host.yieldToHost();
          break;
        case 'log-full':
          await (options.logHasRoom?.() ?? host.yieldToHost());
          break;
        case 'waiting':
        case 'log-starved': {
          if (machine.hasPendingInput) {
            await host.yieldToHost();
            break;
          }
          const deviceWait = machine.deviceWait;
          if (outcome.end === 'log-starved' && deviceWait !== undefined) {
            await deviceWait;
            break;
          }
          // A replay waiting for more log sleeps until the log wakes it (or polls, when the log
          // cannot); a live machine sleeps until its next timer, or until an input wakes it, or now
          // and then to notice an abort.
          const delayNs =
            outcome.end === 'log-starved'
              ? wakeable
                ? 1e9
                : LOG_POLL_INTERVAL_NS
              : (machine.nextTimerDelayNs() ?? 1e9);
          await waiter.wait(delayNs);
          break;
        }
      }
    }
  } finally {
    machine.onWake(undefined);
    options.replayLog?.onAvailable?.(undefined);
  }
}
