import type { HostScheduler, HostSleep, Machine } from '@ftvm/machine';

/**
 * The simulator's deterministic event loop: virtual time in nanoseconds and a queue of events
 * ordered by (time, order of scheduling). Every asynchronous thing of a simulated run — a timer, a
 * message arriving, an arbiter's answer, a disk completion, a datagram — is an event here, and
 * between two events the loop lets JavaScript's microtasks run out (promise continuations of the
 * drivers), so a seed replays identically. No real clock is read.
 *
 * CPU work takes virtual time too: a {@link SimHost} charges the steps its machine executes (see
 * {@link SimHost.meter}), so slices bounded by host time end, and a host busy executing delays
 * what is due meanwhile (the simulation has one CPU).
 */

/** One queued event. */
export interface SimEvent {
  readonly time: number;
  readonly order: number;
  /** The host it runs on; undefined for the environment (clients, the network, the orchestrator). */
  readonly host: SimHost | undefined;
  readonly run: () => void;
  cancelled: boolean;
  /** A host's own timer (a sleep, a yield), as opposed to something that came to it. */
  timer?: boolean;
}

/** The wall clock at virtual time 0: 2026-01-01T00:00Z. */
export const SIM_REALTIME_BASE_NS = 1_767_225_600 * 1e9;

export class EventLoop {
  /** Virtual time, ns. Never goes back. */
  #now = 0;
  readonly #heap: SimEvent[] = [];
  #order = 0;
  /** Events run so far. */
  eventsRun = 0;
  /** A running digest of what ran when (two runs of a seed must agree). */
  #digest = 0x811c_9dc5;

  get now(): number {
    return this.#now;
  }

  /** Moves time forward by `ns` (CPU work); never back. */
  advance(ns: number): void {
    if (ns > 0) this.#now += ns;
  }

  /** Runs `run` at virtual time `atNs` (at once if that is past), on `host` (deferred while it is paused). */
  at(atNs: number, run: () => void, host?: SimHost): SimEvent {
    const time = Number.isFinite(atNs) ? Math.max(Math.round(atNs), this.#now) : Number.MAX_SAFE_INTEGER;
    const event: SimEvent = { time, order: this.#order++, host, run, cancelled: false };
    this.#push(event);
    return event;
  }

  /** Runs `run` after `delayNs` of virtual time. */
  after(delayNs: number, run: () => void, host?: SimHost): SimEvent {
    return this.at(this.#now + Math.max(0, delayNs), run, host);
  }

  /** The digest of the events run so far, as hex. */
  get digest(): string {
    return (this.#digest >>> 0).toString(16).padStart(8, '0');
  }

  /** Mixes a value into the digest (the simulator adds what it observed). */
  mix(value: number | string): void {
    const text = typeof value === 'number' ? value.toString(36) : value;
    let hash = this.#digest;
    for (let index = 0; index < text.length; index++)
      hash = Math.imul(hash ^ text.charCodeAt(index), 0x0100_0193);
    this.#digest = Math.imul(hash ^ 0x2c, 0x0100_0193);
  }

  /**
   * Runs events in order until virtual time would pass `untilNs`, `stop()` answers true, or nothing
   * is left; lets microtasks run out after each event.
   */
  async runUntil(untilNs: number, stop?: () => boolean): Promise<void> {
    for (;;) {
      if (stop?.()) return;
      const next = this.#heap[0];
      if (next === undefined || next.time > untilNs) {
        if (this.#now < untilNs) this.#now = untilNs;
        return;
      }
      this.#pop();
      if (next.cancelled) continue;
      if (next.host?.paused) {
        next.host.defer(next);
        continue;
      }
      if (next.time > this.#now) this.#now = next.time;
      this.eventsRun++;
      this.#digest = Math.imul(this.#digest ^ (next.time % 0x7fff_ffff), 0x0100_0193);
      next.run();
      await drainMicrotasks();
    }
  }

  // ---- a binary heap on (time, order) ----

  #less(a: SimEvent, b: SimEvent): boolean {
    return a.time < b.time || (a.time === b.time && a.order < b.order);
  }

  #push(event: SimEvent): void {
    const heap = this.#heap;
    heap.push(event);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.#less(heap[index] as SimEvent, heap[parent] as SimEvent)) break;
      [heap[index], heap[parent]] = [heap[parent] as SimEvent, heap[index] as SimEvent];
      index = parent;
    }
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop() as SimEvent;
    if (heap.length === 0) return;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.#less(heap[left] as SimEvent, heap[smallest] as SimEvent))
        smallest = left;
      if (right < heap.length && this.#less(heap[right] as SimEvent, heap[smallest] as SimEvent))
        smallest = right;
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest] as SimEvent, heap[index] as SimEvent];
      index = smallest;
    }
  }
}

/** Lets every queued microtask (and the ones they queue) run: the next macrotask comes after them all. */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface SimHostOptions {
  /** Virtual ns one guest step costs (default 10: a 100 MIPS host). */
  readonly nsPerStep?: number;
  /** Virtual ns each clock reading costs (host overhead; makes every loop bounded by time end). */
  readonly clockReadNs?: number;
}

/**
 * A simulated host: the {@link HostScheduler} its FT driver and machine use, on the shared loop.
 * While paused, its events wait (timers, messages, answers, completions) and run when it resumes,
 * in their order; a killed host's driver ignores whatever still comes.
 */
export class SimHost implements HostScheduler {
  readonly name: string;
  readonly #loop: EventLoop;
  readonly #nsPerStep: number;
  readonly #clockReadNs: number;
  #paused = false;
  dead = false;
  readonly #deferred: SimEvent[] = [];
  #slice: { machine: Machine; icount: number } | undefined;
  /** Guest steps this host executed. */
  steps = 0;

  constructor(loop: EventLoop, name: string, options: SimHostOptions = {}) {
    this.#loop = loop;
    this.name = name;
    this.#nsPerStep = options.nsPerStep ?? 10;
    this.#clockReadNs = options.clockReadNs ?? 100;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** The host stops getting events (a stopped process, a stalled VM host) until {@link resume}. */
  pause(): void {
    this.#paused = true;
  }

  /** Events that came due meanwhile run now, in their order. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const event of this.#deferred.splice(0)) {
      const requeued = this.#loop.at(this.#loop.now, event.run, this);
      requeued.timer = event.timer;
    }
  }

  defer(event: SimEvent): void {
    this.#deferred.push(event);
  }

  /** Runs `run` on this host after `delayNs`. */
  after(delayNs: number, run: () => void): SimEvent {
    return this.#loop.after(delayNs, run, this);
  }

  /**
   * Charges `machine`'s steps to virtual time: wraps its `runSlice` so that clock readings during
   * a slice include the steps executed so far.
   */
  meter(machine: Machine): void {
    const runSlice = machine.runSlice.bind(machine);
    machine.runSlice = (maxSteps, limit) => {
      this.#slice = { machine, icount: machine.cpu.icount };
      try {
        return runSlice(maxSteps, limit);
      } finally {
        this.#charge();
        this.#slice = undefined;
      }
    };
  }

  #charge(): void {
    const slice = this.#slice;
    if (slice === undefined) return;
    const icount = slice.machine.cpu.icount;
    const steps = icount - slice.icount;
    slice.icount = icount;
    if (steps > 0) {
      this.steps += steps;
      this.#loop.advance(steps * this.#nsPerStep);
    }
  }

  // ---- HostScheduler ----

  monotonicNs(): number {
    this.#charge();
    this.#loop.advance(this.#clockReadNs);
    return this.#loop.now;
  }

  realtimeNs(): number {
    return SIM_REALTIME_BASE_NS + this.monotonicNs();
  }

  yieldToHost(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#loop.after(0, resolve, this).timer = true;
    });
  }

  sleep(durationNs: number): HostSleep {
    let cancel = () => {};
    const done = new Promise<void>((resolve) => {
      const delay = Number.isFinite(durationNs) ? Math.max(0, durationNs) : 3600e9;
      const event = this.#loop.after(delay, resolve, this);
      event.timer = true;
      cancel = () => {
        event.cancelled = true;
        resolve();
      };
    });
    return { done, cancel: () => cancel() };
  }
}
