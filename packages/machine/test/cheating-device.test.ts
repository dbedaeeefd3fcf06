import type { Device, StateSection } from '@ftvm/core';
import { DivergenceError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { program } from './helpers.js';

/** Writes the device once, counts down 65,536 steps, powers off. */
const writeOnceThenSpin = [
  0x040002b7, // lui   t0, 0x4000       the device (first on the platform bus)
  0x0002a023, // sw    zero, 0(t0)
  0x000103b7, // lui   t2, 0x10
  0xfff38393, // addi  t2, t2, -1
  0xfe039ee3, // bnez  t2, -4
  0x001002b7, // lui   t0, 0x100        test finisher
  0x00005337, // lui   t1, 0x5
  0x55530313, // addi  t1, t1, 0x555
  0x0062a023, // sw    t1, 0(t0)        0x5555: pass
  0x0000006f, // j     .
];

/**
 * A device that breaks the contract: on a write it takes a host value WITHOUT the nondet door. A
 * recording and its replay then disagree about its state.
 */
function cheatingDevice(hostValue: () => number): Device {
  let value = 0;
  return {
    kind: 'cheater',
    mmioSize: 0x1000,
    attach() {},
    readMmio: () => value,
    writeMmio() {
      value = hostValue();
    },
    applyEvent() {},
    reset() {
      value = 0;
    },
    saveState: (): StateSection => ({ kind: 'cheater', version: 1, state: value }),
    restoreState(section) {
      value = section.state as number;
    },
  };
}

describe('a device that cheats', () => {
  it('is caught at the first checkpoint after it diverged, and named', () => {
    const log = new MemoryLog();
    const recorder = new Machine({
      mode: 'record',
      log,
      clock: 'icount',
      checkpointIntervalSteps: 10_000,
      devices: [{ name: 'cheat0', device: cheatingDevice(() => 1) }],
    });
    recorder.loadImage(program(writeOnceThenSpin));
    while (!recorder.isStopped) recorder.runSlice(100_000);
    log.close();

    const replayer = new Machine({
      mode: 'replay',
      replayLog: log.reader(),
      clock: 'icount',
      devices: [{ name: 'cheat0', device: cheatingDevice(() => 2) }],
    });
    replayer.loadImage(program(writeOnceThenSpin));
    let caught: unknown;
    try {
      while (!replayer.isStopped) replayer.runSlice(100_000);
    } catch (error) {
      caught = error;
    }
    expect(DivergenceError.is(caught)).toBe(true);
    const divergence = caught as DivergenceError;
    expect(divergence.kind).toBe('state-hash');
    expect(divergence.icount).toBe(10_000); // the first checkpoint; the write was at step 2
    expect(divergence.message).toContain('differs in device cheat0');
    expect(divergence.message).not.toContain('RAM');
  });
});
