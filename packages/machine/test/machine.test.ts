import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventEntry, LogEntry } from '@ftvm/core';
import { DivergenceError } from '@ftvm/core';
import {
  deterministicLines,
  type ImageName,
  referenceQemuArgs,
  referenceQemuAvailable,
  referenceQemuBinary,
  runOnReferenceQemu,
} from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { loadGuest, ManualHostClock, runGuest, runToEnd } from './helpers.js';

const qemu = referenceQemuAvailable();
const hasDtc = spawnSync('sh', ['-c', 'command -v dtc'], { stdio: 'ignore' }).status === 0;
const skipWithoutQemu = !qemu ? 'qemu-system-riscv32 is not installed (run scripts/setup.mjs)' : '';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Removes the nodes the board does not model from `dtc -O dts` text (PCI, flash, fw-cfg, pmu…). */
function withoutUnmodelledNodes(dts: string): string {
  let text = dts;
  for (const name of ['pmu', 'fw-cfg@10100000', 'flash@20000000', 'platform-bus@4000000', 'pci@30000000']) {
    text = text.replace(
      new RegExp(`\\n(\\t+)${name.replace('.', '\\.')} \\{\\n[\\s\\S]*?\\n\\1\\};\\n`),
      '\n',
    );
  }
  // QEMU puts a random seed for the guest's RNG here; the board leaves it out (determinism).
  return text.replace(/\n\t*rng-seed = <[^>]*>;/, '').replace(/\n{3,}/g, '\n\n');
}

describe.skipIf(!qemu || !hasDtc)('the board device tree (needs QEMU and dtc)', () => {
  it('matches QEMU virt for every node the board models', () => {
    const directory = mkdtempSync(join(tmpdir(), 'ftvm-board-'));
    const qemuBlob = join(directory, 'qemu.dtb');
    const ourBlob = join(directory, 'ftvm.dtb');
    const bootArgs = 'console=ttyS0 iterations=10';
    const dump = spawnSync(
      referenceQemuBinary,
      referenceQemuArgs('hello', { append: bootArgs, dumpDeviceTreeTo: qemuBlob }),
      { encoding: 'utf8' },
    );
    expect(dump.status).toBe(0);
    writeFileSync(ourBlob, new Machine({ clock: 'icount', bootArgs }).deviceTreeBlob);

    const decode = (path: string) =>
      spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', path], { encoding: 'utf8' }).stdout;
    expect(decode(ourBlob)).toBe(withoutUnmodelledNodes(decode(qemuBlob)));
  });
});

const quickImages: ImageName[] = ['hello', 'clock', 'paging'];

describe('guest images on the board', () => {
  // bench.elf is cut to 200 iterations (about 100 million instructions) through its command line.
  const bootArgs: Partial<Record<ImageName, string>> = { bench: 'iterations=200' };
  for (const image of [...quickImages, 'bench'] as ImageName[]) {
    it.skipIf(!qemu)(
      `${image}.elf prints what it prints on QEMU and exits the same ${skipWithoutQemu}`,
      async () => {
        const reference = await runOnReferenceQemu(image, { timeoutMs: 120_000, append: bootArgs[image] });
        const ours = runGuest(image, { bootArgs: bootArgs[image] });

        expect(deterministicLines(ours.console)).toEqual(deterministicLines(reference.output));
        expect(ours.machine.exitStatus).toBe(reference.exit.status);
      },
    );
  }

  it("an ELF entry with bit 0 set starts at the even address, as QEMU's jr t0 does", () => {
    const plain = runGuest('hello', { clock: 'icount' });
    const odd = loadGuest('hello');
    const view = new DataView(odd.buffer, odd.byteOffset, odd.byteLength);
    view.setUint32(24, view.getUint32(24, true) | 1, true); // e_entry
    const machine = new Machine({ clock: 'icount' });
    machine.loadImage(odd, 'odd-entry.elf');
    expect(machine.cpu.pc).toBe(view.getUint32(24, true) - 1);
    expect(machine.cpu.getRegister(5)).toBe(view.getUint32(24, true));
    const run = runGuest(odd, { clock: 'icount' });
    expect(run.console).toBe(plain.console);
    expect(run.machine.exitStatus).toBe(0);
  });

  it('hello.elf runs and exits 0 without QEMU too', () => {
    const run = runGuest('hello', { clock: 'icount' });
    expect(run.machine.exitStatus).toBe(0);
    expect(run.console.length).toBeGreaterThan(0);
  });
});

describe('record and replay in memory', () => {
  for (const image of quickImages) {
    it(`${image}.elf replays to the same console and state hash`, () => {
      const log = new MemoryLog();
      const recorded = runGuest(image, {
        mode: 'record',
        log,
        checkpointIntervalSteps: 10_000,
        logOutputs: true,
      });
      log.close();
      expect(recorded.machine.exitStatus).toBe(0);
      expect(log.entries.some((entry) => entry.kind === 'checkpoint')).toBe(true);
      const replayed = runGuest(image, { mode: 'replay', replayLog: log.reader(), logOutputs: true });
      expect(replayed.console).toBe(recorded.console);
      expect(replayed.machine.exitStatus).toBe(recorded.machine.exitStatus);
      expect(replayed.machine.cpu.icount).toBe(recorded.machine.cpu.icount);
      expect(hex(replayed.machine.stateHash())).toBe(hex(recorded.machine.stateHash()));
    });
  }

  function recordClock(): MemoryLog {
    const log = new MemoryLog();
    runGuest('clock', { mode: 'record', log, checkpointIntervalSteps: 20_000, logOutputs: true });
    log.close();
    return log;
  }

  function replayExpectingDivergence(entries: LogEntry[]): DivergenceError {
    const log = new MemoryLog();
    for (const entry of entries) log.append(entry);
    log.close();
    try {
      runGuest('clock', { mode: 'replay', replayLog: log.reader(), logOutputs: true });
    } catch (error) {
      if (DivergenceError.is(error)) return error;
      throw error;
    }
    throw new Error('the tampered replay did not diverge');
  }

  it('finds a tampered clock sample where it first changes an output or the state', () => {
    const log = recordClock();
    const samples = log.entries.filter(
      (entry): entry is EventEntry => entry.kind === 'event' && entry.event.type === 'clock-track',
    );
    expect(samples.length).toBeGreaterThan(2);
    // The guest prints the time it reads first, so moving that sample must show.
    const victim = samples[0] as EventEntry;
    const [baseNs, rate] = victim.event.data as [number, number];
    const tampered = log.entries.map((entry) =>
      entry === victim ? { ...victim, event: { ...victim.event, data: [baseNs + 5e9, rate] } } : entry,
    );
    const error = replayExpectingDivergence(tampered);
    expect(['state-hash', 'output']).toContain(error.kind);
    expect(error.icount).toBeGreaterThanOrEqual(victim.icount);
  });

  it('reports a log that ends early as a divergence, not a silent success', () => {
    const log = recordClock();
    const error = replayExpectingDivergence(log.entries.slice(0, Math.floor(log.entries.length / 2)));
    expect(DivergenceError.is(error)).toBe(true);
  });
});

describe('snapshots', () => {
  for (const image of ['paging', 'clock'] as ImageName[]) {
    it(`${image}.elf restored mid-run into a fresh machine continues exactly as the original`, () => {
      const clock = new ManualHostClock();
      const output = (sink: number[]) => (item: { kind: string; data: Uint8Array }) => {
        if (item.kind === 'console') sink.push(...item.data);
      };
      const originalOut: number[] = [];
      const original = new Machine({ clock: 'icount', hostClock: clock, onOutput: output(originalOut) });
      original.loadImage(loadGuest(image));
      original.runSlice(30_000);
      const snapshot = structuredClone(original.saveSnapshot());
      const splitAt = originalOut.length;

      const restoredOut: number[] = [];
      const restored = new Machine({ clock: 'icount', hostClock: clock, onOutput: output(restoredOut) });
      restored.restoreSnapshot(snapshot);
      expect(hex(restored.stateHash())).toBe(hex(original.stateHash()));

      runToEnd(original, undefined);
      runToEnd(restored, undefined);
      expect(restored.exitStatus).toBe(original.exitStatus);
      expect(restored.cpu.icount).toBe(original.cpu.icount);
      expect(Buffer.from(restoredOut).toString()).toBe(Buffer.from(originalOut.slice(splitAt)).toString());
      expect(hex(restored.stateHash())).toBe(hex(original.stateHash()));
    });
  }
});
