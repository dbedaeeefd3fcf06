/**
 * Reads kv.elf's store off its disk (the layout in kv.c): sector 0 holds the header ("FTVMKV01",
 * version 1, slot count, sectors per slot, crc32); slot i at sector 1 + 3i holds {magic "KVSL",
 * crc32 of the rest, used, key length, value length (u16), key[64], value[1024]}. A slot whose
 * magic or crc does not match is empty, as kv.elf reads it. Returns key → value, or why the disk
 * holds no store.
 */
const SECTOR_BYTES = 512;
const SECTORS_PER_SLOT = 3;
const SLOT_MAGIC = 0x4c53564b;
const KEY_BYTES_MAX = 64;
const VALUE_BYTES_MAX = 1024;
const SLOT_BYTES = 4 + 4 + 1 + 1 + 2 + KEY_BYTES_MAX + VALUE_BYTES_MAX;

export function readKvDisk(disk: Uint8Array): Map<string, string> | string {
  const view = new DataView(disk.buffer, disk.byteOffset, disk.byteLength);
  const magic = new TextDecoder().decode(disk.subarray(0, 8));
  if (magic !== 'FTVMKV01') return 'no kv store on the disk (no header)';
  if (crc32(disk.subarray(0, 20)) !== view.getUint32(20, true)) return 'the kv header fails its crc';
  const slotCount = view.getUint32(12, true);
  const store = new Map<string, string>();
  for (let slot = 0; slot < slotCount; slot++) {
    const offset = (1 + slot * SECTORS_PER_SLOT) * SECTOR_BYTES;
    if (offset + SLOT_BYTES > disk.length) break;
    if (view.getUint32(offset, true) !== SLOT_MAGIC) continue;
    if (view.getUint32(offset + 4, true) !== crc32(disk.subarray(offset + 8, offset + SLOT_BYTES))) continue;
    if (disk[offset + 8] !== 1) continue;
    const keyLength = disk[offset + 9] as number;
    const valueLength = view.getUint16(offset + 10, true);
    if (keyLength === 0 || keyLength > KEY_BYTES_MAX || valueLength === 0 || valueLength > VALUE_BYTES_MAX)
      continue;
    const text = (from: number, length: number) =>
      new TextDecoder().decode(disk.subarray(from, from + length));
    const key = text(offset + 12, keyLength);
    if (store.has(key)) return `key ${key} is in two slots of the disk`;
    store.set(key, text(offset + 12 + KEY_BYTES_MAX, valueLength));
  }
  return store;
}

let table: Uint32Array | undefined;

function crc32(bytes: Uint8Array): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let index = 0; index < 256; index++) {
      let value = index;
      for (let bit = 0; bit < 8; bit++) value = (value >>> 1) ^ (0xedb8_8320 & -(value & 1));
      table[index] = value >>> 0;
    }
  }
  let crc = 0xffff_ffff;
  for (const byte of bytes) crc = (crc >>> 8) ^ (table[(crc ^ byte) & 0xff] as number);
  return (crc ^ 0xffff_ffff) >>> 0;
}
