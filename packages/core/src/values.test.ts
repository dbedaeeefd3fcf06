import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPlainValue, type PlainValue, plainValuesEqual } from './values.js';

const plainValue: fc.Arbitrary<PlainValue> = fc.letrec<{ value: PlainValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.string(),
    fc.uint8Array({ maxLength: 16 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

describe('plain values', () => {
  it('accepts every plain value and equals a structural copy of it', () => {
    fc.assert(
      fc.property(plainValue, (value) => {
        expect(isPlainValue(value)).toBe(true);
        expect(plainValuesEqual(value, structuredClone(value))).toBe(true);
      }),
    );
  });

  it('rejects what cannot cross a boundary', () => {
    expect(isPlainValue(undefined)).toBe(false);
    expect(isPlainValue(10n)).toBe(false);
    expect(isPlainValue(() => 1)).toBe(false);
    expect(isPlainValue(new Map())).toBe(false);
    expect(isPlainValue({ nested: [new Date(0)] })).toBe(false);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(isPlainValue(cyclic)).toBe(false);
  });

  it('tells different values apart', () => {
    expect(plainValuesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(plainValuesEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(plainValuesEqual({ a: 1 }, { b: 1 })).toBe(false);
    expect(plainValuesEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(plainValuesEqual([1], { 0: 1 })).toBe(false);
    expect(plainValuesEqual(new Uint8Array([1]), [1])).toBe(false);
    expect(plainValuesEqual(0, -0)).toBe(true);
    expect(plainValuesEqual(Number.NaN, Number.NaN)).toBe(true);
    expect(plainValuesEqual('1', 1)).toBe(false);
  });
});
