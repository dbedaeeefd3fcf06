import { createDeviceHarness } from '@ftvm/devices/test';
import { Machine, MemoryLog } from '@ftvm/machine';
import { describe, expect, it } from 'vitest';
import { createSensor, SENSOR_ID } from './sensor.js';

/**
 * A tiny guest: takes three readings from the sensor (the first platform-bus device, 0x0400_0000),
 * writes the low byte of each to the UART, and powers off.
 */
const readThreeTimes = [
  0x040002b7, // lui   t0, 0x4000          sensor
  0x10000337, // lui   t1, 0x10000         UART
  0x00300393, // li    t2, 3
  0x0002ae03, // lw    t3, 0(t0)           READING
  0x01c30023, // sb    t3, 0(t1)           THR
  0xfff38393, // addi  t2, t2, -1
  0xfe039ae3, // bnez  t2, -12
  0x001002b7, // lui   t0, 0x100           test finisher
  0x00005337, // lui   t1, 0x5
  0x55530313, // addi  t1, t1, 0x555
  0x0062a023, // sw    t1, 0(t0)           0x5555: pass
  0x0000006f, // j     .
];

function program(words: number[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  words.forEach((word, index) => {
    new DataView(bytes.buffer).setUint32(index * 4, word, true);
  });
  return bytes;
}

function runToEnd(machine: Machine): void {
  while (!machine.isStopped) {
    if (machine.runSlice(100_000).end === 'waiting') throw new Error('guest waits');
  }
}

describe('the example sensor on a machine', () => {
  it('is recorded and replayed exactly, without reading the host on the replay', () => {
    const readings = [65, 66, 67];
    const log = new MemoryLog();
    let recordedConsole = '';
    const recorder = new Machine({
      mode: 'record',
      log,
      clock: 'icount',
      devices: [{ name: 'sensor0', device: createSensor({ readHost: () => readings.shift() ?? 0 }) }],
      onOutput: (output) => {
        recordedConsole += new TextDecoder().decode(output.data);
      },
    });
    recorder.loadImage(program(readThreeTimes));
    runToEnd(recorder);
    log.close();
    expect(recordedConsole).toBe('ABC');
    expect(log.entries.filter((entry) => entry.kind === 'nondet').map((entry) => entry.device)).toEqual([
      'sensor0',
      'sensor0',
      'sensor0',
    ]);

    let replayedConsole = '';
    const replayer = new Machine({
      mode: 'replay',
      replayLog: log.reader(),
      clock: 'icount',
      replayOutputs: true,
      devices: [
        {
          name: 'sensor0',
          device: createSensor({
            readHost: () => {
              throw new Error('a replay must not read the host');
            },
          }),
        },
      ],
      onOutput: (output) => {
        replayedConsole += new TextDecoder().decode(output.data);
      },
    });
    replayer.loadImage(program(readThreeTimes));
    runToEnd(replayer);
    expect(replayedConsole).toBe('ABC');
    expect(replayer.exitStatus).toBe(0);
    expect(Buffer.from(replayer.stateHash()).toString('hex')).toBe(
      Buffer.from(recorder.stateHash()).toString('hex'),
    );
  });

  it('appears in the device tree so guests can find it', () => {
    const machine = new Machine({
      clock: 'icount',
      devices: [{ name: 'sensor0', device: createSensor({ readHost: () => 0 }) }],
    });
    const soc = machine.deviceTree.children?.find((node) => node.name === 'soc');
    const node = soc?.children?.find((child) => child.name === 'sensor@4000000');
    expect(node?.properties.compatible).toBe('ftvm,example-sensor');
    expect(node?.properties.interrupts).toEqual([64]);
  });
});

describe('the example sensor on the device harness', () => {
  it('raises its interrupt for a host alert, applied as an event', () => {
    const sensor = createSensor({ readHost: () => 7 });
    const harness = createDeviceHarness(sensor, {
      placement: { name: 'sensor0', base: 0x0400_0000, irq: 64 },
    });
    expect(harness.read(0x10, 4)).toBe(SENSOR_ID);
    sensor.alert(1234);
    expect(harness.read(0x0c, 4)).toBe(0); // not before the machine applies it
    harness.deliver();
    expect(harness.read(0x0c, 4)).toBe(1);
    expect(harness.read(0x08, 4)).toBe(1234);
    expect(harness.env.irq.level).toBe(true);
    harness.write(0x0c, 1, 4);
    expect(harness.env.irq.level).toBe(false);
    const saved = sensor.saveState();
    const copy = createSensor({ readHost: () => 0 });
    createDeviceHarness(copy);
    copy.restoreState(structuredClone(saved));
    expect(copy.saveState()).toEqual(saved);
  });
});
