import type { LogEntry, LogSink } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { loadGuest, runToEnd } from './helpers.js';

/**
 * Live state transfer on a machine that keeps running (the paper's FT VMotion, §3.1): pages, then
 * rounds of the pages written meanwhile, then a short stop-and-copy of everything else and the log
 * position. The clone then follows the primary's log from that position and must end exactly as
 * the primary does (checkpoints compare state hashes along the way).
 */
/**
 * paging.elf recording, 40,000 steps in, and the log a clone will follow: the entries from the
 * sequence number `forwardFrom` names on (until then, none).
 */
function runningPrimary() {
  const forwarded = new MemoryLog();
  let firstForwarded = Number.POSITIVE_INFINITY;
  const sink: LogSink = {
    append(entry: LogEntry) {
      if (entry.seq >= firstForwarded) forwarded.append(entry);
    },
  };
  const primary = new Machine({ mode: 'record', log: sink, clock: 'icount', checkpointIntervalSteps: 5_000 });
  primary.loadImage(loadGuest('paging'), 'paging');
  primary.runSlice(40_000);
  const forwardFrom = (seq: number) => {
    firstForwarded = seq;
  };
  return { primary, forwarded, forwardFrom };
}

describe('live state transfer', () => {
  it('a clone taken from a running paging.elf follows the rest of its log to the same end', () => {
    const { primary, forwarded, forwardFrom } = runningPrimary();

    const clone = new Machine({ mode: 'replay', replayLog: forwarded.reader(), clock: 'icount' });
    const tracker = primary.trackDirtyPages();
    const first = primary.nonZeroPages();
    clone.writePages(first, primary.readPages(first));
    let rounds = 0;
    let copied = first.length;
    for (; rounds < 3; rounds++) {
      primary.runSlice(15_000); // the guest keeps running and writing pages
      const written = tracker.collect();
      clone.writePages(written, primary.readPages(written));
      copied += written.length;
    }
    // Stop-and-copy: the last written pages and everything else, at one step boundary.
    const last = tracker.collect();
    tracker.stop();
    clone.writePages(last, primary.readPages(last));
    const state = primary.saveTransferState();
    expect(state.nextSeq).toBe(primary.logPosition.nextSeq);
    forwardFrom(state.nextSeq);
    clone.restoreTransferState(state);
    expect(clone.cpu.icount).toBe(primary.cpu.icount);
    expect(clone.stateHash()).toEqual(primary.stateHash());
    expect(copied).toBeGreaterThan(first.length); // later rounds did resend written pages

    runToEnd(primary, undefined);
    forwarded.close();
    expect(forwarded.entries.some((entry) => entry.kind === 'checkpoint')).toBe(true);
    runToEnd(clone, undefined);
    expect(clone.exitStatus).toBe(primary.exitStatus);
    expect(clone.cpu.icount).toBe(primary.cpu.icount);
    expect(clone.stateHash()).toEqual(primary.stateHash());
  });

  it('a clone that missed the pages written after a round diverges at the next checkpoint, and says so', () => {
    const { primary, forwarded, forwardFrom } = runningPrimary();
    const clone = new Machine({ mode: 'replay', replayLog: forwarded.reader(), clock: 'icount' });
    const tracker = primary.trackDirtyPages();
    const first = primary.nonZeroPages();
    clone.writePages(first, primary.readPages(first));
    // The guest writes pages; the transfer "forgets" to resend the ones that now differ.
    let differing: number[] = [];
    for (let round = 0; round < 20 && differing.length === 0; round++) {
      primary.runSlice(5_000);
      const written = tracker.collect();
      const theirs = clone.readPages(written);
      const ours = primary.readPages(written);
      differing = written.filter((_, index) =>
        ours
          .subarray(index * 4096, (index + 1) * 4096)
          .some((byte, at) => byte !== theirs[index * 4096 + at]),
      );
      const same = written.filter((page) => !differing.includes(page));
      clone.writePages(same, primary.readPages(same));
    }
    tracker.stop();
    expect(differing.length).toBeGreaterThan(0);
    const state = primary.saveTransferState();
    forwardFrom(state.nextSeq);
    clone.restoreTransferState(state);
    runToEnd(primary, undefined);
    forwarded.close();
    expect(() => runToEnd(clone, undefined)).toThrow(/state-hash|diverged/);
  });

  it('builds the first RAM hash a few pages at a time, with the guest writing between, to the same digest', () => {
    const { primary, forwarded, forwardFrom } = runningPrimary();
    const clone = new Machine({ mode: 'replay', replayLog: forwarded.reader(), clock: 'icount' });
    const pages = primary.nonZeroPages();
    clone.writePages(pages, primary.readPages(pages));
    const state = primary.saveTransferState();
    forwardFrom(state.nextSeq);
    clone.restoreTransferState(state);
    let calls = 0;
    while (!clone.prepareStateHash(16)) {
      calls++;
      primary.runSlice(500);
      clone.runSlice(500);
    }
    expect(calls).toBeGreaterThan(10); // it really went in steps
    // The clone's checkpoints compare its (incrementally built) hash with the primary's all along.
    runToEnd(primary, undefined);
    forwarded.close();
    runToEnd(clone, undefined);
    expect(clone.cpu.icount).toBe(primary.cpu.icount);
    const fresh = new Machine({ mode: 'replay', replayLog: new MemoryLog().reader(), clock: 'icount' });
    const all = clone.nonZeroPages();
    fresh.writePages(all, clone.readPages(all));
    expect(clone.stateHash().subarray(0, 8)).toEqual(fresh.stateHash().subarray(0, 8));
    expect(clone.stateHash()).toEqual(primary.stateHash());
  });

  it('refuses pages that do not fit', () => {
    const machine = new Machine({ clock: 'icount', ramSizeBytes: 1 << 20 });
    expect(() => machine.writePages([256], new Uint8Array(4096))).toThrow(/bad page/);
    expect(() => machine.writePages([0], new Uint8Array(100))).toThrow(/bytes for 1 pages/);
    expect(() => machine.readPages([-1])).toThrow(/bad page/);
  });
});

describe('back-pressure and bounded slices', () => {
  it('a full log sink stops the guest at the next step boundary; it goes on once there is room', () => {
    const entries: LogEntry[] = [];
    let full = false;
    const sink = {
      append(entry: LogEntry) {
        entries.push(entry);
        if (entries.length >= 5) full = true;
      },
      get full() {
        return full;
      },
    };
    const machine = new Machine({
      mode: 'record',
      log: sink,
      clock: 'icount',
      checkpointIntervalSteps: 1000,
    });
    machine.loadImage(loadGuest('hello'), 'hello');
    const outcome = machine.runSlice(10_000_000);
    expect(outcome.end).toBe('log-full');
    const stoppedAt = machine.cpu.icount;
    expect(entries.length).toBeGreaterThanOrEqual(5);
    expect(machine.runSlice(10_000_000)).toEqual({ steps: 0, end: 'log-full' });
    full = false;
    entries.length = 0;
    const next = machine.runSlice(10_000_000);
    expect(next.steps).toBeGreaterThan(0);
    expect(machine.cpu.icount).toBeGreaterThan(stoppedAt);
  });

  it('a slice with a host-time limit ends once the clock passes it, at a chunk boundary', () => {
    const machine = new Machine({ clock: 'icount' });
    machine.loadImage(loadGuest('bench'), 'bench');
    let now = 0;
    // Each look at the clock costs 1 ms of "host time": the limit of 5 ms ends the slice early.
    const outcome = machine.runSlice(50_000_000, { nowNs: () => (now += 1e6), deadlineNs: 5e6 });
    expect(outcome.end).toBe('budget');
    // The clock is read between chunks: five reads reach the limit, after at most five chunks.
    expect(outcome.steps).toBeGreaterThan(0);
    expect(outcome.steps).toBeLessThanOrEqual(5 * 65_536);
  });
});
