import type { Device, LogEntry } from '@ftvm/core';
import { progressMarkAfter } from '@ftvm/core';
import {
  MemoryBlockBackend,
  NET_FRAME_OUTPUT,
  VirtioBlock,
  VirtioMmioTransport,
  VirtioNet,
} from '@ftvm/devices';
import type { ImageName } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { loadGuest, runToEndAsync } from './helpers.js';

/** The log a backup holds when its primary dies after `count` entries. */
function logUpTo(entries: readonly LogEntry[], count: number): MemoryLog {
  const log = new MemoryLog();
  for (const entry of entries.slice(0, count)) log.append(entry);
  log.append(progressMarkAfter(entries[count - 1] as LogEntry));
  log.close();
  return log;
}

function diskSlots(backend: MemoryBlockBackend, issueHostIo: boolean): (Device | undefined)[] {
  const slots: (Device | undefined)[] = new Array(8).fill(undefined);
  slots[7] = new VirtioMmioTransport(new VirtioBlock({ backend, issueHostIo }));
  return slots;
}

interface Run {
  console: string;
  icount: number;
  exitStatus: number | undefined;
}

async function record(
  image: ImageName,
  slots?: (Device | undefined)[],
): Promise<{ run: Run; log: MemoryLog }> {
  const log = new MemoryLog();
  let console = '';
  const machine = new Machine({
    mode: 'record',
    log,
    clock: 'icount',
    virtioSlots: slots,
    onOutput: (output) => {
      if (output.kind === 'console') console += new TextDecoder().decode(output.data);
    },
  });
  machine.loadImage(loadGuest(image), image);
  await runToEndAsync(machine, undefined);
  log.close();
  return { run: { console, icount: machine.cpu.icount, exitStatus: machine.exitStatus }, log };
}

/** A backup replays the log it has, goes live where it ends, and runs the guest to its end. */
async function takeOver(image: ImageName, log: MemoryLog, slots?: (Device | undefined)[]): Promise<Run> {
  let console = '';
  const onOutput = (output: { kind: string; data: Uint8Array }) => {
    if (output.kind === 'console') console += new TextDecoder().decode(output.data);
  };
  const backup = new Machine({
    mode: 'replay',
    replayLog: log.reader(),
    clock: 'icount',
    replayOutputs: true,
    virtioSlots: slots,
    onOutput,
  });
  backup.loadImage(loadGuest(image), image);
  await runToEndAsync(backup, undefined);
  expect(backup.exitStatus).toBeUndefined(); // the log ended, the guest did not
  backup.goLive({ mode: 'standalone', onOutput });
  expect(backup.mode).toBe('standalone');
  await runToEndAsync(backup, undefined);
  return { console, icount: backup.cpu.icount, exitStatus: backup.exitStatus };
}

describe('go-live: a backup takes over where its log ends', () => {
  it('clock.elf continues exactly as the primary would have, timers armed again', async () => {
    const { run: original, log } = await record('clock');
    for (const fraction of [0.25, 0.5, 0.8]) {
      const count = Math.floor(log.entries.length * fraction);
      const continued = await takeOver('clock', logUpTo(log.entries, count));
      expect(continued.console).toBe(original.console);
      expect(continued.exitStatus).toBe(0);
      expect(continued.icount).toBe(original.icount);
    }
  });

  it('disk.elf continues with the requests that were in flight reissued on the shared disk', async () => {
    const primaryDisk = new MemoryBlockBackend(1 << 20);
    const { run: original, log } = await record('disk', diskSlots(primaryDisk, true));
    expect(original.exitStatus).toBe(0);
    const completions = log.entries
      .map((entry, index) => ({ entry, index }))
      .filter(({ entry }) => entry.kind === 'event' && entry.device === 'virtio7');
    expect(completions.length).toBeGreaterThan(4);
    // Die just before a completion: that request is in flight when the backup takes over.
    const cuts = [completions[1], completions[Math.floor(completions.length / 2)]].map(
      (item) => item?.index ?? 0,
    );
    for (const index of cuts) {
      const sharedDisk = new MemoryBlockBackend(primaryDisk.bytes.slice());
      const continued = await takeOver('disk', logUpTo(log.entries, index), diskSlots(sharedDisk, false));
      expect(continued.console).toBe(original.console);
      expect(continued.exitStatus).toBe(0);
    }
  });

  it("hands on virtio-net's announcement at once when recording a new log, though the guest sleeps", async () => {
    const netSlots = () => {
      const slots: (Device | undefined)[] = new Array(8).fill(undefined);
      slots[7] = new VirtioMmioTransport(new VirtioNet());
      return slots;
    };
    const { log } = await record('clock', netSlots());
    const count = Math.max(1, Math.floor(log.entries.length / 2));
    const backup = new Machine({
      mode: 'replay',
      replayLog: logUpTo(log.entries, count).reader(),
      clock: 'icount',
      virtioSlots: netSlots(),
    });
    backup.loadImage(loadGuest('clock'), 'clock');
    await runToEndAsync(backup, undefined);
    const frames: { coveringSeq: number; icount: number }[] = [];
    const newLog = new MemoryLog();
    backup.goLive({
      mode: 'record',
      log: newLog,
      onOutput: (output) => {
        if (output.kind === NET_FRAME_OUTPUT)
          frames.push({ coveringSeq: output.coveringSeq, icount: output.icount });
      },
    });
    // Before a single step of the new log: the announcement is covered by the log as it stands.
    expect(frames).toEqual([{ coveringSeq: backup.logPosition.nextSeq - 1, icount: backup.cpu.icount }]);
    expect(newLog.entries).toHaveLength(0);
  });

  it('is refused to a machine that is not a finished replay', () => {
    const live = new Machine({ clock: 'icount' });
    expect(() => live.goLive({})).toThrow(/can go live/);
  });
});
