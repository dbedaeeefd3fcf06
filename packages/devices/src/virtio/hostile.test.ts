/**
 * Properties: whatever a hostile guest (or log) does — random descriptor tables, addresses,
 * lengths, flags and loops, register writes in any order, any event — the virtio devices never
 * throw a host exception and never touch memory outside RAM; and any state they reach saves and
 * restores to the same state.
 */
import { type AccessWidth, type DeviceEventPayload, type PlainValue, SnapshotError } from '@ftvm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clonePlain, plainValueArbitrary } from '../test-support.js';
import type { TestGuestMemory } from '../testing/index.js';
import { MemoryBlockBackend } from './block/block-backend.js';
import { VirtioBlock } from './block/virtio-block.js';
import { VirtioNet } from './net/virtio-net.js';
import { VirtioRng } from './rng/virtio-rng.js';
import { createVirtioRig, Reg } from './testing/guest-driver.js';
import type { VirtioDevice } from './transport/virtio-device.js';

const RAM_BASE = 0x8000_0000;
const RAM_BYTES = 64 * 1024;

type Operation =
  | { kind: 'write'; offset: number; width: AccessWidth; value: number }
  | { kind: 'read'; offset: number; width: AccessWidth }
  | { kind: 'poke'; offset: number; bytes: Uint8Array }
  | {
      kind: 'descriptor';
      queue: number;
      index: number;
      address: number;
      length: number;
      flags: number;
      next: number;
    }
  | { kind: 'available'; queue: number; head: number; index: number | 'next' }
  | { kind: 'event'; event: DeviceEventPayload }
  | { kind: 'host' }
  | { kind: 'initialize' };

const REGISTERS = Object.values(Reg);
const ramAddress = fc.oneof(
  fc.integer({ min: 0, max: RAM_BYTES - 1 }).map((offset) => RAM_BASE + offset),
  fc.integer({ min: 0, max: RAM_BYTES / 16 - 1 }).map((slot) => RAM_BASE + slot * 16),
  fc.constantFrom(0, RAM_BASE - 16, RAM_BASE + RAM_BYTES - 2, RAM_BASE + RAM_BYTES, 0xffff_fff0),
);
const word = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 11, 15, 16, 64, 128, 0xff, 0xffff_ffff),
  ramAddress,
  fc.nat({ max: 0xffff_ffff }),
);

/** Where the driver in these tests lays its queues (fixed, so random ops can aim at them). */
function queueLayout(queue: number) {
  const base = RAM_BASE + queue * 0x2000;
  return { descriptorTable: base, driverArea: base + 0x1000, deviceArea: base + 0x1800 };
}

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      offset: fc.oneof(fc.constantFrom(...REGISTERS), fc.integer({ min: 0, max: 0x1ff })),
      width: fc.constantFrom<AccessWidth>(1, 2, 4, 4, 4),
      // (kept rarer than ring operations, so random chains meet live queues)
      value: word,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      offset: fc.oneof(fc.constantFrom(...REGISTERS), fc.integer({ min: 0, max: 0x1ff })),
      width: fc.constantFrom<AccessWidth>(1, 2, 4),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('poke' as const),
      offset: fc.integer({ min: 0, max: RAM_BYTES - 64 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('descriptor' as const),
      queue: fc.nat({ max: 1 }),
      index: fc.nat({ max: 15 }),
      address: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.integer({ min: 0x8000, max: RAM_BYTES - 0x1000 }).map((offset) => RAM_BASE + offset),
        },
        { weight: 1, arbitrary: ramAddress },
      ),
      length: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(1, 12, 16, 32, 60, 512, 1024) },
        { weight: 1, arbitrary: fc.oneof(fc.nat({ max: 4096 }), fc.constantFrom(0, 0xffff_ffff)) },
      ),
      flags: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(0, 1, 2, 3) },
        { weight: 1, arbitrary: fc.nat({ max: 0xffff }) },
      ),
      next: fc.oneof(fc.nat({ max: 15 }), fc.nat({ max: 0xffff })),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('available' as const),
      queue: fc.nat({ max: 1 }),
      head: fc.oneof(
        { weight: 8, arbitrary: fc.nat({ max: 15 }) },
        { weight: 1, arbitrary: fc.nat({ max: 0xffff }) },
      ),
      index: fc.oneof(
        { weight: 8, arbitrary: fc.constant('next' as const) },
        { weight: 1, arbitrary: fc.nat({ max: 0xffff }) },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('event' as const),
      event: fc.record({
        type: fc.constantFrom('frame', 'request-completed', 'x'),
        data: fc.oneof(
          plainValueArbitrary,
          fc.record({
            id: fc.nat({ max: 8 }),
            status: fc.nat({ max: 3 }),
            data: fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 1024 })),
          }) as fc.Arbitrary<PlainValue>,
        ),
      }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'host' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'initialize' as const }) },
);

/** Records every guest-memory access outside RAM (the memory would refuse it; we want none tried). */
function watchMemory(memory: TestGuestMemory): string[] {
  const violations: string[] = [];
  const check = (what: string, address: number, length: number) => {
    if (!memory.contains(address, length)) violations.push(`${what} 0x${address.toString(16)}+${length}`);
  };
  const { read, write, readU16, readU32, writeU16, writeU32 } = memory;
  memory.read = (address, length) => {
    check('read', address, length);
    return read.call(memory, address, length);
  };
  memory.write = (address, data) => {
    check('write', address, data.length);
    write.call(memory, address, data);
  };
  memory.readU16 = (address) => {
    check('readU16', address, 2);
    return readU16.call(memory, address);
  };
  memory.readU32 = (address) => {
    check('readU32', address, 4);
    return readU32.call(memory, address);
  };
  memory.writeU16 = (address, value) => {
    check('writeU16', address, 2);
    writeU16.call(memory, address, value);
  };
  memory.writeU32 = (address, value) => {
    check('writeU32', address, 4);
    writeU32.call(memory, address, value);
  };
  return violations;
}

const factories: [string, () => VirtioDevice][] = [
  ['virtio-blk', () => new VirtioBlock({ backend: new MemoryBlockBackend(16 * 512) })],
  ['virtio-net', () => new VirtioNet()],
  ['virtio-rng', () => new VirtioRng({ entropySource: (n) => new Uint8Array(n).fill(0x5a) })],
];

async function run(makeDevice: () => VirtioDevice, operations: readonly Operation[]): Promise<void> {
  const rig = createVirtioRig(makeDevice(), RAM_BYTES);
  const { harness, driver } = rig;
  const memory = harness.env.memory;
  const violations = watchMemory(memory);
  for (const operation of operations) {
    switch (operation.kind) {
      case 'write':
        harness.write(operation.offset, operation.value, operation.width);
        break;
      case 'read':
        harness.read(operation.offset, operation.width);
        break;
      case 'poke':
        memory.region.bytes.set(operation.bytes, operation.offset);
        break;
      case 'descriptor': {
        const entry = queueLayout(operation.queue).descriptorTable + 16 * operation.index;
        memory.region.bytes.set(
          (() => {
            const bytes = new Uint8Array(16);
            const view = new DataView(bytes.buffer);
            view.setUint32(0, operation.address >>> 0, true);
            view.setUint32(8, operation.length >>> 0, true);
            view.setUint16(12, operation.flags, true);
            view.setUint16(14, operation.next & 0xffff, true);
            return bytes;
          })(),
          entry - RAM_BASE,
        );
        break;
      }
      case 'available': {
        const { driverArea } = queueLayout(operation.queue);
        // Usually as a driver does (the next slot, index + 1), sometimes any index at all.
        const view = new DataView(memory.region.bytes.buffer);
        const current = view.getUint16(driverArea - RAM_BASE + 2, true);
        view.setUint16(driverArea - RAM_BASE + 4 + 2 * (current % 16), operation.head & 0xffff, true);
        const next = operation.index === 'next' ? current + 1 : operation.index;
        view.setUint16(driverArea - RAM_BASE + 2, next & 0xffff, true);
        harness.write(Reg.queueNotify, operation.queue);
        break;
      }
      case 'event':
        harness.env.inject(operation.event);
        break;
      case 'host':
        await Promise.resolve();
        await Promise.resolve();
        break;
      case 'initialize': {
        // A well-behaved initialization with the fixed layout, so random chains meet live queues.
        harness.write(Reg.status, 0);
        harness.write(Reg.status, 1);
        harness.write(Reg.status, 3);
        driver.writeDriverFeatures(driver.offeredFeatures());
        harness.write(Reg.status, 11);
        const queueCount = rig.device.queueSizesMax.length;
        for (let queue = 0; queue < queueCount; queue++) {
          const layout = queueLayout(queue);
          harness.write(Reg.queueSelect, queue);
          harness.write(Reg.queueSize, Math.min(16, rig.device.queueSizesMax[queue]!));
          harness.write(Reg.queueDescriptorLow, layout.descriptorTable);
          harness.write(Reg.queueDriverLow, layout.driverArea);
          harness.write(Reg.queueDeviceLow, layout.deviceArea);
          harness.write(Reg.queueReady, 1);
          // A well-formed baseline for random operations to corrupt: chains of a 16-byte readable
          // buffer then a 1 KiB writable one (even heads), or one writable buffer (odd heads).
          for (let index = 0; index < 16; index++) {
            const entry = layout.descriptorTable + 16 * index;
            memory.writeU32(entry, RAM_BASE + 0x8000 + index * 0x400);
            memory.writeU32(entry + 4, 0);
            memory.writeU32(entry + 8, index % 2 === 0 ? 16 : 0x400);
            memory.writeU16(entry + 12, index % 2 === 0 ? 1 : 2);
            memory.writeU16(entry + 14, index + 1);
          }
        }
        harness.write(Reg.status, 15);
        break;
      }
    }
    harness.deliver();
  }
  expect(violations).toEqual([]);
  // Whatever state it reached saves and restores exactly.
  const section = rig.transport.saveState();
  const restored = createVirtioRig(makeDevice(), RAM_BYTES);
  restored.transport.restoreState({ ...section, state: clonePlain(section.state) });
  expect(restored.transport.saveState()).toEqual(section);
  expect(restored.harness.env.irq.level).toBe(harness.env.irq.level);
}

describe('hostile guests and logs', () => {
  for (const [name, makeDevice] of factories) {
    it(`${name}: random virtqueues and register writes never throw and never leave RAM`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc
            .array(operationArbitrary, { maxLength: 80 })
            .map((operations) => [{ kind: 'initialize' as const }, ...operations]),
          (operations) => run(makeDevice, operations),
        ),
        { numRuns: 400 },
      );
    });
  }

  for (const [name, makeDevice] of factories) {
    it(`${name}: restoring any damaged state throws SnapshotError and changes nothing`, () => {
      const rig = createVirtioRig(makeDevice(), RAM_BYTES);
      rig.driver.initialize();
      const good = rig.transport.saveState();
      fc.assert(
        fc.property(
          fc.oneof(
            plainValueArbitrary,
            fc.record({
              kind: fc.constantFrom('virtio-mmio', 'x'),
              version: fc.constantFrom(1, 2),
              state: plainValueArbitrary,
            }),
            // The good state with one field replaced by anything.
            fc
              .tuple(fc.constantFrom(...Object.keys(good.state as object)), plainValueArbitrary)
              .map(([key, value]) => ({ ...good, state: { ...(good.state as object), [key]: value } })),
          ),
          (section) => {
            const target = createVirtioRig(makeDevice(), RAM_BYTES);
            target.driver.initialize();
            const before = target.transport.saveState();
            try {
              target.transport.restoreState(section as never);
            } catch (error) {
              expect(SnapshotError.is(error)).toBe(true);
              expect(target.transport.saveState()).toEqual(before);
            }
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  it('a looping chain and a chain through an indirect table into itself end in DEVICE_NEEDS_RESET', () => {
    for (const indirectLoop of [false, true]) {
      const rig = createVirtioRig(new VirtioRng(), RAM_BYTES);
      rig.driver.initialize();
      const queue = rig.driver.queues[0]!;
      const memory = rig.harness.env.memory;
      if (indirectLoop) {
        // Descriptor 0 is indirect, pointing at a table whose entry 0 chains to itself.
        const table = rig.driver.allocate(16, 16);
        memory.writeU32(queue.descriptorTable, table);
        memory.writeU32(queue.descriptorTable + 8, 16);
        memory.writeU16(queue.descriptorTable + 12, 4);
        memory.writeU32(table, RAM_BASE);
        memory.writeU32(table + 8, 4);
        memory.writeU16(table + 12, 1 | 2);
        memory.writeU16(table + 14, 0);
      } else {
        for (let i = 0; i < queue.size; i++) {
          const entry = queue.descriptorTable + 16 * i;
          memory.writeU32(entry, RAM_BASE);
          memory.writeU32(entry + 8, 4);
          memory.writeU16(entry + 12, 1 | 2);
          memory.writeU16(entry + 14, (i + 1) % queue.size);
        }
      }
      rig.driver.makeAvailable(0, 0);
      rig.driver.notify(0);
      expect(rig.driver.read(Reg.status) & 64).toBe(64);
      expect(rig.transport.failureReason).toMatch(/loops/);
      expect(rig.driver.read(Reg.interruptStatus)).toBe(2);
    }
  });
});
