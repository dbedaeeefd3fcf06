/**
 * The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
 * big-endian words, an odd last byte padded with zero.
 */

/** Adds `bytes[start, end)` to a running ones' complement sum (not yet folded or inverted). */
export function addToChecksum(sum: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let index = start;
  for (; index + 1 < end; index += 2) sum += (bytes[index]! << 8) | bytes[index + 1]!;
  if (index < end) sum += bytes[index]! << 8;
  // Fold now and then so the sum stays an exact integer however long the input.
  return sum > 0x7fff_ffff ? foldChecksum(sum) : sum;
}

/** Folds the carries of a running sum into 16 bits. */
export function foldChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x1_0000);
  return sum;
}

/** The Internet checksum of `bytes[start, end)`; 0 when verifying a range that includes its checksum. */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return ~foldChecksum(addToChecksum(0, bytes, start, end)) & 0xffff;
}
