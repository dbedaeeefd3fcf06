import type { Arbiter, FtMessage, LogChannel } from '@ftvm/core';
import type { ImageName } from '@ftvm/guests';
import { Machine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import { describe, expect, it } from 'vitest';
import { FtBackup } from '../src/backup.js';
import type { FtConfig } from '../src/config.js';
import type { FtEvent } from '../src/events.js';
import { FtPrimary } from '../src/primary.js';
import { arbiterAtEpochOne, ConsoleCapture, loadGuest, memoryLink, standaloneConsole } from './support.js';

const config = { failureTimeoutMs: 300, heartbeatIntervalMs: 30 };

/** What every role in these tests shares: the VM, the limits, the clock, the arbiter, the events. */
interface Roles {
  readonly arbiter: Arbiter;
  readonly events: FtEvent[];
  readonly scheduler: ReturnType<typeof createNodeHost>;
}

/** A machine for a role: `image` loaded, or none for a clone (its RAM comes over). */
function bootMachine(image: ImageName | undefined, checkpointIntervalSteps: number) {
  return (hooks: object) => {
    const machine = new Machine({ clock: 'icount', checkpointIntervalSteps, ...hooks });
    if (image) machine.loadImage(loadGuest(image), image);
    return machine;
  };
}

function makePrimary(
  roles: Roles,
  deliver: ConsoleCapture['deliver'],
  createMachine: ReturnType<typeof bootMachine>,
) {
  return new FtPrimary({
    vmId: 'vm1',
    host: 'host-a',
    epoch: 1,
    config,
    scheduler: roles.scheduler,
    arbiter: roles.arbiter,
    deliver,
    onEvent: (event) => roles.events.push(event),
    createMachine,
  });
}

function makeBackup(
  roles: Roles,
  host: string,
  channel: LogChannel,
  cloning: boolean,
  deliver: ConsoleCapture['deliver'],
  createMachine: ReturnType<typeof bootMachine>,
  extra: { config?: Partial<FtConfig>; beforeGoLive?: (epoch: number) => void } = {},
) {
  return new FtBackup({
    vmId: 'vm1',
    host,
    epoch: 1,
    config: { ...config, ...extra.config },
    ...(extra.beforeGoLive ? { beforeGoLive: extra.beforeGoLive } : {}),
    scheduler: roles.scheduler,
    arbiter: roles.arbiter,
    channel,
    cloning,
    deliver,
    onEvent: (event) => roles.events.push(event),
    createMachine,
  });
}

/** `store`, with `after` told of each test-and-set once it is decided, before its caller hears. */
function arbiterHooked(
  store: Arbiter,
  after: (owner: string, result: Awaited<ReturnType<Arbiter['testAndSet']>>) => void,
): Arbiter {
  return {
    testAndSet: async (vmId, fromEpoch, owner) => {
      const result = await store.testAndSet(vmId, fromEpoch, owner);
      after(owner, result);
      return result;
    },
    read: (vmId) => store.read(vmId),
  };
}

/**
 * A primary and its backup booted together from `image`, joined by an in-process channel
 * (checkpoints every 20,000 steps unless `options` say otherwise; `options.backup` as makeBackup's).
 */
async function pair(
  image: ImageName,
  arbiter: Arbiter,
  events: FtEvent[],
  options: { checkpointIntervalSteps?: number; backup?: Parameters<typeof makeBackup>[6] } = {},
) {
  const roles: Roles = { arbiter, events, scheduler: createNodeHost() };
  const link = await memoryLink();
  const primaryConsole = new ConsoleCapture();
  const backupConsole = new ConsoleCapture();
  const steps = options.checkpointIntervalSteps ?? 20_000;
  const primary = makePrimary(roles, primaryConsole.deliver, bootMachine(image, steps));
  const backup = makeBackup(
    roles,
    'host-b',
    link.backup,
    false,
    backupConsole.deliver,
    bootMachine(image, steps),
    options.backup,
  );
  primary.attachBackup(link.primary);
  return { primary, backup, link, primaryConsole, backupConsole };
}

describe('a primary and a backup in lockstep', () => {
  it('paging.elf: the backup replays the whole run and powers off where the primary did', async () => {
    const arbiter = arbiterAtEpochOne();
    const events: FtEvent[] = [];
    const { primary, backup, primaryConsole } = await pair('paging', arbiter, events);
    const [primaryEnd, backupEnd] = await Promise.all([primary.run(), backup.run()]);
    const reference = standaloneConsole('paging');
    // The events say why, should either side end otherwise (a failure detected under load).
    const why = `events: ${JSON.stringify(events)}`;
    expect(primaryEnd, why).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
    expect(backupEnd, why).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
    expect(primaryConsole.text).toBe(reference.console);
    expect(backup.machine.stateHash()).toEqual(primary.machine.stateHash());
    // Nobody suspected anybody: at most the backup, done first, said goodbye.
    expect(events.filter((event) => event.type !== 'backup-dropped')).toEqual([]);
    for (const event of events)
      expect(event).toMatchObject({ reason: 'the backup left: the guest powered off' });
  });

  it('paging.elf: a backup far behind when the primary powers off still replays to the power-off (found under load)', async () => {
    const arbiter = arbiterAtEpochOne();
    const events: FtEvent[] = [];
    const { primary, backup } = await pair('paging', arbiter, events);
    // The backup's thread is busy elsewhere: the whole log and the goodbye arrive before it runs.
    const primaryEnd = await primary.run();
    const backupEnd = await backup.run();
    const reference = standaloneConsole('paging');
    expect(primaryEnd).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
    expect(backupEnd).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
    expect(backup.machine.stateHash()).toEqual(primary.machine.stateHash());
  });
});

/**
 * `channel` as the backup sees it, with every message it receives passed through `intercept`
 * (which hands it on, changed or not, or holds it back): a log damaged or delayed on its way.
 */
function intercepted(
  channel: LogChannel,
  intercept: (message: FtMessage, deliver: (message: FtMessage) => void) => void,
): LogChannel {
  return {
    get peer() {
      return channel.peer;
    },
    get bufferedBytes() {
      return channel.bufferedBytes;
    },
    get closed() {
      return channel.closed;
    },
    send: (message) => channel.send(message),
    onClose: (listener) => channel.onClose(listener),
    close: (options) => channel.close(options),
    onMessage: (listener) => channel.onMessage((message) => intercept(message, listener)),
  };
}

describe('divergence: a backup whose replay disagrees with the log', () => {
  it('ends diverged, names where, says so once; the primary goes on alone and finishes', async () => {
    const arbiter = arbiterAtEpochOne();
    const events: FtEvent[] = [];
    const roles: Roles = { arbiter, events, scheduler: createNodeHost() };
    const link = await memoryLink();
    // A corrupted log, as a bug or bad memory would make it: the first checkpoint's hash altered
    // on its way to the backup.
    let altered = false;
    const corrupting = intercepted(link.backup, (message, deliver) => {
      if (message.type !== 'log' || altered) return deliver(message);
      const entries = message.entries.map((entry) => {
        if (entry.kind !== 'checkpoint' || altered) return entry;
        altered = true;
        return { ...entry, stateHash: entry.stateHash.map((byte) => byte ^ 0xff) };
      });
      deliver({ ...message, entries });
    });
    const primaryConsole = new ConsoleCapture();
    const primary = makePrimary(roles, primaryConsole.deliver, bootMachine('paging', 20_000));
    const backup = makeBackup(roles, 'host-b', corrupting, false, () => {}, bootMachine('paging', 20_000));
    primary.attachBackup(link.primary);
    const [primaryEnd, backupEnd] = await Promise.all([primary.run(), backup.run()]);
    const reference = standaloneConsole('paging');
    expect(altered).toBe(true);
    expect(backupEnd.end).toBe('diverged');
    const halted = events.filter((event) => event.type === 'backup-halted');
    expect(halted).toHaveLength(1);
    expect(halted[0]).toMatchObject({
      reason: expect.stringMatching(/^diverged: replay diverged at icount 20000 \(state-hash\)/),
    });
    // The backup told its primary, which went on alone (no arbiter needed) and finished the run.
    expect(events.some((event) => event.type === 'backup-dropped')).toBe(true);
    expect(primaryEnd).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
    expect(primaryConsole.text).toBe(reference.console);
  });

  it('going live: a replay that disagrees with the rest of the log ends diverged, and the deposed primary hears nothing', async () => {
    const store = arbiterAtEpochOne();
    const events: FtEvent[] = [];
    const link = await memoryLink();
    // From the first checkpoint on (its hash altered), the backup hears nothing: it suspects its
    // primary, and gets the withheld log only while the arbiter decides, so it replays the
    // corrupt checkpoint while going live. (The checkpoint is in the first log message: the
    // backup never heard its primary, so the startup grace is shortened to the failure timeout.)
    let altered = false;
    const withheld: FtMessage[] = [];
    let deliver: (message: FtMessage) => void = () => {};
    const withholding = intercepted(link.backup, (message, deliverNow) => {
      deliver = deliverNow;
      if (
        !altered &&
        message.type === 'log' &&
        message.entries.some((entry) => entry.kind === 'checkpoint')
      ) {
        altered = true;
        const entries = message.entries.map((entry) =>
          entry.kind === 'checkpoint'
            ? { ...entry, stateHash: entry.stateHash.map((byte) => byte ^ 0xff) }
            : entry,
        );
        withheld.push({ ...message, entries });
        return;
      }
      if (altered) withheld.push(message);
      else deliverNow(message);
    });
    // The log comes in just before the answer: no slice runs between the two.
    const arbiter = arbiterHooked(store, (owner) => {
      if (owner === 'host-b') for (const message of withheld.splice(0)) deliver(message);
    });
    const roles: Roles = { arbiter, events, scheduler: createNodeHost() };
    const primary = makePrimary(roles, () => {}, bootMachine('paging', 20_000));
    const backup = makeBackup(roles, 'host-b', withholding, false, () => {}, bootMachine('paging', 20_000), {
      config: { startupGraceMs: config.failureTimeoutMs },
    });
    primary.attachBackup(link.primary);
    const [primaryEnd, backupEnd] = await Promise.all([primary.run(), backup.run()]);
    const why = `events: ${JSON.stringify(events)}`;
    expect(altered).toBe(true);
    expect(events.some((event) => event.type === 'backup-went-live')).toBe(false);
    expect(backupEnd.end, why).toBe('diverged');
    const halted = events.filter((event) => event.type === 'backup-halted');
    expect(halted, why).toHaveLength(1);
    // Said as the other paths say it.
    expect(halted[0]).toMatchObject({
      epoch: 2,
      reason: expect.stringMatching(/^diverged: replay diverged at icount 20000 \(state-hash\)/),
    });
    // No goodbye reached the old primary: it did not go on alone, it lost the arbiter and halted.
    expect(
      events.some((event) => event.type === 'backup-dropped'),
      why,
    ).toBe(false);
    expect(primaryEnd, why).toMatchObject({ end: 'halted' });
    expect(await store.read('vm1')).toEqual({ epoch: 2, owner: 'host-b' });
  });
});

/** Resolves after `ms` of host time. */
const after = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('failures (the paper §2.3): fail-stop of either side, partitions', () => {
  for (const killAtMs of [40, 120]) {
    it(`the primary dies ${killAtMs} ms in: the backup wins the arbiter, goes live and finishes the run`, async () => {
      const arbiter = arbiterAtEpochOne();
      const events: FtEvent[] = [];
      const { primary, backup, link, primaryConsole, backupConsole } = await pair('paging', arbiter, events);
      const primaryRun = primary.run();
      const backupRun = backup.run();
      await after(killAtMs);
      primary.kill();
      link.disconnect();
      const primaryEnd = await primaryRun;
      const backupEnd = await backupRun;
      if (primaryEnd.end === 'powered-off') {
        // It finished before the kill landed: the backup powered off with it.
        expect(backupEnd.end).toBe('powered-off');
        return;
      }
      expect(primaryEnd).toEqual({ end: 'killed' });
      const reference = standaloneConsole('paging');
      if (backupEnd.end === 'powered-off') {
        // The guest had powered off before the primary died (its last outputs may have been
        // waiting for their acknowledgement: lost with it, as the paper allows); the backup
        // replayed to the same end.
        expect(backupEnd.exitStatus).toBe(reference.exitStatus);
        expect(reference.console.startsWith(primaryConsole.text)).toBe(true);
        return;
      }
      expect(backupEnd.end).toBe('went-live');
      if (backupEnd.end !== 'went-live') return;
      expect(await arbiter.read('vm1')).toEqual({ epoch: 2, owner: 'host-b' });
      expect(backupEnd.primary.epoch).toBe(2);
      expect(await backupEnd.primary.run()).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
      // What the dead primary let out is the start of the run, what the new one printed its end.
      expect(reference.console.startsWith(primaryConsole.text)).toBe(true);
      expect(reference.console.endsWith(backupConsole.text)).toBe(true);
      expect(primaryConsole.text.length + backupConsole.text.length).toBeLessThanOrEqual(
        reference.console.length,
      );
      expect(events.map((event) => event.type)).toEqual(
        expect.arrayContaining(['peer-suspected', 'arbiter-won', 'backup-went-live']),
      );
    });
  }

  /**
   * A pair on bench.elf (long enough that the kill always lands first) whose primary dies once
   * the backup replays. `hooks` run as the backup wins the arbiter, and just before it would start
   * as the new primary.
   */
  async function backupGoingLive(hooks: {
    onArbiterWon?: (backup: FtBackup) => void;
    beforeGoLive?: (backup: FtBackup) => void;
  }) {
    const store = arbiterAtEpochOne();
    let hooked: FtBackup | undefined;
    const arbiter = arbiterHooked(store, (owner, result) => {
      if (owner === 'host-b' && result.won && hooked) hooks.onArbiterWon?.(hooked);
    });
    const events: FtEvent[] = [];
    const { primary, backup, link } = await pair('bench', arbiter, events, {
      checkpointIntervalSteps: 20_000_000,
      backup: {
        beforeGoLive: () => {
          if (hooked) hooks.beforeGoLive?.(hooked);
        },
      },
    });
    hooked = backup;
    const primaryRun = primary.run();
    const backupRun = backup.run();
    while (backup.machine.cpu.icount === 0) await after(1);
    primary.kill();
    link.disconnect();
    expect(await primaryRun).toEqual({ end: 'killed' });
    // A run that never ends (a wait nothing wakes) fails here rather than at the test's timeout.
    const backupEnd = await Promise.race([backupRun, after(5000).then(() => 'still running')]);
    return { backup, backupEnd, events, store, why: `events: ${JSON.stringify(events)}` };
  }

  it('the backup dies as it goes live (the arbiter won, the log replayed): it ends killed and never runs as a primary', async () => {
    let fenced = 0;
    const run = await backupGoingLive({
      // The last thing before the new primary starts: its host dies here.
      beforeGoLive: (backup) => {
        fenced++;
        backup.kill();
      },
    });
    expect(fenced, run.why).toBe(1);
    expect(run.backupEnd, run.why).toEqual({ end: 'killed' });
    expect(run.backup.state).toBe('halted'); // not left 'going-live'
    expect(run.events.some((event) => event.type === 'backup-went-live')).toBe(false);
    expect(await run.store.read('vm1')).toEqual({ epoch: 2, owner: 'host-b' });
  });

  it('the backup dies while its last replay waits for a read of its own that never completes: it ends killed', async () => {
    let fenced = 0;
    const run = await backupGoingLive({
      onArbiterWon: (backup) => {
        // From now on the replay waits for a device's read that never completes (a dead host's
        // disk IO), as a backup reading the shared disk itself would; then the host dies.
        backup.machine.runSlice = () => ({ steps: 0, end: 'log-starved' });
        Object.defineProperty(backup.machine, 'deviceWait', { get: () => new Promise<void>(() => {}) });
        setTimeout(() => backup.kill(), 30);
      },
      beforeGoLive: () => {
        fenced++;
      },
    });
    expect(run.backupEnd, run.why).toEqual({ end: 'killed' });
    expect(run.backup.state).toBe('halted');
    expect(fenced, run.why).toBe(0);
    expect(run.events.some((event) => event.type === 'backup-went-live')).toBe(false);
  });

  it('the backup dies: the primary wins the arbiter, lets its held outputs go, and finishes alone', async () => {
    const arbiter = arbiterAtEpochOne();
    const events: FtEvent[] = [];
    const { primary, backup, link, primaryConsole } = await pair('paging', arbiter, events);
    const primaryRun = primary.run();
    const backupRun = backup.run();
    // Killed once it has replayed something: a fixed delay let a fast pair finish the run first.
    while (backup.machine.cpu.icount === 0) await after(1);
    backup.kill();
    link.disconnect();
    expect(await backupRun).toEqual({ end: 'killed' });
    const reference = standaloneConsole('paging');
    expect(await primaryRun).toEqual({ end: 'powered-off', exitStatus: reference.exitStatus });
    expect(primaryConsole.text).toBe(reference.console);
    if (events.length > 0) {
      expect(events.map((event) => event.type)).toEqual(['peer-suspected', 'arbiter-won', 'backup-dropped']);
      expect(primary.epoch).toBe(2);
    }
  });

  it('a partition: both suspect, exactly one wins the arbiter; the other halts having emitted nothing more', async () => {
    const arbiter = arbiterAtEpochOne();
    const events: FtEvent[] = [];
    const { primary, backup, link } = await pair('paging', arbiter, events);
    const primaryRun = primary.run();
    const backupRun = backup.run();
    await after(80);
    link.disconnect();
    const [primaryEnd, backupEnd] = await Promise.all([primaryRun, backupRun]);
    if (primaryEnd.end === 'powered-off' && backupEnd.end === 'powered-off') return; // finished first
    const winners = events.filter((event) => event.type === 'arbiter-won');
    expect(winners).toHaveLength(1);
    const record = await arbiter.read('vm1');
    expect(record.epoch).toBe(2);
    if (record.owner === 'host-a') {
      expect(primaryEnd.end).toBe('powered-off');
      expect(backupEnd.end).toBe('halted');
    } else {
      expect(primaryEnd.end).toBe('halted');
      expect(backupEnd.end).toBe('went-live');
      if (backupEnd.end === 'went-live') expect((await backupEnd.primary.run()).end).toBe('powered-off');
    }
  });
});

/** The state hash of a standalone run of `image` after exactly `icount` steps (deterministic clock). */
function referenceHashAt(image: ImageName, icount: number): Uint8Array {
  const machine = new Machine({ clock: 'icount', checkpointIntervalSteps: 20_000 });
  machine.loadImage(loadGuest(image), image);
  while (machine.cpu.icount < icount) {
    const outcome = machine.runSlice(icount - machine.cpu.icount);
    if (outcome.steps === 0) throw new Error(`the reference stopped at ${machine.cpu.icount}`);
  }
  return machine.stateHash();
}

describe('restoring redundancy: a new backup cloned from the running primary (§3.1)', () => {
  it('a clone of a running bench.elf follows the log; when the primary dies it goes on exactly where it was', async () => {
    const roles: Roles = { arbiter: arbiterAtEpochOne(), events: [], scheduler: createNodeHost() };
    const { events } = roles;
    const primary = makePrimary(roles, () => {}, bootMachine('bench', 200_000));
    const primaryRun = primary.run();
    await after(100);
    const link = await memoryLink();
    const clone = makeBackup(roles, 'host-c', link.backup, true, () => {}, bootMachine(undefined, 200_000));
    const cloneRun = clone.run();
    const startedAt = primary.machine.cpu.icount;
    const report = await primary.cloneTo(link.primary);
    expect(report.pagesSent).toBeGreaterThan(0);
    expect(report.rounds).toBeGreaterThanOrEqual(1);
    expect(report.firstSeq).toBeGreaterThan(0);
    expect(primary.state).toBe('replicating');
    expect(primary.machine.cpu.icount).toBeGreaterThan(startedAt); // the guest ran during the transfer
    await after(150);
    expect(clone.statistics().logEntriesReceived).toBeGreaterThan(0);
    primary.kill();
    link.disconnect();
    expect(await primaryRun).toEqual({ end: 'killed' });
    const cloneEnd = await cloneRun;
    expect(cloneEnd.end).toBe('went-live');
    if (cloneEnd.end !== 'went-live') return;
    const wentLiveAt = cloneEnd.primary.machine.cpu.icount;
    expect(wentLiveAt).toBeGreaterThan(startedAt);
    const live = cloneEnd.primary.run();
    await after(100);
    cloneEnd.primary.stop();
    expect(await live).toEqual({ end: 'stopped' });
    const machine = cloneEnd.primary.machine;
    expect(machine.cpu.icount).toBeGreaterThan(wentLiveAt);
    expect(machine.stateHash()).toEqual(referenceHashAt('bench', machine.cpu.icount));
    expect(events.map((event) => event.type)).toEqual(
      expect.arrayContaining(['clone-started', 'clone-finished', 'arbiter-won', 'backup-went-live']),
    );
  });
});
