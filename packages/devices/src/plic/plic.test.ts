import { DeviceError } from '@ftvm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectRestoredDeviceBehavesIdentically,
  line,
  type Operation,
  operationsArbitrary,
  type Rig,
  runOperations,
} from '../test-support.js';
import { createDeviceHarness, type DeviceHarnessOptions } from '../testing/index.js';
import { PLIC_MMIO_SIZE_BYTES, Plic } from './plic.js';

const priority = (source: number) => 4 * source;
const PENDING = 0x1000;
const enable = (context: number, word = 0) => 0x2000 + 0x80 * context + 4 * word;
const threshold = (context: number) => 0x20_0000 + 0x1000 * context;
const claim = (context: number) => 0x20_0004 + 0x1000 * context;

function makePlic(options: DeviceHarnessOptions = {}) {
  const machineExternal = line();
  const supervisorExternal = line();
  const plic = new Plic({ contexts: [machineExternal, supervisorExternal] });
  const harness = createDeviceHarness(plic, { placement: { base: 0x0c00_0000 }, ...options });
  return { plic, harness, machineExternal, supervisorExternal };
}

/** A PLIC rig whose sources 1, 10, 11 and 95 can be driven by `event` operations of type `source`. */
function makeRig(options?: DeviceHarnessOptions): Rig {
  const { plic, harness, machineExternal, supervisorExternal } = makePlic(options);
  // Route test-only `source` events to the source lines, so random workloads can drive them.
  const applyEvent = plic.applyEvent.bind(plic);
  plic.applyEvent = (event) => {
    const data = event.data;
    if (event.type === 'source' && Array.isArray(data) && [1, 10, 11, 95].includes(data[0] as number)) {
      plic.sourceLine(data[0] as number).set(Boolean(data[1]));
    } else {
      applyEvent(event);
    }
  };
  return { harness, lines: [machineExternal, supervisorExternal] };
}

describe('Plic registers (QEMU 7.2 virt layout)', () => {
  it('has priorities for sources 1…96 with 3 bits, none for source 0 (QEMU: 0xffffffff reads 7; 9 reads 1)', () => {
    const { harness } = makePlic();
    for (const source of [1, 10, 11, 95, 96]) {
      harness.write(priority(source), 0xffff_ffff);
      expect(harness.read(priority(source))).toBe(7);
    }
    harness.write(priority(10), 9);
    expect(harness.read(priority(10))).toBe(1);
    harness.write(priority(0), 7);
    expect(harness.read(priority(0))).toBe(0);
    harness.write(priority(97), 7);
    expect(harness.read(priority(97))).toBe(0);
  });

  it('has 3 enable words per context, each bit writable (QEMU: word 3 and context 2 read 0)', () => {
    const { harness } = makePlic();
    for (const context of [0, 1]) {
      for (const word of [0, 1, 2]) {
        harness.write(enable(context, word), 0xffff_ffff);
        expect(harness.read(enable(context, word))).toBe(0xffff_ffff);
      }
      harness.write(enable(context, 3), 0xffff_ffff);
      expect(harness.read(enable(context, 3))).toBe(0);
    }
    harness.write(enable(2), 0xffff_ffff);
    expect(harness.read(enable(2))).toBe(0);
  });

  it('keeps 3 threshold bits per context; context 2 does not exist (QEMU: 0xffffffff→7, 9→1)', () => {
    const { harness } = makePlic();
    harness.write(threshold(0), 0xffff_ffff);
    expect(harness.read(threshold(0))).toBe(7);
    harness.write(threshold(0), 9);
    expect(harness.read(threshold(0))).toBe(1);
    harness.write(threshold(1), 2);
    expect(harness.read(threshold(1))).toBe(2);
    harness.write(threshold(2), 2);
    expect(harness.read(threshold(2))).toBe(0);
    expect(harness.read(threshold(0) + 8)).toBe(0);
  });

  it('ignores writes to pending bits, and answers holes and narrow accesses with 0 (QEMU faults those)', () => {
    const { plic, harness } = makePlic();
    plic.sourceLine(10).set(true);
    harness.write(PENDING, 0xffff_ffff);
    expect(harness.read(PENDING)).toBe(1 << 10);
    harness.write(priority(10), 5);
    expect(harness.read(priority(10), 1)).toBe(0);
    expect(harness.read(priority(10), 2)).toBe(0);
    harness.write(priority(10), 1, 1);
    expect(harness.read(priority(10))).toBe(5);
    expect(harness.read(PLIC_MMIO_SIZE_BYTES - 4)).toBe(0);
    expect(harness.read(PENDING + 12)).toBe(0);
  });

  it('refuses to wire sources it does not have', () => {
    const { plic } = makePlic();
    expect(() => plic.sourceLine(0)).toThrow(DeviceError);
    expect(() => plic.sourceLine(96)).toThrow(DeviceError);
    expect(() => plic.sourceLine(1.5)).toThrow(DeviceError);
    expect(plic.sourceLine(95)).toBe(plic.sourceLine(95));
  });
});

describe('Plic delivery', () => {
  it('raises a context only for an enabled source above its threshold', () => {
    const { plic, harness, machineExternal, supervisorExternal } = makePlic();
    plic.sourceLine(10).set(true);
    expect(harness.read(PENDING)).toBe(1 << 10);
    expect(machineExternal.level).toBe(false); // priority 0 never interrupts
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    expect(machineExternal.level).toBe(true);
    expect(supervisorExternal.level).toBe(false); // not enabled for context 1
    harness.write(threshold(0), 1); // priority must exceed the threshold
    expect(machineExternal.level).toBe(false);
    expect(harness.read(claim(0))).toBe(0);
    expect(harness.read(PENDING)).toBe(1 << 10);
    harness.write(threshold(0), 0);
    expect(machineExternal.level).toBe(true);
  });

  it('as QEMU 7.2, an enable write alone does not re-evaluate the lines (the next threshold write does)', () => {
    const { plic, harness, machineExternal } = makePlic();
    harness.write(priority(10), 1);
    plic.sourceLine(10).set(true);
    harness.write(enable(0), 1 << 10);
    expect(machineExternal.level).toBe(false);
    harness.write(threshold(0), 0);
    expect(machineExternal.level).toBe(true);
    harness.write(enable(0), 0);
    expect(machineExternal.level).toBe(true);
    harness.write(threshold(0), 0);
    expect(machineExternal.level).toBe(false);
  });

  it('claims the highest priority, the lowest id among equals (QEMU: 10 before 11 at equal priority)', () => {
    const { plic, harness } = makePlic();
    harness.write(enable(0), (1 << 10) | (1 << 11));
    harness.write(priority(10), 1);
    harness.write(priority(11), 1);
    plic.sourceLine(11).set(true);
    plic.sourceLine(10).set(true);
    expect(harness.read(PENDING)).toBe(0xc00);
    expect(harness.read(claim(0))).toBe(10);
    expect(harness.read(claim(0))).toBe(11);
    expect(harness.read(claim(0))).toBe(0);
    harness.write(claim(0), 10);
    harness.write(claim(0), 11);
    harness.write(priority(11), 3);
    expect(harness.read(claim(0))).toBe(11);
  });

  it('claim clears pending and holds the source until complete; a context line falls meanwhile', () => {
    const { plic, harness, machineExternal } = makePlic();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    const source = plic.sourceLine(10);
    source.set(true);
    expect(harness.read(claim(0))).toBe(10);
    expect(harness.read(PENDING)).toBe(0);
    expect(machineExternal.level).toBe(false);
    source.set(false); // the handler serviced the device
    harness.write(claim(0), 10);
    expect(harness.read(PENDING)).toBe(0);
    expect(machineExternal.level).toBe(false);
  });

  // QEMU 7.2 differs: it re-pends only when the device calls raise again (README, "Differences").
  it('level-triggered: completing a source still asserted makes it pending again', () => {
    const { plic, harness, machineExternal } = makePlic();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    plic.sourceLine(10).set(true);
    expect(harness.read(claim(0))).toBe(10);
    harness.write(claim(0), 10);
    expect(harness.read(PENDING)).toBe(1 << 10);
    expect(machineExternal.level).toBe(true);
  });

  it('a new rising level while claimed is pending at once and delivered after complete (QEMU)', () => {
    const { plic, harness } = makePlic();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    const source = plic.sourceLine(10);
    source.set(true);
    expect(harness.read(claim(0))).toBe(10);
    source.set(false);
    source.set(true);
    expect(harness.read(PENDING)).toBe(1 << 10);
    expect(harness.read(claim(0))).toBe(0); // still claimed
    harness.write(claim(0), 10);
    expect(harness.read(claim(0))).toBe(10);
  });

  it('repeating a level changes nothing (the contract says repeats are harmless)', () => {
    const { plic, harness } = makePlic();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    const source = plic.sourceLine(10);
    source.set(true);
    expect(harness.read(claim(0))).toBe(10);
    source.set(true);
    expect(harness.read(PENDING)).toBe(0);
  });

  it('lowering a source leaves it pending (QEMU: pending is sticky until claimed)', () => {
    const { plic, harness } = makePlic();
    const source = plic.sourceLine(11);
    source.set(true);
    source.set(false);
    expect(harness.read(PENDING)).toBe(1 << 11);
  });

  it('ignores completes of ids out of range or not claimed (QEMU: complete 11 leaves 10 claimed)', () => {
    const { plic, harness } = makePlic();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    plic.sourceLine(10).set(true);
    expect(harness.read(claim(0))).toBe(10);
    harness.write(claim(0), 11);
    harness.write(claim(0), 200);
    harness.write(claim(0), 0xffff_ffff);
    expect(harness.read(claim(0))).toBe(0);
  });

  it('any context may complete a claim (QEMU: complete via context 1 released a context-0 claim)', () => {
    const { plic, harness } = makePlic();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    plic.sourceLine(10).set(true);
    expect(harness.read(claim(0))).toBe(10);
    harness.write(claim(1), 10);
    expect(harness.read(claim(0))).toBe(10);
  });

  it('serves the M and S contexts separately by their own enables and thresholds', () => {
    const { plic, harness, machineExternal, supervisorExternal } = makePlic();
    harness.write(priority(10), 2);
    harness.write(priority(11), 5);
    harness.write(enable(0), 1 << 10);
    harness.write(enable(1), 1 << 11);
    harness.write(threshold(1), 4);
    plic.sourceLine(10).set(true);
    plic.sourceLine(11).set(true);
    expect(machineExternal.level).toBe(true);
    expect(supervisorExternal.level).toBe(true);
    expect(harness.read(claim(1))).toBe(11);
    expect(supervisorExternal.level).toBe(false);
    expect(machineExternal.level).toBe(true);
    expect(harness.read(claim(0))).toBe(10);
    expect(machineExternal.level).toBe(false);
  });

  it('source 0 is never pending and claim 0 means "none"', () => {
    const { harness } = makePlic();
    harness.write(enable(0), 0xffff_ffff);
    harness.write(priority(1), 7);
    expect(harness.read(PENDING) & 1).toBe(0);
    expect(harness.read(claim(0))).toBe(0);
    harness.write(claim(0), 0);
    expect(harness.read(PENDING)).toBe(0);
  });
});

describe('Plic reset', () => {
  it('clears everything and lowers both contexts', () => {
    const { plic, harness, machineExternal } = makePlic();
    const powerOn = plic.saveState();
    harness.write(enable(0), 1 << 10);
    harness.write(priority(10), 1);
    plic.sourceLine(10).set(true);
    expect(machineExternal.level).toBe(true);
    plic.sourceLine(10).set(false);
    plic.reset();
    expect(plic.saveState()).toEqual(powerOn);
    expect(machineExternal.level).toBe(false);
  });
});

describe('Plic state', () => {
  const registerOffsets = [
    priority(1),
    priority(10),
    priority(11),
    priority(95),
    PENDING,
    PENDING + 4,
    PENDING + 8,
    enable(0),
    enable(0, 2),
    enable(1),
    threshold(0),
    threshold(1),
    claim(0),
    claim(1),
  ];
  const sourceEvent = fc.tuple(fc.constantFrom(1, 10, 11, 95), fc.boolean());
  const operations = operationsArbitrary({
    registerOffsets,
    mmioSize: PLIC_MMIO_SIZE_BYTES,
    eventTypes: ['source'],
    eventData: sourceEvent,
  });

  it('a restored PLIC behaves identically: claimed source, stale line after an enable write', () => {
    const prefix: Operation[] = [
      { kind: 'write', offset: priority(10), width: 4, value: 3 },
      { kind: 'write', offset: priority(11), width: 4, value: 2 },
      { kind: 'event', event: { type: 'source', data: [10, true] } },
      { kind: 'event', event: { type: 'source', data: [11, true] } },
      { kind: 'write', offset: enable(0), width: 4, value: 0xc00 },
      { kind: 'write', offset: threshold(0), width: 4, value: 0 },
      { kind: 'read', offset: claim(0), width: 4 },
      { kind: 'write', offset: enable(0), width: 4, value: 0 },
    ];
    const suffix: Operation[] = [
      { kind: 'read', offset: claim(0), width: 4 },
      { kind: 'write', offset: claim(0), width: 4, value: 10 },
      { kind: 'write', offset: enable(0), width: 4, value: 0xc00 },
      { kind: 'write', offset: threshold(0), width: 4, value: 0 },
      { kind: 'read', offset: claim(0), width: 4 },
      { kind: 'read', offset: claim(0), width: 4 },
    ];
    expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
  });

  it('a restored PLIC behaves identically after any workload (property)', () => {
    fc.assert(
      fc.property(operations, operations, (prefix, suffix) => {
        expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses sections it cannot read', () => {
    const { plic } = makePlic();
    const good = plic.saveState();
    const state = good.state as { [key: string]: unknown };
    expect(() => plic.restoreState({ ...good, version: 2 })).toThrow(/version/);
    expect(() => plic.restoreState({ ...good, state: { ...state, priorities: [1, 2, 3] } as never })).toThrow(
      /priorities/,
    );
    expect(() => plic.restoreState({ ...good, state: { ...state, thresholds: [8, 0] } as never })).toThrow(
      /thresholds/,
    );
  });
});

describe('Plic robustness', () => {
  it('never throws on any MMIO access, event or source change (property)', () => {
    fc.assert(
      fc.property(
        operationsArbitrary({
          registerOffsets: [priority(10), PENDING, enable(0), enable(1), threshold(0), claim(0), claim(1)],
          mmioSize: PLIC_MMIO_SIZE_BYTES,
          eventTypes: ['source'],
          eventData: fc.tuple(fc.constantFrom(1, 10, 11, 95), fc.boolean()),
          maxLength: 200,
        }),
        (operations) => {
          runOperations(makeRig(), operations);
        },
      ),
      { numRuns: 300 },
    );
  });
});
