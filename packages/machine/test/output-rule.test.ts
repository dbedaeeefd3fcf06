import type { Device, DeviceEnv, LogEntry } from '@ftvm/core';
import { isInStepEntry, progressMarkAfter } from '@ftvm/core';
import type { ImageName } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { Machine, type MachineOutput } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { loadGuest, ManualHostClock, program, runToEnd } from './helpers.js';

/**
 * The output rule, as the machine states it (docs/architecture.md, the fault-tolerance table): an output
 * of the step at icount N is handed on with the sequence number of a log entry that lets a backup
 * execute at least through step N. These tests check the rule on real guests by doing what a
 * backup does: replay exactly the log up to that entry, and see how far it gets.
 */

interface Recording {
  entries: LogEntry[];
  outputs: MachineOutput[];
  console: string;
}

function record(image: ImageName, clock: 'icount' | 'host'): Recording {
  const log = new MemoryLog();
  const outputs: MachineOutput[] = [];
  const hostClock = new ManualHostClock();
  const machine = new Machine({
    mode: 'record',
    log,
    clock,
    hostClock,
    checkpointIntervalSteps: 50_000,
    onOutput: (output) => outputs.push(output),
  });
  machine.loadImage(loadGuest(image), image);
  runToEnd(machine, hostClock);
  log.close();
  const console = new TextDecoder().decode(
    Uint8Array.from(outputs.filter((o) => o.kind === 'console').flatMap((o) => [...o.data])),
  );
  return { entries: log.entries, outputs, console };
}

/** How far a backup that holds the log up to entry `seq` (inclusive) executes before it must stop. */
function backupReach(image: ImageName, entries: readonly LogEntry[], seq: number): number {
  const log = new MemoryLog();
  for (const entry of entries.slice(0, seq + 1)) log.append(entry);
  log.close();
  const backup = new Machine({ mode: 'replay', replayLog: log.reader(), clock: 'icount' });
  backup.loadImage(loadGuest(image), image);
  // The backup runs until the log it holds ends (or the guest powers off where the log says so).
  for (let round = 0; round < 100_000 && !backup.isStopped; round++) backup.runSlice(1_000_000);
  return backup.cpu.icount;
}

describe('output rule: every output names the log position that covers it', () => {
  for (const image of ['hello', 'clock'] as const) {
    it(`${image}.elf: the covering entry lets a backup run past the output's step`, () => {
      const { entries, outputs } = record(image, 'icount');
      expect(outputs.length).toBeGreaterThan(5);
      let previousCovering = -1;
      for (const output of outputs) {
        const covering = entries[output.coveringSeq];
        expect(covering, `output at icount ${output.icount}`).toBeDefined();
        expect(isInStepEntry(covering as LogEntry)).toBe(false);
        expect((covering as LogEntry).icount).toBeGreaterThan(output.icount);
        // The first such entry: none before it (after the previous output's) would have done.
        for (let seq = Math.max(0, previousCovering); seq < output.coveringSeq; seq++) {
          const entry = entries[seq] as LogEntry;
          if (!isInStepEntry(entry) && seq > previousCovering)
            expect(entry.icount).toBeLessThanOrEqual(output.icount);
        }
        previousCovering = output.coveringSeq;
      }
      // Replaying exactly up to a covering entry reaches past the output (sampled, to stay quick).
      const sample = outputs.filter((_, index) => index % Math.ceil(outputs.length / 12) === 0);
      for (const output of sample) {
        expect(backupReach(image, entries, output.coveringSeq)).toBeGreaterThan(output.icount);
      }
    });
  }

  it('counting the entries appended before an output is not enough (why the rule names a position)', () => {
    const { entries, outputs } = record('hello', 'icount');
    // The number of entries before the first console byte covers none of the steps up to it.
    const first = outputs[0] as MachineOutput;
    const before = entries.filter((entry) => entry.seq < first.coveringSeq && !isInStepEntry(entry));
    expect(before.every((entry) => entry.icount <= first.icount)).toBe(true);
    const reach = before.length === 0 ? 0 : backupReach('hello', entries, (before.at(-1) as LogEntry).seq);
    expect(reach).toBeLessThanOrEqual(first.icount);
  });

  it('clock.elf with the host clock: outputs are covered, and a backup cut there goes live after them', () => {
    const { entries, outputs, console } = record('clock', 'host');
    expect(console).toContain('clock');
    const middle = outputs[Math.floor(outputs.length / 2)] as MachineOutput;
    const log = new MemoryLog();
    for (const entry of entries.slice(0, middle.coveringSeq + 1)) log.append(entry);
    log.append(progressMarkAfter(entries[middle.coveringSeq] as LogEntry));
    log.close();
    const backup = new Machine({ mode: 'replay', replayLog: log.reader(), clock: 'host' });
    backup.loadImage(loadGuest('clock'), 'clock');
    for (let round = 0; round < 100_000 && !backup.isStopped; round++) backup.runSlice(1_000_000);
    expect(backup.cpu.icount).toBeGreaterThan(middle.icount);
  });

  it('a recording holds outputs until their owner releases them (holdOutputs), in order', async () => {
    const releasedOrder: number[] = [];
    let writes = 0;
    // Every store is an output; the probe notes when the output door says "released".
    const { machine, log, held } = holdingRecorder((env) => {
      const index = writes++;
      void env.output('probe', Uint8Array.of(index)).then(() => releasedOrder.push(index));
    });
    machine.loadImage(storesThenPowerOff([0x0002a023, 0x0002a023, 0x0002a023])); // sw zero, 0(t0) ×3
    runToEnd(machine, undefined);
    expect(machine.exitStatus).toBe(0);
    expect(held.map((output) => output.icount)).toEqual([1, 2, 3]);
    // A held output ends the run: the first is covered right after its own step, by a progress
    // mark. The two that follow within PROMPT_COVER_STEPS_MIN share the next boundary, the
    // power-off entry.
    expect(log.entries[(held[0] as MachineOutput).coveringSeq]).toMatchObject({
      kind: 'progress',
      icount: 2,
    });
    for (const output of held.slice(1)) expect(log.entries[output.coveringSeq]?.kind).toBe('stop');
    await new Promise((resolve) => setImmediate(resolve));
    expect(releasedOrder).toEqual([]);
    (held[1] as MachineOutput).release();
    (held[0] as MachineOutput).release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(releasedOrder).toEqual([1, 0]);
    (held[2] as MachineOutput).release();
    (held[2] as MachineOutput).release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(releasedOrder).toEqual([1, 0, 2]);
  });

  it('a held output is covered right after its step; one per kind per 16,384 steps', () => {
    // Stores at offset 0 are outputs of kind 'disk-write', at offset 4 of kind 'frame' (as a kv
    // PUT's disk write and its reply come a few hundred steps apart).
    const { machine, log, held } = holdingRecorder((env, offset) => {
      void env.output(offset === 0 ? 'disk-write' : 'frame', Uint8Array.of(offset));
    });
    machine.loadImage(
      storesThenPowerOff([
        0x0002a023, // sw zero, 0(t0)   disk-write at icount 1
        0x0002a223, // sw zero, 4(t0)   frame at icount 2
        0x0002a023, // sw zero, 0(t0)   disk-write at icount 3, within its kind's window
      ]),
    );
    runToEnd(machine, undefined);
    expect(held.map((output) => [output.kind, output.icount])).toEqual([
      ['disk-write', 1],
      ['frame', 2],
      ['disk-write', 3],
    ]);
    const covering = held.map((output) => log.entries[output.coveringSeq]);
    // The frame is not held back by the disk write just before it: each is covered one step on.
    expect(covering[0]).toMatchObject({ kind: 'progress', icount: 2 });
    expect(covering[1]).toMatchObject({ kind: 'progress', icount: 3 });
    // The second disk write, within 16,384 steps of the first, waits for the run's end.
    expect(covering[2]?.kind).toBe('stop');
  });
});

/**
 * A recording machine (`holdOutputs`) with a probe device on the platform bus (0x0400_0000): each
 * store to it calls `write`, which makes outputs through the device's door.
 */
function holdingRecorder(write: (env: DeviceEnv, offset: number) => void) {
  const log = new MemoryLog();
  const held: MachineOutput[] = [];
  const device = {
    kind: 'output-probe',
    mmioSize: 0x1000,
    attach(env: DeviceEnv) {
      this.env = env;
    },
    readMmio: () => 0,
    writeMmio(offset: number) {
      if (this.env) write(this.env, offset);
    },
    applyEvent() {},
    reset() {},
    saveState: () => ({ kind: 'output-probe', version: 1, state: null }),
    restoreState() {},
    env: undefined as DeviceEnv | undefined,
  } as Device & { env?: DeviceEnv };
  const machine = new Machine({
    mode: 'record',
    log,
    clock: 'icount',
    holdOutputs: true,
    devices: [{ name: 'probe', device }],
    onOutput: (output) => held.push(output),
  });
  return { machine, log, held };
}

/** `t0` at the probe, the given stores (each one step), then power off through the finisher. */
function storesThenPowerOff(stores: readonly number[]): Uint8Array {
  return program([
    0x040002b7, // lui t0, 0x04000
    ...stores,
    0x00100337, // lui t1, 0x00100
    0x000053b7, // lui t2, 0x5
    0x55538393, // addi t2, t2, 0x555
    0x00732023, // sw t2, 0(t1)
    0x0000006f, // j .
  ]);
}
