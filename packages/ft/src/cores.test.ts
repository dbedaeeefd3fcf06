import type { LogEntry } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { BackupCore } from './backup-core.js';
import { ftConfig } from './config.js';
import { CPU_SHARE_MIN, PrimaryCore } from './primary-core.js';

/**
 * Scripted interactions with the cores, section by section of Scales et al. 2010. Each test feeds
 * exact inputs and checks the exact effects: no threads, no clocks, no sockets.
 */

const config = ftConfig({
  failureTimeoutMs: 300,
  heartbeatIntervalMs: 50,
  executionLagMsMax: 100,
  logBufferBytesMax: 1000,
});

interface Out {
  readonly name: string;
  readonly coveringSeq: number;
  readonly icount: number;
}

const progress = (seq: number, icount: number): LogEntry => ({ kind: 'progress', seq, icount });
const event = (seq: number, icount: number, bytes = 0): LogEntry => ({
  kind: 'event',
  seq,
  icount,
  device: 'virtio0',
  event: { type: 'frame-received', data: new Uint8Array(bytes) },
});

/** A primary with a backup it has heard from (the startup grace is over). */
function replicating(now = 0): PrimaryCore<Out> {
  const core = new PrimaryCore<Out>({ vmId: 'vm', epoch: 1, config, withBackup: true, nowMs: now });
  core.messageReceived({ type: 'heartbeat', counter: 1 }, now);
  return core;
}

describe('§2.2 the output rule', () => {
  it('holds an output until the backup acknowledged the entry that covers it; the primary never waits', () => {
    const core = replicating();
    core.logAppended(event(0, 10), 0);
    core.logAppended(progress(1, 25), 0);
    core.outputProduced({ name: 'reply', coveringSeq: 1, icount: 0 }, 0);
    core.flush(0);
    let effects = core.takeEffects();
    expect(effects.messages).toEqual([{ type: 'log', entries: [event(0, 10), progress(1, 25)] }]);
    expect(effects.released).toEqual([]);
    expect(core.logFull).toBe(false); // running on is allowed: only the output waits

    // The backup has entry 0 only: a backup holding it may go live before the output's step.
    core.messageReceived({ type: 'ack', receivedSeq: 0, appliedSeq: -1, appliedIcount: 0 }, 1);
    expect(core.takeEffects().released).toEqual([]);

    core.messageReceived({ type: 'ack', receivedSeq: 1, appliedSeq: -1, appliedIcount: 0 }, 2);
    effects = core.takeEffects();
    expect(effects.released).toEqual([{ name: 'reply', coveringSeq: 1, icount: 0 }]);
  });

  it('releases outputs in the order they were produced', () => {
    const core = replicating();
    core.outputProduced({ name: 'a', coveringSeq: 3, icount: 0 }, 0);
    core.outputProduced({ name: 'b', coveringSeq: 3, icount: 0 }, 0);
    core.outputProduced({ name: 'c', coveringSeq: 7, icount: 0 }, 0);
    core.messageReceived({ type: 'ack', receivedSeq: 5, appliedSeq: 0, appliedIcount: 0 }, 1);
    expect(core.takeEffects().released.map((output) => output.name)).toEqual(['a', 'b']);
    core.messageReceived({ type: 'ack', receivedSeq: 9, appliedSeq: 0, appliedIcount: 0 }, 2);
    expect(core.takeEffects().released.map((output) => output.name)).toEqual(['c']);
  });

  it('backup reads (§4.1): a disk write also waits until the backup executed past it with its reads done', () => {
    const core = replicating();
    core.outputProduced({ name: 'write', coveringSeq: 4, icount: 500 }, 0, true);
    core.outputProduced({ name: 'frame', coveringSeq: 4, icount: 510 }, 0);
    // Received, but the backup has not executed the write's step (or still reads from before it).
    core.messageReceived({ type: 'ack', receivedSeq: 4, appliedSeq: 2, appliedIcount: 500 }, 1);
    expect(core.takeEffects().released).toEqual([]);
    core.messageReceived({ type: 'ack', receivedSeq: 4, appliedSeq: 4, appliedIcount: 501 }, 2);
    expect(core.takeEffects().released.map((output) => output.name)).toEqual(['write', 'frame']);
  });

  it('a primary without a backup lets outputs go at once', () => {
    const core = new PrimaryCore<Out>({ vmId: 'vm', epoch: 1, config, withBackup: false, nowMs: 0 });
    core.outputProduced({ name: 'x', coveringSeq: 99, icount: 0 }, 0);
    expect(core.takeEffects().released).toHaveLength(1);
    core.logAppended(progress(0, 1), 0);
    core.flush(0);
    expect(core.takeEffects().messages).toEqual([]); // nobody to send the log to
  });
});

describe('§2.3 detecting failure, and the arbiter against split brain', () => {
  it('the primary suspects a silent backup after the failure timeout and asks for the next epoch', () => {
    const core = replicating();
    core.outputProduced({ name: 'held', coveringSeq: 5, icount: 0 }, 0);
    core.tick(100);
    core.tick(200);
    core.tick(300);
    expect(core.takeEffects().arbiterRequest).toBeUndefined();
    core.tick(301);
    expect(core.state).toBe('suspecting');
    const effects = core.takeEffects();
    expect(effects.arbiterRequest).toEqual({ fromEpoch: 1 });
    expect(effects.released).toEqual([]); // still held while the arbiter decides

    core.arbiterAnswered({ won: true, record: { epoch: 2, owner: 'a' } }, 310);
    const after = core.takeEffects();
    expect(core.state).toBe('alone');
    expect(core.epoch).toBe(2);
    expect(after.backupDropped).toBeDefined();
    expect(after.released.map((output) => output.name)).toEqual(['held']);
  });

  it('a backup never heard from gets the startup grace (it may still be loading), then is suspected', () => {
    const core = new PrimaryCore<Out>({ vmId: 'vm', epoch: 1, config, withBackup: true, nowMs: 0 });
    for (let now = 50; now <= config.startupGraceMs; now += 50) core.tick(now);
    expect(core.state).toBe('replicating');
    core.tick(config.startupGraceMs + 40);
    expect(core.state).toBe('suspecting');
  });

  it('a backup that says goodbye has halted: the primary goes on alone without the arbiter', () => {
    const core = replicating();
    core.outputProduced({ name: 'held', coveringSeq: 9, icount: 0 }, 0);
    core.messageReceived({ type: 'goodbye', reason: 'the guest powered off' }, 5);
    const effects = core.takeEffects();
    expect(core.state).toBe('alone');
    expect(core.epoch).toBe(1);
    expect(effects.arbiterRequest).toBeUndefined();
    expect(effects.backupDropped).toMatch(/the backup left: the guest powered off/);
    expect(effects.released.map((output) => output.name)).toEqual(['held']);
  });

  it('a primary that loses the arbiter halts and lets nothing more out', () => {
    const core = replicating();
    core.outputProduced({ name: 'held', coveringSeq: 5, icount: 0 }, 0);
    core.channelClosed(10);
    expect(core.takeEffects().arbiterRequest).toEqual({ fromEpoch: 1 });
    core.arbiterAnswered({ won: false, record: { epoch: 2, owner: 'b' } }, 20);
    const effects = core.takeEffects();
    expect(effects.halt).toMatch(/epoch 2 to b/);
    expect(effects.released).toEqual([]);
    core.outputProduced({ name: 'later', coveringSeq: 6, icount: 0 }, 30);
    core.messageReceived({ type: 'ack', receivedSeq: 100, appliedSeq: 100, appliedIcount: 0 }, 30);
    core.tick(1000);
    expect(core.takeEffects()).toMatchObject({ released: [], messages: [], arbiterRequest: undefined });
  });

  it('a primary that cannot reach the arbiter does not go on alone: it asks again, outputs held', () => {
    const core = replicating();
    core.outputProduced({ name: 'held', coveringSeq: 5, icount: 0 }, 0);
    // The driver ticks every few ms; a silence of more than the failure timeout is suspicious.
    for (let now = 0; now <= 300; now += 50) core.tick(now);
    core.tick(301);
    expect(core.takeEffects().arbiterRequest).toEqual({ fromEpoch: 1 });
    core.arbiterAnswered(undefined, 305);
    core.tick(350);
    expect(core.takeEffects()).toMatchObject({ arbiterRequest: undefined, released: [] });
    core.tick(406); // arbiterRetryMs (100) later
    expect(core.takeEffects().arbiterRequest).toEqual({ fromEpoch: 1 });
    expect(core.state).toBe('suspecting');
  });

  it('the backup suspects a silent primary, and goes live only when it wins', () => {
    const backup = new BackupCore({ epoch: 1, config, cloning: false, nowMs: 0 });
    backup.messageReceived({ type: 'log', entries: [event(0, 5), progress(1, 9)] }, 10);
    expect(backup.takeEffects().messages).toEqual([
      { type: 'ack', receivedSeq: 1, appliedSeq: -1, appliedIcount: 0 },
    ]);
    backup.tick(100);
    backup.tick(200);
    backup.tick(300);
    expect(backup.takeEffects().arbiterRequest).toBeUndefined();
    backup.tick(311);
    expect(backup.takeEffects().arbiterRequest).toEqual({ fromEpoch: 1 });
    backup.arbiterAnswered({ won: true, record: { epoch: 2, owner: 'b' } }, 320);
    expect(backup.takeEffects().goLive).toEqual({ epoch: 2 });
    expect(backup.state).toBe('going-live');
  });

  it('a primary that says goodbye is not taken over: the backup replays what it holds, then ends (found by a pair test)', () => {
    const backup = new BackupCore({ epoch: 1, config, cloning: false, nowMs: 0 });
    backup.messageReceived({ type: 'log', entries: [event(0, 5), progress(1, 9)] }, 10);
    backup.takeEffects();
    backup.messageReceived({ type: 'goodbye', reason: 'the guest powered off' }, 11);
    const effects = backup.takeEffects();
    // The entries before the goodbye were handed over with their message; nothing is dropped.
    expect(effects.finish).toBe('the primary said goodbye: the guest powered off');
    expect(effects.halt).toBeUndefined();
    expect(backup.state).toBe('finishing');
    // The channel closing after the goodbye and the silence after it are no failure to act on.
    backup.channelClosed(12);
    backup.tick(1000);
    backup.messageReceived({ type: 'log', entries: [progress(2, 12)] }, 1001);
    const later = backup.takeEffects();
    expect(later.arbiterRequest).toBeUndefined();
    expect(later.messages).toEqual([]);
    expect(later.logEntries).toEqual([]);
    expect(backup.state).toBe('finishing');
  });

  it('both sides of a partition ask; the arbiter lets exactly one win', async () => {
    const { MemoryArbiter } = await import('@ftvm/arbiter');
    const arbiter = new MemoryArbiter();
    await arbiter.testAndSet('vm', 0, 'a');
    const primary = replicating();
    const backup = new BackupCore({ epoch: 1, config, cloning: false, nowMs: 0 });
    primary.channelClosed(5);
    backup.channelClosed(5);
    const asks = [primary.takeEffects().arbiterRequest, backup.takeEffects().arbiterRequest];
    expect(asks).toEqual([{ fromEpoch: 1 }, { fromEpoch: 1 }]);
    const [forBackup, forPrimary] = await Promise.all([
      arbiter.testAndSet('vm', 1, 'b'),
      arbiter.testAndSet('vm', 1, 'a'),
    ]);
    primary.arbiterAnswered(forPrimary, 10);
    backup.arbiterAnswered(forBackup, 10);
    const primaryEffects = primary.takeEffects();
    const backupEffects = backup.takeEffects();
    expect([forPrimary.won, forBackup.won].filter(Boolean)).toHaveLength(1);
    expect(primaryEffects.halt !== undefined).toBe(!forPrimary.won);
    expect(backupEffects.goLive !== undefined).toBe(forBackup.won);
  });

  it('a host that was paused does not act on its stale view', () => {
    const core = replicating();
    core.tick(10);
    core.outputProduced({ name: 'held', coveringSeq: 1, icount: 0 }, 10);
    // Paused for 2 s: the first tick after it sees a long gap, not a silent backup.
    core.tick(2010);
    let effects = core.takeEffects();
    expect(core.state).toBe('replicating');
    expect(effects.arbiterRequest).toBeUndefined();
    expect(effects.arbiterRead).toBe(true);
    // Acks that waited in the socket while we were paused do not let the output out yet.
    core.messageReceived({ type: 'ack', receivedSeq: 1, appliedSeq: 1, appliedIcount: 0 }, 2011);
    expect(core.takeEffects().released).toEqual([]);
    // The arbiter says another host owns the next epoch: this primary halts, the output never leaves.
    core.arbiterReadAnswered({ epoch: 2, owner: 'b' }, 2020);
    effects = core.takeEffects();
    expect(effects.halt).toMatch(/paused/);
    expect(effects.released).toEqual([]);
  });

  it('a paused primary whose epoch still stands lets its outputs go once the arbiter confirms it', () => {
    const core = replicating();
    core.tick(10);
    core.outputProduced({ name: 'held', coveringSeq: 1, icount: 0 }, 10);
    core.tick(2010);
    core.takeEffects();
    core.messageReceived({ type: 'ack', receivedSeq: 1, appliedSeq: 1, appliedIcount: 0 }, 2011);
    core.arbiterReadAnswered({ epoch: 1, owner: 'a' }, 2020);
    expect(core.takeEffects().released.map((output) => output.name)).toEqual(['held']);
  });

  it('a test-and-set that won but whose answer was lost: asking again names this host, which goes on (found by the simulator)', () => {
    const core = new PrimaryCore<Out>({
      vmId: 'vm',
      host: 'a',
      epoch: 1,
      config,
      withBackup: true,
      nowMs: 0,
    });
    core.messageReceived({ type: 'heartbeat', counter: 1 }, 0);
    core.channelClosed(10);
    core.takeEffects();
    core.arbiterAnswered(undefined, 20); // the reply was lost; the epoch did move to 2, owner a
    core.tick(130);
    expect(core.takeEffects().arbiterRequest).toEqual({ fromEpoch: 1 });
    core.arbiterAnswered({ won: false, record: { epoch: 2, owner: 'a' } }, 140);
    expect(core.state).toBe('alone');
    expect(core.epoch).toBe(2);
    const backup = new BackupCore({ host: 'b', epoch: 1, config, cloning: false, nowMs: 0 });
    backup.channelClosed(10);
    backup.takeEffects();
    backup.arbiterAnswered({ won: false, record: { epoch: 2, owner: 'b' } }, 20);
    expect(backup.takeEffects().goLive).toEqual({ epoch: 2 });
  });

  it('a suspecting primary lets nothing out, even what a late acknowledgement covers (found by the simulator)', () => {
    const core = replicating();
    core.outputProduced({ name: 'frame', coveringSeq: 3, icount: 0 }, 0);
    core.channelClosed(5);
    expect(core.state).toBe('suspecting');
    core.messageReceived({ type: 'ack', receivedSeq: 3, appliedSeq: 3, appliedIcount: 10 }, 6);
    expect(core.takeEffects().released).toEqual([]);
    core.arbiterAnswered({ won: false, record: { epoch: 2, owner: 'b' } }, 7);
    expect(core.takeEffects().released).toEqual([]);
  });

  it('a resumed primary notices its pause before it handles the acknowledgement that waited (found by the simulator)', () => {
    const core = replicating();
    core.tick(10);
    core.outputProduced({ name: 'frame', coveringSeq: 1, icount: 0 }, 10);
    // The first thing after a 2 s pause is the acknowledgement, not a tick.
    core.messageReceived({ type: 'ack', receivedSeq: 1, appliedSeq: 1, appliedIcount: 0 }, 2010);
    const effects = core.takeEffects();
    expect(effects.released).toEqual([]);
    core.tick(2011);
    expect(core.takeEffects().arbiterRead).toBe(true);
  });

  it('heartbeats go out when nothing else did', () => {
    const core = replicating();
    core.tick(49);
    expect(core.takeEffects().messages).toEqual([]);
    core.tick(50);
    expect(core.takeEffects().messages).toEqual([{ type: 'heartbeat', counter: 1 }]);
  });
});

describe('§2.4 execution lag and the log buffer', () => {
  it("a healthy pair's lag (a slice or two, under half the limit) never slows the primary", () => {
    const core = replicating();
    // Every 10 ms an entry; the backup applies each 40 ms later.
    for (let now = 0; now <= 2000; now += 10) {
      core.logAppended(progress(now / 10, now), now);
      if (now >= 40) {
        const applied = (now - 40) / 10;
        core.messageReceived(
          { type: 'ack', receivedSeq: now / 10, appliedSeq: applied, appliedIcount: 0 },
          now,
        );
      }
      core.tick(now);
      expect(core.cpuShare).toBe(1);
    }
  });

  it('slows the primary in proportion while the backup lags, and gives the CPU back once it caught up', () => {
    const core = replicating();
    core.logAppended(progress(0, 100), 0);
    core.logAppended(progress(1, 200), 50);
    core.tick(0);
    core.tick(50);
    expect(core.cpuShare).toBe(1); // 50 ms: the setpoint, half the limit
    core.tick(100);
    // At the limit: the proportional part cuts a quarter, the integral a little more.
    expect(core.executionLagMs(100)).toBe(100);
    expect(core.cpuShare).toBeLessThan(0.75);
    expect(core.cpuShare).toBeGreaterThan(0.7);
    const atLimit = core.cpuShare;
    core.tick(150);
    // Further behind, and for longer: cut more.
    expect(core.cpuShare).toBeLessThan(atLimit - 0.25);
    for (let now = 160; now <= 600; now += 10) {
      // The backup is alive (it acknowledges what it received) but applies nothing.
      core.messageReceived({ type: 'ack', receivedSeq: 1, appliedSeq: -1, appliedIcount: 0 }, now);
      core.tick(now);
    }
    expect(core.cpuShare).toBe(CPU_SHARE_MIN); // a backup that makes no progress at all
    core.messageReceived({ type: 'ack', receivedSeq: 1, appliedSeq: 1, appliedIcount: 200 }, 605);
    expect(core.executionLagMs(610)).toBe(0);
    core.tick(610);
    const caughtUp = core.cpuShare;
    expect(caughtUp).toBeGreaterThan(CPU_SHARE_MIN);
    let backAtOne: number | undefined;
    for (let now = 620; now < 3000 && backAtOne === undefined; now += 10) {
      core.tick(now);
      if (core.cpuShare === 1) backAtOne = now;
    }
    // The integral unwinds at the lag's (negative) error: within about two seconds.
    expect(backAtOne).toBeDefined();
    expect(backAtOne).toBeLessThan(2600);
  });

  it('matches a backup that runs a tenth slower for good: the primary gets about nine tenths of the CPU', () => {
    const core = replicating();
    // A small simulation: the primary logs a progress mark every 10 ms of its own execution at the
    // share it is given; the backup executes 0.9 ms of the primary's time per ms and acknowledges.
    let primaryMs = 0; // the primary's own execution time, in ms of full speed
    let backupMs = 0;
    const appended: { seq: number; at: number }[] = [];
    let seq = 0;
    const shares: number[] = [];
    for (let now = 0; now <= 20_000; now += 10) {
      primaryMs += 10 * core.cpuShare;
      while (appended.length === 0 || (appended.at(-1) as { at: number }).at + 10 <= primaryMs) {
        const at = appended.length === 0 ? 0 : (appended.at(-1) as { at: number }).at + 10;
        core.logAppended(progress(seq, at), now);
        appended.push({ seq: seq++, at });
      }
      backupMs = Math.min(primaryMs, backupMs + 9);
      const applied = appended.filter((entry) => entry.at + 10 <= backupMs).at(-1);
      if (applied) {
        core.messageReceived(
          { type: 'ack', receivedSeq: seq - 1, appliedSeq: applied.seq, appliedIcount: 0 },
          now,
        );
      }
      core.tick(now);
      if (now >= 10_000) shares.push(core.cpuShare);
    }
    const mean = shares.reduce((sum, share) => sum + share, 0) / shares.length;
    expect(mean).toBeGreaterThan(0.85);
    expect(mean).toBeLessThan(0.95);
    // And the lag it settles at stays under the limit.
    expect(core.executionLagMs(20_000)).toBeLessThan(config.executionLagMsMax);
  });

  it('a full log buffer stops the primary until the backup applied enough', () => {
    const core = replicating();
    for (let seq = 0; seq < 10; seq++) core.logAppended(event(seq, seq * 10, 120), 0);
    expect(core.logFull).toBe(true);
    core.messageReceived({ type: 'ack', receivedSeq: 9, appliedSeq: 1, appliedIcount: 10 }, 1);
    expect(core.logFull).toBe(true); // received is not enough: the backup must have applied them
    core.messageReceived({ type: 'ack', receivedSeq: 9, appliedSeq: 5, appliedIcount: 50 }, 2);
    expect(core.logFull).toBe(false);
  });
});

describe('§3.1 restoring redundancy', () => {
  it('a clone follows the log from the transferred position; outputs wait for it from then on', () => {
    const core = new PrimaryCore<Out>({ vmId: 'vm', epoch: 2, config, withBackup: false, nowMs: 0 });
    core.outputProduced({ name: 'before', coveringSeq: 40, icount: 0 }, 0);
    expect(core.takeEffects().released).toHaveLength(1);
    core.backupAttached(42, 10);
    expect(core.state).toBe('replicating');
    core.logAppended(progress(42, 1000), 11);
    core.outputProduced({ name: 'after', coveringSeq: 42, icount: 0 }, 11);
    core.flush(11);
    const effects = core.takeEffects();
    expect(effects.messages).toEqual([{ type: 'log', entries: [progress(42, 1000)] }]);
    expect(effects.released).toEqual([]);
    core.messageReceived({ type: 'ack', receivedSeq: 42, appliedSeq: 41, appliedIcount: 0 }, 12);
    expect(core.takeEffects().released.map((output) => output.name)).toEqual(['after']);
  });

  it('the clone takes pages, then the state, then the log, in that order, and refuses anything else', () => {
    const clone = new BackupCore({ epoch: 2, config, cloning: true, nowMs: 0 });
    clone.messageReceived({ type: 'transfer-pages', pageNumbers: [3], pages: new Uint8Array(4096) }, 1);
    const state = {
      type: 'transfer-state' as const,
      icount: 1000,
      nextSeq: 42,
      cpu: { kind: 'riscv-cpu', version: 1, state: null },
      devices: {},
      machine: null,
      config: null,
    };
    clone.messageReceived(state, 2);
    let effects = clone.takeEffects();
    expect(effects.pages).toHaveLength(1);
    expect(effects.transferState).toBe(state);
    expect(effects.messages).toEqual([{ type: 'ack', receivedSeq: 41, appliedSeq: 41, appliedIcount: 1000 }]);
    clone.messageReceived({ type: 'log', entries: [progress(42, 1001)] }, 3);
    expect(clone.takeEffects().logEntries).toEqual([progress(42, 1001)]);
    clone.messageReceived({ type: 'transfer-pages', pageNumbers: [1], pages: new Uint8Array(4096) }, 4);
    effects = clone.takeEffects();
    expect(clone.state).toBe('halted');
    expect(effects.halt).toMatch(/pages outside a state transfer/);
  });

  it('log messages taken in one go get one acknowledgement, of the last', () => {
    const backup = new BackupCore({ epoch: 1, config, cloning: false, nowMs: 0 });
    backup.messageReceived({ type: 'log', entries: [event(0, 5)] }, 1);
    backup.messageReceived({ type: 'heartbeat', counter: 1 }, 1);
    backup.messageReceived({ type: 'log', entries: [progress(1, 9), progress(2, 12)] }, 2);
    const effects = backup.takeEffects();
    expect(effects.messages).toEqual([{ type: 'ack', receivedSeq: 2, appliedSeq: -1, appliedIcount: 0 }]);
    expect(effects.logEntries.map((entry) => entry.seq)).toEqual([0, 1, 2]);
    // Both are counted: the log per message, the acknowledgements per message sent.
    expect(backup.statistics()).toMatchObject({
      logEntriesReceived: 3,
      logMessagesReceived: 2,
      messagesSent: 1,
    });
  });

  it("the primary counts its log messages (one per flush) and the backup's messages", () => {
    const core = replicating();
    core.logAppended(event(0, 10), 0);
    core.logAppended(progress(1, 25), 0);
    core.flush(0);
    core.flush(0); // nothing new: no message
    core.logAppended(progress(2, 40), 1);
    core.flush(1);
    core.messageReceived({ type: 'ack', receivedSeq: 2, appliedSeq: -1, appliedIcount: 0 }, 2);
    // The heartbeat of replicating() and this acknowledgement.
    expect(core.statistics(2)).toMatchObject({ logEntriesSent: 3, logMessagesSent: 2, messagesReceived: 2 });
  });

  it('a backup refuses a log with a gap', () => {
    const backup = new BackupCore({ epoch: 1, config, cloning: false, nowMs: 0 });
    backup.messageReceived({ type: 'log', entries: [progress(1, 5)] }, 1);
    expect(backup.takeEffects().halt).toMatch(/entry 1 where 0 was due/);
  });
});
