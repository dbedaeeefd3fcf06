import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Machine, MemoryLog } from '@ftvm/machine';
import { describe, expect, it } from 'vitest';
import { createSensor } from './sensor.js';

const guestPath = fileURLToPath(new URL('../guest/sensor.elf', import.meta.url));
const hasToolchain =
  spawnSync('sh', ['-c', 'command -v riscv64-unknown-elf-gcc'], { stdio: 'ignore' }).status === 0;

interface Run {
  machine: Machine;
  console: string;
}

/**
 * Runs the C guest; on a live machine the host raises an alert early on. The device holds it
 * pending, so the guest takes the interrupt as soon as it enables it.
 */
function runGuest(mode: 'record' | 'replay', log: MemoryLog): Run {
  let console = '';
  let hostValue = 1000;
  const sensor = createSensor({
    readHost:
      mode === 'record'
        ? () => hostValue++
        : () => {
            throw new Error('a replay must not read the host');
          },
  });
  const machine = new Machine({
    mode,
    log: mode === 'record' ? log : undefined,
    replayLog: mode === 'replay' ? log.reader() : undefined,
    clock: 'icount',
    logOutputs: true,
    replayOutputs: true,
    devices: [{ name: 'sensor0', device: sensor }],
    onOutput: (output) => {
      console += new TextDecoder().decode(output.data);
    },
  });
  machine.loadImage(new Uint8Array(readFileSync(guestPath)), 'sensor.elf');
  let alerted = false;
  while (!machine.isStopped) {
    const outcome = machine.runSlice(5_000);
    if (mode === 'record' && !alerted) {
      sensor.alert(4242);
      alerted = true;
    }

    if (outcome.end === 'waiting' && machine.nextTimerDelayNs() === undefined) throw new Error('guest hangs');
  }
  return { machine, console };
}

describe('the C sensor guest', () => {
  it('finds the sensor, takes readings, gets an alert, and replays exactly', () => {
    const log = new MemoryLog();
    const recorded = runGuest('record', log);
    log.close();
    expect(recorded.machine.exitStatus).toBe(0);
    expect(recorded.console).toContain('sensor: sensor@4000000 at 0x04000000, irq 64');
    expect(recorded.console).toContain('sensor: id ok');
    expect(recorded.console).toContain('[nondet] sensor: reading 1 = 1000');
    expect(recorded.console).toContain('[nondet] sensor: reading 3 = 1002');
    expect(recorded.console).toContain('[nondet] sensor: alert with value 4242');
    expect(log.entries.some((entry) => entry.kind === 'event' && entry.device === 'sensor0')).toBe(true);

    const replayed = runGuest('replay', log);
    expect(replayed.console).toBe(recorded.console);
    expect(replayed.machine.exitStatus).toBe(0);
    expect(Buffer.from(replayed.machine.stateHash()).toString('hex')).toBe(
      Buffer.from(recorded.machine.stateHash()).toString('hex'),
    );
  });

  it.skipIf(!hasToolchain)('is rebuilt byte for byte from its source (needs riscv64-unknown-elf-gcc)', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'ftvm-sensor-')), 'sensor.elf');
    const build = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../build-guest.mjs', import.meta.url)), '--out', out],
      {
        encoding: 'utf8',
      },
    );
    expect(build.status).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(guestPath))).toBe(0);
  });
});
