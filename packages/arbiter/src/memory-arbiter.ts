/**
 * An arbiter in memory, for tests and simulations: one {@link MemoryArbiterStore} holds the records
 * (the "server"), and each {@link MemoryArbiter} is a client of it with faults of its own, so a test
 * can cut the primary off from the arbiter while the backup still reaches it.
 *
 * Deterministic: no clock and no randomness. Without a latency an answer comes in a microtask, in
 * the order the calls were made; with one, it comes when the injected `schedule` (a simulator's
 * event queue, say) runs it.
 */
import { type Arbiter, type ArbiterRecord, type ArbiterResult, ArbiterUnavailableError } from '@ftvm/core';
import { assertValidTestAndSet, assertValidVmId } from './validate.js';

/** Runs `fn` after `delayMs` of (possibly simulated) time. */
export type ArbiterSchedule = (delayMs: number, fn: () => void) => void;

const UNKNOWN: ArbiterRecord = Object.freeze({ epoch: 0, owner: '' });

/** The records of a memory arbiter: what several {@link MemoryArbiter} clients share. */
export class MemoryArbiterStore {
  readonly #records = new Map<string, ArbiterRecord>();

  /** The VM's record now (epoch 0, owner '' when unknown), without any fault or delay. */
  get(vmId: string): ArbiterRecord {
    return this.#records.get(vmId) ?? UNKNOWN;
  }

  /** The test-and-set itself, done at once. Arguments are not checked here: the clients check them. */
  testAndSet(vmId: string, fromEpoch: number, owner: string): ArbiterResult {
    const current = this.get(vmId);
    if (current.epoch !== fromEpoch) return { won: false, record: current };
    const record = Object.freeze({ epoch: fromEpoch + 1, owner });
    this.#records.set(vmId, record);
    return { won: true, record };
  }

  /** The ids of the VMs that have a record, in the order they got one. */
  vmIds(): string[] {
    return [...this.#records.keys()];
  }
}

export interface MemoryArbiterOptions {
  /** The records to share with other clients; default a new store of this client's own. */
  store?: MemoryArbiterStore;
  /**
   * How long a call takes, in the `schedule`'s milliseconds; default 0. The call is carried out at
   * the store, and answered, when the time has passed.
   */
  latencyMs?: number;
  /**
   * Runs a delayed call. Default: a microtask when `latencyMs` is 0, else `setTimeout`. A simulator
   * passes its own event queue here.
   */
  schedule?: ArbiterSchedule;
}

/** A client of a {@link MemoryArbiterStore}, with fault injection. */
export class MemoryArbiter implements Arbiter {
  /** The records this client reads and moves. */
  readonly store: MemoryArbiterStore;
  readonly #latencyMs: number;
  readonly #schedule: ArbiterSchedule | undefined;
  #unreachable = false;
  #loseReplies = false;
  #closed = false;

  constructor(options: MemoryArbiterOptions = {}) {
    const latencyMs = options.latencyMs ?? 0;
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new RangeError(`latencyMs must be a finite non-negative number, not ${latencyMs}`);
    }
    this.store = options.store ?? new MemoryArbiterStore();
    this.#latencyMs = latencyMs;
    this.#schedule = options.schedule;
  }

  /**
   * While true, calls reject with `ArbiterUnavailableError` and change nothing: those made while
   * unreachable, and those in flight (with a latency) that arrive while unreachable.
   */
  setUnreachable(unreachable: boolean): void {
    this.#unreachable = unreachable;
  }

  /** True while {@link setUnreachable} is in force. */
  get unreachable(): boolean {
    return this.#unreachable;
  }

  /**
   * While true, calls are carried out at the store but their answers are lost: they reject with
   * `ArbiterUnavailableError` although a test-and-set may have moved the epoch (the ambiguous
   * failure a real network can cause).
   */
  setLoseReplies(lose: boolean): void {
    this.#loseReplies = lose;
  }

  async testAndSet(vmId: string, fromEpoch: number, owner: string): Promise<ArbiterResult> {
    assertValidTestAndSet(vmId, fromEpoch, owner);
    return this.#call(`testAndSet(${vmId}, ${fromEpoch})`, () =>
      this.store.testAndSet(vmId, fromEpoch, owner),
    );
  }

  async read(vmId: string): Promise<ArbiterRecord> {
    assertValidVmId(vmId);
    return this.#call(`read(${vmId})`, () => this.store.get(vmId));
  }

  /** Later calls, and calls still in flight, reject with `ArbiterUnavailableError`. */
  async close(): Promise<void> {
    this.#closed = true;
  }

  #call<T>(what: string, operation: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const refusal = this.#refusal(what);
      if (refusal) {
        reject(refusal);
        return;
      }
      const deliver = () => {
        const late = this.#refusal(what);
        if (late) {
          reject(late);
          return;
        }
        const result = operation();
        if (this.#loseReplies) {
          reject(new ArbiterUnavailableError(`memory arbiter: the answer to ${what} was lost (injected)`));
        } else {
          resolve(result);
        }
      };
      if (this.#schedule) this.#schedule(this.#latencyMs, deliver);
      else if (this.#latencyMs > 0) setTimeout(deliver, this.#latencyMs);
      else queueMicrotask(deliver);
    });
  }

  #refusal(what: string): ArbiterUnavailableError | undefined {
    if (this.#closed) return new ArbiterUnavailableError(`memory arbiter: ${what} on a closed client`);
    if (this.#unreachable) {
      return new ArbiterUnavailableError(`memory arbiter: ${what} while unreachable (injected)`);
    }
    return undefined;
  }
}
