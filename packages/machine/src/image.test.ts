import { ImageError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { parseElf, parseImage, parseRawImage } from './image.js';

const ram = { base: 0x8000_0000, size: 0x10_0000 };

interface SegmentSpec {
  type?: number;
  address: number;
  data: number[];
  memorySize?: number;
}

/** Builds a minimal ELF32 little-endian executable. */
function buildElf(
  options: {
    entry?: number;
    machine?: number;
    elfClass?: number;
    type?: number;
    segments?: SegmentSpec[];
  } = {},
): Uint8Array {
  const segments = options.segments ?? [{ address: 0x8000_0000, data: [0x13, 0, 0, 0] }];
  const headerBytes = 52 + segments.length * 32;
  const dataBytes = segments.reduce((total, segment) => total + segment.data.length, 0);
  const bytes = new Uint8Array(headerBytes + dataBytes);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, options.elfClass ?? 1, 1, 1]);
  view.setUint16(16, options.type ?? 2, true);
  view.setUint16(18, options.machine ?? 243, true);
  view.setUint32(20, 1, true);
  view.setUint32(24, options.entry ?? 0x8000_0000, true);
  view.setUint32(28, 52, true);
  view.setUint16(40, 52, true);
  view.setUint16(42, 32, true);
  view.setUint16(44, segments.length, true);
  let dataOffset = headerBytes;
  segments.forEach((segment, index) => {
    const header = 52 + index * 32;
    view.setUint32(header, segment.type ?? 1, true);
    view.setUint32(header + 4, dataOffset, true);
    view.setUint32(header + 8, segment.address, true);
    view.setUint32(header + 12, segment.address, true);
    view.setUint32(header + 16, segment.data.length, true);
    view.setUint32(header + 20, segment.memorySize ?? segment.data.length, true);
    bytes.set(segment.data, dataOffset);
    dataOffset += segment.data.length;
  });
  return bytes;
}

function expectImageError(action: () => unknown, pattern: RegExp): void {
  try {
    action();
  } catch (error) {
    expect(ImageError.is(error)).toBe(true);
    expect((error as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected an ImageError');
}

describe('ELF loader', () => {
  it('loads segments with their zero fill and the entry point', () => {
    const image = parseElf(
      buildElf({
        entry: 0x8000_0004,
        segments: [
          { address: 0x8000_0000, data: [1, 2, 3, 4, 5, 6, 7, 8] },
          { address: 0x8000_1000, data: [9], memorySize: 16 },
          { type: 4, address: 0, data: [0xff] }, // PT_NOTE: ignored
        ],
      }),
      ram,
    );
    expect(image.entry).toBe(0x8000_0004);
    expect(image.segments).toHaveLength(2);
    expect(Array.from(image.segments[0]?.bytes ?? [])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(image.segments[1]?.bytes.length).toBe(16);
    expect(Array.from(image.segments[1]?.bytes.subarray(0, 2) ?? [])).toEqual([9, 0]);
  });

  it('refuses what is not an RV32 executable, naming the problem', () => {
    expectImageError(() => parseElf(new Uint8Array([1, 2, 3]), ram, 'x.elf'), /^x\.elf: not an ELF file$/);
    expectImageError(() => parseElf(buildElf({ elfClass: 2 }), ram), /64-bit/);
    expectImageError(() => parseElf(buildElf({ machine: 62 }), ram), /machine 62, expected RISC-V/);
    expectImageError(() => parseElf(buildElf({ type: 3 }), ram), /type 3, expected an executable/);
  });

  it('refuses truncated files at every length without another kind of exception', () => {
    const whole = buildElf({ segments: [{ address: 0x8000_0000, data: [0x13, 0, 0, 0, 0x13, 0, 0, 0] }] });
    // From 4 bytes on the file says it is ELF; shorter prefixes are (valid) raw binaries.
    for (let length = 4; length < whole.length; length++) {
      expect(() => parseImage(whole.subarray(0, length), ram)).toThrow(ImageError);
    }
    expect(() => parseImage(whole, ram)).not.toThrow();
  });

  it('refuses segments outside RAM and an entry outside the segments', () => {
    expectImageError(
      () => parseElf(buildElf({ segments: [{ address: 0x1000, data: [1] }] }), ram),
      /segment 0 at 0x1000\.\.0x1001 lies outside RAM/,
    );
    expectImageError(() => parseElf(buildElf({ entry: 0x8000_1000 }), ram), /entry point 0x80001000/);
  });

  it('loads the part in RAM of a segment that reaches outside it, as QEMU does', () => {
    // `ld -Ttext=0x80000000` puts the ELF headers in the page below the text, outside RAM.
    const image = parseElf(
      buildElf({ segments: [{ address: 0x7fff_fffc, data: [9, 9, 9, 9, 0x13, 0, 0, 0] }] }),
      ram,
    );
    expect(image.segments).toHaveLength(1);
    expect(image.segments[0]?.address).toBe(0x8000_0000);
    expect([...(image.segments[0]?.bytes ?? [])]).toEqual([0x13, 0, 0, 0]);
    const end = ram.base + ram.size;
    const tail = parseElf(
      buildElf({ entry: end - 4, segments: [{ address: end - 4, data: [1, 2, 3, 4], memorySize: 8 }] }),
      ram,
    );
    expect(tail.segments[0]?.bytes.length).toBe(4);
  });

  it('loads a raw binary at the start of RAM and refuses one that does not fit', () => {
    const image = parseImage(new Uint8Array([0x13, 0, 0, 0]), ram);
    expect(image.entry).toBe(ram.base);
    expectImageError(() => parseRawImage(new Uint8Array(0), ram), /empty image/);
    expectImageError(() => parseRawImage(new Uint8Array(ram.size + 1), ram), /does not fit/);
  });
});
