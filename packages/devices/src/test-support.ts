/**
 * Shared pieces of this package's own tests (not exported): random MMIO workloads, a transcript of
 * what a device did under one, and the save → restore equivalence check.
 */
import type { AccessWidth, Device, DeviceEventPayload, PlainValue } from '@ftvm/core';
import fc from 'fast-check';
import { expect } from 'vitest';
import { type DeviceHarness, type DeviceHarnessOptions, TestInterruptLine } from './testing/index.js';

/** One thing a test does to a device. */
export type Operation =
  | { readonly kind: 'read'; readonly offset: number; readonly width: AccessWidth }
  | { readonly kind: 'write'; readonly offset: number; readonly width: AccessWidth; readonly value: number }
  | { readonly kind: 'advance'; readonly durationNs: number }
  | { readonly kind: 'event'; readonly event: DeviceEventPayload };

/** A device under test with every interrupt line it drives (its own `env.irq` first). */
export interface Rig<D extends Device = Device> {
  readonly harness: DeviceHarness<D>;
  readonly lines: readonly TestInterruptLine[];
}

export type RigFactory<D extends Device = Device> = (options?: DeviceHarnessOptions) => Rig<D>;

const widthArbitrary = fc.constantFrom<AccessWidth>(1, 2, 4);

/** Any plain value a hostile log could carry as event data. */
export const plainValueArbitrary: fc.Arbitrary<PlainValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.uint8Array({ maxLength: 64 }),
  fc.array(fc.integer(), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string(), fc.constant(null)), {
    maxKeys: 3,
  }),
);

/**
 * Random operations on a device: accesses biased towards `registerOffsets` but reaching any offset
 * (beyond the window too) with any width, time steps from nothing to days, and events of the
 * device's own `eventTypes` or any other, with any data.
 */
export function operationsArbitrary(options: {
  readonly registerOffsets: readonly number[];
  readonly mmioSize: number;
  readonly eventTypes: readonly string[];
  readonly eventData?: fc.Arbitrary<PlainValue>;
  readonly maxLength?: number;
}): fc.Arbitrary<Operation[]> {
  const offsetArbitrary = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...options.registerOffsets) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: options.mmioSize - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: -8, max: 0xffff_ffff }) },
  );
  const valueArbitrary = fc.oneof(
    fc.constantFrom(0, 1, 2, 3, 0x5555, 0x3333, 0x7777, 0xff, 0xffff_ffff, 0x8000_0000),
    fc.nat({ max: 0xff }),
    fc.nat({ max: 0xffff_ffff }),
  );
  const typeArbitrary =
    options.eventTypes.length === 0
      ? fc.string({ maxLength: 12 })
      : fc.oneof(fc.constantFrom(...options.eventTypes), fc.string({ maxLength: 12 }));
  const eventArbitrary: fc.Arbitrary<DeviceEventPayload> = fc.record({
    type: typeArbitrary,
    data:
      options.eventData === undefined
        ? plainValueArbitrary
        : fc.oneof(options.eventData, plainValueArbitrary),
  });
  const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('read' as const),
        offset: offsetArbitrary,
        width: widthArbitrary,
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        offset: offsetArbitrary,
        width: widthArbitrary,
        value: valueArbitrary,
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        durationNs: fc.oneof(fc.nat({ max: 10_000 }), fc.nat({ max: 10_000_000 }), fc.constant(86_400e9)),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('event' as const), event: eventArbitrary }) },
  );
  return fc.array(operationArbitrary, { maxLength: options.maxLength ?? 60 });
}

/** What a device did in answer to one operation. */
interface TranscriptEntry {
  readonly read: number | null;
  readonly lines: string;
  readonly outputs: readonly { readonly kind: string; readonly data: readonly number[] }[];
  readonly powerOffs: readonly number[];
  readonly resets: number;
}

/** Runs `operations` on a rig and returns, per operation, what was read, the lines, and any outputs. */
export function runOperations(rig: Rig, operations: readonly Operation[]): TranscriptEntry[] {
  const { harness } = rig;
  const env = harness.env;
  return operations.map((operation) => {
    const outputsBefore = env.outputs.length;
    const powerOffsBefore = env.control.powerOffs.length;
    const resetsBefore = env.control.resets;
    let read: number | null = null;
    switch (operation.kind) {
      case 'read':
        read = harness.read(operation.offset, operation.width);
        break;
      case 'write':
        harness.write(operation.offset, operation.value, operation.width);
        break;
      case 'advance':
        harness.advanceTimeNs(operation.durationNs);
        break;
      case 'event':
        env.inject(operation.event);
        break;
    }
    harness.deliver();
    return {
      read,
      lines: rig.lines.map((line) => (line.level ? '1' : '0')).join(''),
      outputs: env.outputs
        .slice(outputsBefore)
        .map((output) => ({ kind: output.kind, data: [...output.data] })),
      powerOffs: env.control.powerOffs.slice(powerOffsBefore),
      resets: env.control.resets - resetsBefore,
    };
  });
}

/** A deep copy of a plain value, as a snapshot file or another host would hand it back. */
export function clonePlain<T extends PlainValue>(value: T): T {
  if (value instanceof Uint8Array) return value.slice() as T;
  if (Array.isArray(value)) return value.map((item) => clonePlain(item as PlainValue)) as unknown as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as { [key: string]: PlainValue }).map(([key, item]) => [key, clonePlain(item)]),
    ) as T;
  }
  return value;
}

/**
 * The save → restore property: after any `prefix`, a fresh device restored from the saved state
 * (on a host whose clock reads the same) saves the same state and answers any `suffix` exactly
 * as the original does.
 */
export function expectRestoredDeviceBehavesIdentically(
  makeRig: RigFactory,
  prefix: readonly Operation[],
  suffix: readonly Operation[],
): void {
  const original = makeRig();
  runOperations(original, prefix);
  const section = original.harness.device.saveState();
  const clock = original.harness.env.clock;
  const restored = makeRig({ monotonicNs: clock.currentMonotonicNs, realtimeNs: clock.currentRealtimeNs });
  restored.harness.device.restoreState({ ...section, state: clonePlain(section.state) });
  expect(restored.harness.device.saveState()).toEqual(section);
  expect(restored.lines.map((line) => line.level)).toEqual(original.lines.map((line) => line.level));
  expect(runOperations(restored, suffix)).toEqual(runOperations(original, suffix));
}

/** A fresh interrupt line, for devices that take their lines in the constructor. */
export function line(): TestInterruptLine {
  return new TestInterruptLine();
}
