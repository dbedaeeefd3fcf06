import CRC32C from 'crc-32/crc32c.js';

/** CRC-32C (Castagnoli) of `data`, continuing from `seed`, as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array, seed = 0): number {
  return CRC32C.buf(data, seed) >>> 0;
}
