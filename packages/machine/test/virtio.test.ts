import type { Device, NondetEntry } from '@ftvm/core';
import { DivergenceError } from '@ftvm/core';
import {
  type BlockBackend,
  MemoryBlockBackend,
  VirtioBlock,
  VirtioMmioTransport,
  VirtioRng,
} from '@ftvm/devices';
import { deterministicLines, expectedTranscripts, type ImageName } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { MemoryLog } from '../src/replay-cursor.js';
import { runGuestAsync } from './helpers.js';

/** A disk that must never be touched: what a replay gets (reads come from the log). */
class UntouchableDisk implements BlockBackend {
  calls = 0;
  readonly readOnly = false;
  constructor(readonly sizeBytes: number) {}
  read(): Promise<Uint8Array> {
    this.calls++;
    return Promise.reject(new Error('a replay must not read the disk'));
  }
  write(): Promise<void> {
    this.calls++;
    return Promise.reject(new Error('a replay must not write the disk'));
  }
  flush(): Promise<void> {
    this.calls++;
    return Promise.reject(new Error('a replay must not flush the disk'));
  }
}

/** The virtio devices an image's expected transcript was taken with, QEMU's way: highest slot first. */
function virtioSlots(
  image: 'rng' | 'disk' | 'dmarace' | 'diskbench',
  replayDisk?: UntouchableDisk,
): (Device | undefined)[] {
  const setup = expectedTranscripts[image].setup;
  const slots: (Device | undefined)[] = new Array(8).fill(undefined);
  let slot = 7;
  if (setup.blankDiskBytes !== undefined) {
    const backend = replayDisk ?? new MemoryBlockBackend(setup.blankDiskBytes);
    slots[slot--] = new VirtioMmioTransport(
      new VirtioBlock({ backend, issueHostIo: replayDisk === undefined }),
    );
  }
  if (setup.rng) slots[slot--] = new VirtioMmioTransport(new VirtioRng());
  return slots;
}

const images = ['rng', 'disk', 'dmarace'] as const satisfies readonly ImageName[];

describe('virtio guest images on the board', () => {
  for (const image of images) {
    it(`${image}.elf prints the transcript QEMU prints and exits the same`, async () => {
      const run = await runGuestAsync(image, { virtioSlots: virtioSlots(image) });
      expect(deterministicLines(run.console)).toEqual(expectedTranscripts[image].lines);
      expect(run.machine.exitStatus).toBe(expectedTranscripts[image].exitStatus);
    });

    it(`${image}.elf replays exactly (console, hashes, and no host I/O on the replay)`, async () => {
      const log = new MemoryLog();
      const recorded = await runGuestAsync(image, {
        mode: 'record',
        log,
        logOutputs: true,
        checkpointIntervalSteps: 20_000,
        virtioSlots: virtioSlots(image),
      });
      log.close();
      expect(recorded.machine.exitStatus).toBe(0);
      // The replay's disk is never touched: reads come from the log.
      const replayDisk = new UntouchableDisk(expectedTranscripts[image].setup.blankDiskBytes ?? 0);
      const replayed = await runGuestAsync(image, {
        mode: 'replay',
        replayLog: log.reader(),
        logOutputs: true,
        virtioSlots: virtioSlots(image, replayDisk),
      });
      expect(replayDisk.calls).toBe(0);
      expect(replayed.console).toBe(recorded.console);
      expect(replayed.machine.cpu.icount).toBe(recorded.machine.cpu.icount);
      expect(Buffer.from(replayed.machine.stateHash()).toString('hex')).toBe(
        Buffer.from(recorded.machine.stateHash()).toString('hex'),
      );
    });
  }
});

describe('disk throughput guest', () => {
  it('diskbench.elf writes 16 MiB, reads it back and prints the transcript QEMU prints', async () => {
    const run = await runGuestAsync('diskbench', { virtioSlots: virtioSlots('diskbench') });
    expect(deterministicLines(run.console)).toEqual(expectedTranscripts.diskbench.lines);
    expect(run.machine.exitStatus).toBe(0);
  });
});

describe('a replay that reads something else than the recording', () => {
  it('names the icount where a tampered read key no longer matches', async () => {
    const log = new MemoryLog();
    await runGuestAsync('rng', { mode: 'record', log, virtioSlots: virtioSlots('rng') });
    log.close();
    const reads = log.entries.filter((entry): entry is NondetEntry => entry.kind === 'nondet');
    expect(reads.length).toBeGreaterThan(0);
    const victim = reads[0] as NondetEntry;
    const tampered = new MemoryLog();
    for (const entry of log.entries)
      tampered.append(entry === victim ? { ...victim, key: 'temperature' } : entry);
    tampered.close();
    let caught: unknown;
    try {
      await runGuestAsync('rng', {
        mode: 'replay',
        replayLog: tampered.reader(),
        virtioSlots: virtioSlots('rng'),
      });
    } catch (error) {
      caught = error;
    }
    expect(DivergenceError.is(caught)).toBe(true);
    expect((caught as DivergenceError).kind).toBe('nondet-mismatch');
    expect((caught as DivergenceError).icount).toBe(victim.icount);
  });
});
