import type { AccessWidth } from '@ftvm/core';

/** The low `width` bytes of `value`, as an unsigned number. */
export function truncateToWidth(value: number, width: AccessWidth): number {
  switch (width) {
    case 1:
      return value & 0xff;
    case 2:
      return value & 0xffff;
    default:
      return value >>> 0;
  }
}

/** Splits an unsigned 64-bit value into 32-bit halves. */
export function lowWord(value: bigint): number {
  return Number(value & 0xffff_ffffn);
}
export function highWord(value: bigint): number {
  return Number((value >> 32n) & 0xffff_ffffn);
}

/** Replaces the low (`half` 0) or high (`half` 1) 32 bits of a 64-bit value. */
export function depositWord(value: bigint, half: 0 | 1, word: number): bigint {
  const shift = half === 0 ? 0n : 32n;
  const mask = 0xffff_ffffn << shift;
  return (value & ~mask & 0xffff_ffff_ffff_ffffn) | (BigInt(word >>> 0) << shift);
}

/** Wraps a bigint to unsigned 64 bits. */
export function toUint64(value: bigint): bigint {
  return BigInt.asUintN(64, value);
}
