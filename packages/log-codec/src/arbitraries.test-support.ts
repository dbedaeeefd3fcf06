import type { LogEntry, PlainValue } from '@ftvm/core';
import fc from 'fast-check';

/** Plain values as devices log them (numbers, strings, bytes, small nested structures). */
export const plainValue: fc.Arbitrary<PlainValue> = fc.letrec<{ value: PlainValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeNat(),
    // MessagePack has no negative zero: -0 travels as 0, in the log as in the state hash, so
    // no two hosts ever see it differently; plain values are generated without it.
    fc.double({ noNaN: true }).map((value) => (Object.is(value, -0) ? 0 : value)),
    fc.string({ maxLength: 20 }),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const shortName = fc.string({ minLength: 1, maxLength: 12 });

type EntryBody = LogEntry extends infer E ? (E extends LogEntry ? Omit<E, 'seq' | 'icount'> : never) : never;

const entryBody: fc.Arbitrary<EntryBody> = fc.oneof(
  fc.record({
    kind: fc.constant('event' as const),
    device: shortName,
    event: fc.oneof(fc.record({ type: shortName }), fc.record({ type: shortName, data: plainValue })),
  }),
  fc.record({ kind: fc.constant('nondet' as const), device: shortName, key: shortName, value: plainValue }),
  fc.record({ kind: fc.constant('progress' as const) }),
  fc.record({
    kind: fc.constant('checkpoint' as const),
    stateHash: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant('stop' as const), exitStatus: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('output' as const),
    device: shortName,
    stream: shortName,
    data: fc.uint8Array({ maxLength: 40 }),
  }),
);

/** A well-formed log: seq from `firstSeq`, icount never decreasing. */
export function logEntries(maxLength = 60, firstSeq = 0): fc.Arbitrary<LogEntry[]> {
  return fc
    .array(fc.tuple(entryBody, fc.oneof(fc.constant(0), fc.nat(1000), fc.nat(2 ** 40))), { maxLength })
    .map((items) => {
      let icount = 0;
      return items.map(([body, delta], index) => {
        icount += delta;
        return { ...body, seq: firstSeq + index, icount } as LogEntry;
      });
    });
}
