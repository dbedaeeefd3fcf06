import type { HostScheduler, HostSleep } from './host.js';
import type { SliceTimeLimit } from './machine-types.js';

/**
 * How a run loop waits between slices, for every driver (`runMachine`, the FT primary and
 * backup). Two rules, in one place:
 * - Host I/O first: Node runs every expired timer before it polls for I/O, so a loop of short
 *   sleeps whose work outlasts them never leaves the timers phase, and what the network brought
 *   (a backup's acknowledgements, a frame) waits behind it. Each wait yields with `yieldToHost`
 *   before it sleeps, and a wait under a millisecond only yields.
 * - No lost wake-up: a `wake()` that comes before the wait began (during the yield, during a
 *   slice) ends the next wait at once.
 */
export class Waiter {
  readonly #host: Pick<HostScheduler, 'yieldToHost' | 'sleep'>;
  #sleep: HostSleep | undefined;
  #woken = false;

  constructor(host: Pick<HostScheduler, 'yieldToHost' | 'sleep'>) {
    this.#host = host;
  }

  /** Ends the wait under way, or the next one when none is. */
  wake(): void {
    this.#woken = true;
    this.#sleep?.cancel();
  }

  /** Lets host I/O in, then sleeps up to `durationNs` unless woken; `until` settling ends it too. */
  async wait(durationNs: number, until?: Promise<unknown>): Promise<void> {
    await this.#host.yieldToHost();
    if (durationNs < 1e6 || this.#woken) {
      this.#woken = false;
      return;
    }
    const sleep = this.#host.sleep(durationNs);
    this.#sleep = sleep;
    void until?.then(
      () => sleep.cancel(),
      () => sleep.cancel(),
    );
    await sleep.done;
    this.#sleep = undefined;
    this.#woken = false;
  }
}

/** A slice's host-time limit: `durationMs` from now, read from `host`'s clock. */
export function sliceTimeLimit(host: Pick<HostScheduler, 'monotonicNs'>, durationMs: number): SliceTimeLimit {
  return { nowNs: () => host.monotonicNs(), deadlineNs: host.monotonicNs() + durationMs * 1e6 };
}
