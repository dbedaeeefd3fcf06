/**
 * What the machine needs from its host, passed in from outside so the machine itself reads no clock
 * and owns no timer (`@ftvm/machine/node` has the Node.js implementation; a browser or a test
 * supplies its own).
 */
export interface HostClock {
  /** A monotonic host clock in nanoseconds (any origin). */
  monotonicNs(): number;
  /** The host's wall clock in nanoseconds since the Unix epoch. */
  realtimeNs(): number;
}

/** A pending host sleep that can be ended early. */
export interface HostSleep {
  readonly done: Promise<void>;
  cancel(): void;
}

/** Host scheduling for the asynchronous run driver. */
export interface HostScheduler extends HostClock {
  /** Lets the host's event loop run (I/O callbacks, timers) and resolves soon after. */
  yieldToHost(): Promise<void>;
  /** Resolves after `durationNs` of host time, or when cancelled. */
  sleep(durationNs: number): HostSleep;
}
