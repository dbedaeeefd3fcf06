import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { readThreadTimes, threadShares } from './thread-times.js';

const spin = (ms: number) => {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x++;
  return x;
};

describe('readThreadTimes', () => {
  it.skipIf(process.platform !== 'linux')(
    'counts the CPU this thread spends, not what it sleeps',
    async () => {
      const start = readThreadTimes();
      expect(start).toBeDefined();
      spin(100);
      const afterSpin = readThreadTimes();
      await new Promise((resolve) => setTimeout(resolve, 60));
      const afterSleep = readThreadTimes();
      if (!start || !afterSpin || !afterSleep) throw new Error('no thread times on Linux');
      // A 100 ms spin is on a CPU for most of it: the run queue wait covers the rest on a busy host,
      // and a virtual machine's stolen time (neither) is left a wide margin.
      expect(
        afterSpin.cpuMs - start.cpuMs + (afterSpin.runQueueWaitMs ?? 0) - (start.runQueueWaitMs ?? 0),
      ).toBeGreaterThan(40);
      expect(afterSleep.cpuMs - afterSpin.cpuMs).toBeLessThan(30);
    },
  );

  it.skipIf(process.platform !== 'linux')(
    "is the calling thread's: a busy worker does not show on the main thread",
    async () => {
      const before = readThreadTimes();
      const source = `
      const { parentPort } = require('node:worker_threads');
      const until = performance.now() + 150;
      let x = 0;
      while (performance.now() < until) x++;
      parentPort.postMessage(x);
    `;
      await new Promise((resolve, reject) => {
        const worker = new Worker(source, { eval: true });
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      const after = readThreadTimes();
      if (!before || !after) throw new Error('no thread times on Linux');
      expect(after.cpuMs - before.cpuMs).toBeLessThan(100);
    },
  );
});

describe('threadShares', () => {
  it('turns two readings into shares of the interval', () => {
    const shares = threadShares(
      { cpuMs: 100, runQueueWaitMs: 10 },
      { cpuMs: 850, runQueueWaitMs: 110 },
      1000,
    );
    expect(shares.cpu).toBeCloseTo(0.75);
    expect(shares.runQueueWait).toBeCloseTo(0.1);
  });

  it('says the wait is unknown when a reading lacks it, and is zero over no time', () => {
    expect(
      threadShares({ cpuMs: 0, runQueueWaitMs: undefined }, { cpuMs: 5, runQueueWaitMs: 3 }, 10),
    ).toEqual({
      cpu: 0.5,
      runQueueWait: undefined,
    });
    expect(threadShares({ cpuMs: 0, runQueueWaitMs: 0 }, { cpuMs: 5, runQueueWaitMs: 3 }, 0).cpu).toBe(0);
  });
});
