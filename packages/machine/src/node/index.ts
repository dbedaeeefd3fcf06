import type { HostScheduler, HostSleep } from '../host.js';

/** The Node.js host: process.hrtime for the monotonic clock, Date for wall time, real timers. */
export function createNodeHost(): HostScheduler {
  return {
    monotonicNs: () => Number(process.hrtime.bigint()),
    realtimeNs: () => Date.now() * 1e6,
    yieldToHost: () => new Promise<void>((resolve) => setImmediate(resolve)),
    sleep(durationNs: number): HostSleep {
      let cancel = () => {};
      const done = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(Math.max(0, durationNs / 1e6), 2 ** 31 - 1));
        cancel = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      return { done, cancel };
    },
  };
}
