import type { AccessWidth } from '@ftvm/core';

/**
 * Reads a little-endian value of `width` bytes at `offset` of a device configuration space laid out
 * in `bytes`. Past its end QEMU 7.2 answers all ones (`virtio_config_modern_read*`); so do we.
 */
export function readConfigBytes(bytes: Uint8Array, offset: number, width: AccessWidth): number {
  if (!Number.isInteger(offset) || offset < 0 || offset + width > bytes.length) {
    return width === 4 ? 0xffff_ffff : (1 << (8 * width)) - 1;
  }
  let value = 0;
  for (let i = width - 1; i >= 0; i--) value = value * 256 + bytes[offset + i]!;
  return value >>> 0;
}

/** Writes `value` as a little-endian `width`-byte field of a configuration space layout. */
export function setConfigField(bytes: Uint8Array, offset: number, width: 1 | 2 | 4 | 8, value: number): void {
  let remaining = value;
  for (let i = 0; i < width; i++) {
    bytes[offset + i] = remaining % 256;
    remaining = Math.floor(remaining / 256);
  }
}
