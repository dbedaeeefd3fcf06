import type { Device, DeviceEnv, StateSection } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { program } from './helpers.js';

const idleForever = [
  0x30401073, // csrw  mie, zero       nothing can wake the hart
  0x10500073, // wfi
  0x0000006f, // j     .
];

/** Powers off with success straight away: (0x5555 to the test finisher). */
const powerOffAtOnce = [0x001002b7, 0x00005337, 0x55530313, 0x0062a023, 0x0000006f];

const spinThenPowerOff = [
  0x040002b7, // lui   t0, 0x4000      the device: any store arms it
  0x0002a023, // sw    zero, 0(t0)
  0x0000006f, // j     .               until the device powers the board off
];

/** Arms a timer on every store and every tick: a device that keeps an idle machine busy. */
function ticker(): Device {
  let env: DeviceEnv;
  const arm = () => env.injectAt('tick', env.clock.monotonicNs() + 1_000_000, { type: 'tick' });
  return {
    kind: 'ticker',
    mmioSize: 0x1000,
    attach(deviceEnv) {
      env = deviceEnv;
    },
    readMmio: () => 0,
    writeMmio: () => arm(),
    applyEvent: () => arm(),
    reset() {},
    saveState: (): StateSection => ({ kind: 'ticker', version: 1, state: null }),
    restoreState() {},
  };
}

/** Powers the board off from `applyEvent`, when its timer fires. */
function powerOffLater(): Device {
  let env: DeviceEnv;
  return {
    kind: 'power-off-later',
    mmioSize: 0x1000,
    attach(deviceEnv) {
      env = deviceEnv;
    },
    readMmio: () => 0,
    writeMmio() {
      env.injectAt('off', env.clock.monotonicNs() + 500, { type: 'off' });
    },
    applyEvent(event) {
      if (event.type === 'off') env.control.powerOff(7);
    },
    reset() {},
    saveState: (): StateSection => ({ kind: 'power-off-later', version: 1, state: null }),
    restoreState() {},
  };
}

describe('machines under hostile or unusual devices', () => {
  it('hands control back to the host when timers keep an idle hart busy without a step', () => {
    const log = new MemoryLog();
    const device = ticker();
    const machine = new Machine({
      mode: 'record',
      log,
      clock: 'icount',
      devices: [{ name: 'ticker', device }],
    });
    machine.loadImage(program(idleForever));
    device.writeMmio(0, 4, 0); // the host side arms it once
    const outcome = machine.runSlice(1000);
    expect(outcome.end).toBe('budget');
    expect(log.entries.length).toBeLessThan(10_000);
  });

  it('replays a power-off made by a device applying an event, and fires the timer at its deadline', () => {
    const log = new MemoryLog();
    const recorder = new Machine({
      mode: 'record',
      log,
      clock: 'icount',
      devices: [{ name: 'off', device: powerOffLater() }],
    });
    recorder.loadImage(program(spinThenPowerOff));
    while (!recorder.isStopped) recorder.runSlice(2_000_000);
    log.close();
    expect(recorder.exitStatus).toBe(7);
    // The store executes after 1 step (guest time 10 ns); 500 ns later at 10 ns a step is icount 51,
    // exactly, not a slice later.
    const event = log.entries.find((entry) => entry.kind === 'event' && entry.device === 'off');
    expect(event?.icount).toBe(51);
    const replayer = new Machine({
      mode: 'replay',
      replayLog: log.reader(),
      clock: 'icount',
      devices: [{ name: 'off', device: powerOffLater() }],
    });
    replayer.loadImage(program(spinThenPowerOff));
    while (!replayer.isStopped) replayer.runSlice(2_000_000);
    expect(replayer.exitStatus).toBe(7);
    expect(replayer.cpu.icount).toBe(recorder.cpu.icount);
  });

  it('replays a recording whose power-off falls on a checkpoint', () => {
    const log = new MemoryLog();
    const recorder = new Machine({ mode: 'record', log, clock: 'icount', checkpointIntervalSteps: 1 });
    recorder.loadImage(program(powerOffAtOnce));
    while (!recorder.isStopped) recorder.runSlice(1000);
    log.close();
    expect(log.entries.slice(-2).map((entry) => entry.kind)).toEqual(['checkpoint', 'stop']);
    const replayer = new Machine({ mode: 'replay', replayLog: log.reader(), clock: 'icount' });
    replayer.loadImage(program(powerOffAtOnce));
    while (!replayer.isStopped) replayer.runSlice(1000);
    expect(replayer.exitStatus).toBe(0);
  });

  it('does not flood a recording with checkpoints after restoring a snapshot taken far along', () => {
    const source = new Machine({ clock: 'icount' });
    source.loadImage(program(spinThenPowerOff.slice(2)));
    source.runSlice(5_000_000);
    const snapshot = source.saveSnapshot();
    const log = new MemoryLog();
    const recorder = new Machine({ mode: 'record', log, clock: 'icount', checkpointIntervalSteps: 1000 });
    recorder.restoreSnapshot(snapshot);
    recorder.runSlice(10);
    expect(log.entries.filter((entry) => entry.kind === 'checkpoint')).toHaveLength(0);
    recorder.runSlice(2000);
    expect(log.entries.filter((entry) => entry.kind === 'checkpoint')).toHaveLength(2);
  });
});
