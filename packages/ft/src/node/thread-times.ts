import { readFileSync } from 'node:fs';

/**
 * How much CPU the calling thread has had, and how long it waited for one, since it started. A VM
 * runs its guest on one thread (a worker), so these are the VM's own figures, not the process's:
 * the cost of fault tolerance shows in them thread by thread, and the wait says when the host has
 * more busy threads than cores (a primary and its backup on one small host, say).
 */
export interface ThreadTimes {
  /** Time on a CPU, in ms. */
  readonly cpuMs: number;
  /**
   * Time ready to run but waiting for a CPU, in ms; undefined where the system does not say
   * (Linux reports it in `/proc/thread-self/schedstat`).
   */
  readonly runQueueWaitMs: number | undefined;
}

type ThreadCpuUsage = () => { user: number; system: number };

/** The calling thread's times, or undefined where neither Linux's schedstat nor Node (≥ 23.9) says. */
export function readThreadTimes(): ThreadTimes | undefined {
  try {
    // "<ns on a CPU> <ns waiting on a run queue> <time slices>"
    const fields = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
    const cpuNs = Number(fields[0]);
    const waitNs = Number(fields[1]);
    if (Number.isFinite(cpuNs) && Number.isFinite(waitNs)) {
      return { cpuMs: cpuNs / 1e6, runQueueWaitMs: waitNs / 1e6 };
    }
  } catch {
    // Not Linux, or no schedstat in this kernel: try Node's own figure below.
  }
  const threadCpuUsage = (process as { threadCpuUsage?: ThreadCpuUsage }).threadCpuUsage;
  if (typeof threadCpuUsage !== 'function') return undefined;
  const usage = threadCpuUsage.call(process);
  return { cpuMs: (usage.user + usage.system) / 1000, runQueueWaitMs: undefined };
}

/** What a thread did over an interval, from two readings: shares of the interval's wall time. */
export interface ThreadShares {
  /** Of one core: 1 is a thread busy all the time. */
  readonly cpu: number;
  /** The share of the interval spent ready but waiting for a core (undefined: not known). */
  readonly runQueueWait: number | undefined;
}

export function threadShares(before: ThreadTimes, after: ThreadTimes, wallMs: number): ThreadShares {
  if (!(wallMs > 0)) return { cpu: 0, runQueueWait: undefined };
  const wait =
    before.runQueueWaitMs === undefined || after.runQueueWaitMs === undefined
      ? undefined
      : Math.max(0, after.runQueueWaitMs - before.runQueueWaitMs) / wallMs;
  return { cpu: Math.max(0, after.cpuMs - before.cpuMs) / wallMs, runQueueWait: wait };
}
