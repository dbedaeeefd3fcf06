import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectRestoredDeviceBehavesIdentically,
  operationsArbitrary,
  type Rig,
  runOperations,
} from '../test-support.js';
import { createDeviceHarness, type DeviceHarnessOptions } from '../testing/index.js';
import { FinisherStatus, SIFIVE_TEST_MMIO_SIZE_BYTES, SifiveTestFinisher } from './test-finisher.js';

function makeFinisher(options: DeviceHarnessOptions = {}) {
  const finisher = new SifiveTestFinisher();
  const harness = createDeviceHarness(finisher, { placement: { base: 0x10_0000 }, ...options });
  return { finisher, harness, control: harness.env.control };
}

function makeRig(options?: DeviceHarnessOptions): Rig {
  return { harness: makeFinisher(options).harness, lines: [] };
}

describe('SifiveTestFinisher', () => {
  it('0x5555 powers off with status 0', () => {
    const { harness, control } = makeFinisher();
    harness.write(0, 0x5555);
    expect(control.powerOffs).toEqual([0]);
    expect(control.resets).toBe(0);
  });

  it('(code << 16) | 0x3333 powers off with the code', () => {
    const { harness, control } = makeFinisher();
    harness.write(0, (42 << 16) | 0x3333);
    harness.write(0, (0xffff << 16) | 0x3333);
    harness.write(0, 0x3333); // code 0: a "failure" that exits 0, as on QEMU
    expect(control.powerOffs).toEqual([42, 0xffff, 0]);
  });

  it('0x7777 resets the board', () => {
    const { harness, control } = makeFinisher();
    harness.write(0, FinisherStatus.reset);
    expect(control.resets).toBe(1);
    expect(control.powerOffs).toEqual([]);
  });

  it('the code bits of a pass or reset do not matter', () => {
    const { harness, control } = makeFinisher();
    harness.write(0, (7 << 16) | 0x5555);
    harness.write(0, (7 << 16) | 0x7777);
    expect(control.powerOffs).toEqual([0]);
    expect(control.resets).toBe(1);
  });

  it('takes 16-bit writes (QEMU: a halfword 0x3333 exits 0)', () => {
    const { harness, control } = makeFinisher();
    harness.write(0, 0x5555, 2);
    harness.write(0, 0x3333, 2);
    expect(control.powerOffs).toEqual([0, 0]);
  });

  it('ignores other values, other offsets and byte writes (QEMU faults those)', () => {
    const { harness, control } = makeFinisher();
    harness.write(0, 0x1234);
    harness.write(0, 0x5554);
    harness.write(4, 0x5555);
    harness.write(2, 0x5555, 2);
    harness.write(0, 0x55, 1);
    expect(control.powerOffs).toEqual([]);
    expect(control.resets).toBe(0);
  });

  it('reads 0 everywhere (QEMU: 32- and 16-bit reads give 0)', () => {
    const { harness } = makeFinisher();
    for (const offset of [0, 2, 4, 0xffc]) {
      expect(harness.read(offset, 4)).toBe(0);
      expect(harness.read(offset, 2)).toBe(0);
      expect(harness.read(offset, 1)).toBe(0);
    }
  });

  it('has an empty, versioned state that round-trips', () => {
    expectRestoredDeviceBehavesIdentically(
      makeRig,
      [],
      [{ kind: 'write', offset: 0, width: 4, value: 0x5555 }],
    );
    const { finisher } = makeFinisher();
    expect(finisher.saveState()).toEqual({ kind: 'sifive-test', version: 1, state: {} });
    expect(() => finisher.restoreState({ kind: 'sifive-test', version: 2, state: {} })).toThrow(/version/);
  });

  it('never throws on any MMIO access or event (property)', () => {
    fc.assert(
      fc.property(
        operationsArbitrary({
          registerOffsets: [0, 2, 4],
          mmioSize: SIFIVE_TEST_MMIO_SIZE_BYTES,
          eventTypes: [],
        }),
        (operations) => {
          runOperations(makeRig(), operations);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a restored finisher behaves identically after any workload (property)', () => {
    const operations = operationsArbitrary({
      registerOffsets: [0, 2, 4],
      mmioSize: SIFIVE_TEST_MMIO_SIZE_BYTES,
      eventTypes: [],
    });
    fc.assert(
      fc.property(operations, operations, (prefix, suffix) => {
        expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
      }),
      { numRuns: 100 },
    );
  });
});
