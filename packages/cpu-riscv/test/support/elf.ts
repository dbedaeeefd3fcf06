/** A minimal ELF32 little-endian loader for test and benchmark images. */

export interface ElfSegment {
  readonly address: number;
  readonly data: Uint8Array;
  /** Size in memory; bytes past data.length are zero (.bss). */
  readonly memorySizeBytes: number;
}

export interface ElfImage {
  readonly entry: number;
  readonly segments: readonly ElfSegment[];
  /** Symbol name → address, from .symtab when present. */
  readonly symbols: ReadonlyMap<string, number>;
}

export function parseElf32(file: Uint8Array): ElfImage {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (view.getUint32(0, false) !== 0x7f454c46 || file[4] !== 1 || file[5] !== 1) {
    throw new Error('not a little-endian ELF32 file');
  }
  const entry = view.getUint32(24, true);
  const programHeaderOffset = view.getUint32(28, true);
  const sectionHeaderOffset = view.getUint32(32, true);
  const programHeaderSize = view.getUint16(42, true);
  const programHeaderCount = view.getUint16(44, true);
  const sectionHeaderSize = view.getUint16(46, true);
  const sectionHeaderCount = view.getUint16(48, true);
  const segments: ElfSegment[] = [];
  for (let i = 0; i < programHeaderCount; i++) {
    const base = programHeaderOffset + i * programHeaderSize;
    if (view.getUint32(base, true) !== 1) continue; // PT_LOAD
    const offset = view.getUint32(base + 4, true);
    const physicalAddress = view.getUint32(base + 12, true);
    const fileSize = view.getUint32(base + 16, true);
    const memorySize = view.getUint32(base + 20, true);
    segments.push({
      address: physicalAddress,
      data: file.subarray(offset, offset + fileSize),
      memorySizeBytes: memorySize,
    });
  }
  const symbols = new Map<string, number>();
  for (let i = 0; i < sectionHeaderCount; i++) {
    const base = sectionHeaderOffset + i * sectionHeaderSize;
    if (view.getUint32(base + 4, true) !== 2) continue; // SHT_SYMTAB
    const offset = view.getUint32(base + 16, true);
    const size = view.getUint32(base + 20, true);
    const link = view.getUint32(base + 24, true);
    const stringsBase = sectionHeaderOffset + link * sectionHeaderSize;
    const stringsOffset = view.getUint32(stringsBase + 16, true);
    for (let entry = offset; entry + 16 <= offset + size; entry += 16) {
      const nameOffset = view.getUint32(entry, true);
      let end = stringsOffset + nameOffset;
      while (file[end] !== 0) end++;
      const name = new TextDecoder().decode(file.subarray(stringsOffset + nameOffset, end));
      if (name !== '') symbols.set(name, view.getUint32(entry + 4, true));
    }
  }
  return { entry, segments, symbols };
}
