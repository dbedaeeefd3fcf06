import type { RamRegion } from '@ftvm/core';
import { ImageError } from '@ftvm/core';

/** A guest image ready to be copied into RAM. */
export interface LoadedImage {
  /** Guest-physical entry point: where the hart starts. */
  readonly entry: number;
  /**
   * With a firmware: the kernel's entry, which the firmware jumps to (QEMU's reset ROM hands it
   * over in its `fw_dynamic_info` block). Without one, the same as `entry`.
   */
  readonly kernelEntry?: number;
  /** The pieces to copy: a guest address and the bytes (zero-fill included). */
  readonly segments: readonly { readonly address: number; readonly bytes: Uint8Array }[];
}

const ELF_MAGIC = 0x464c457f; // "\x7fELF", little-endian u32
const ELFCLASS32 = 1;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_RISCV = 243;
const PT_LOAD = 1;
const ELF_HEADER_BYTES = 52;
const PROGRAM_HEADER_BYTES = 32;
/** More program headers than any sane image has; bounds the work a hostile file can cause. */
const PROGRAM_HEADERS_MAX = 256;

/** True when the bytes start like an ELF file of any kind. */
export function looksLikeElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === ELF_MAGIC
  );
}

/**
 * Parses an ELF32 little-endian RISC-V executable. Checks the class, data encoding, type and
 * machine, and that every loadable segment lies inside the file and inside `ram`. Throws
 * ImageError naming what is wrong.
 */
export function parseElf(
  bytes: Uint8Array,
  ram: Pick<RamRegion, 'base' | 'size'>,
  name = 'image',
): LoadedImage {
  const fail = (why: string): never => {
    throw new ImageError(`${name}: ${why}`);
  };
  if (!looksLikeElf(bytes)) fail('not an ELF file');
  if (bytes.length < 6) fail(`truncated ELF header (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elfClass = bytes[4];
  if (elfClass !== ELFCLASS32)
    fail(`ELF class ${elfClass === 2 ? '64-bit' : elfClass}, expected 32-bit (RV32)`);
  if (bytes[5] !== ELFDATA2LSB) fail('ELF file is not little-endian');
  if (bytes.length < ELF_HEADER_BYTES) fail(`truncated ELF header (${bytes.length} bytes)`);
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_RISCV) fail(`ELF machine ${machine}, expected RISC-V (${EM_RISCV})`);
  if (type !== ET_EXEC) fail(`ELF type ${type}, expected an executable (${ET_EXEC})`);
  const entry = view.getUint32(24, true);
  const programHeaderOffset = view.getUint32(28, true);
  const programHeaderSize = view.getUint16(42, true);
  const programHeaderCount = view.getUint16(44, true);
  if (programHeaderCount === 0) fail('ELF file has no program headers');
  if (programHeaderCount > PROGRAM_HEADERS_MAX) fail(`ELF file has ${programHeaderCount} program headers`);
  if (programHeaderSize < PROGRAM_HEADER_BYTES) fail(`ELF program header size ${programHeaderSize}`);
  if (programHeaderOffset + programHeaderCount * programHeaderSize > bytes.length) {
    fail('truncated ELF file: program headers run past its end');
  }
  const ramEnd = ram.base + ram.size;
  const segments: { address: number; bytes: Uint8Array }[] = [];
  let totalBytes = 0;
  for (let index = 0; index < programHeaderCount; index++) {
    const header = programHeaderOffset + index * programHeaderSize;
    if (view.getUint32(header, true) !== PT_LOAD) continue;
    const fileOffset = view.getUint32(header + 4, true);
    const physicalAddress = view.getUint32(header + 12, true);
    const fileSize = view.getUint32(header + 16, true);
    const memorySize = view.getUint32(header + 20, true);
    if (memorySize === 0) continue;
    if (fileSize > memorySize)
      fail(`segment ${index}: file size ${fileSize} exceeds memory size ${memorySize}`);
    if (fileOffset + fileSize > bytes.length) fail(`truncated ELF file: segment ${index} runs past its end`);
    // A segment partly outside RAM (often the ELF headers, linked into the page below the text)
    // loads as on QEMU, whose loader writes nothing where no memory is: its part in RAM. One with
    // no byte in RAM is an image for another board.
    const start = Math.max(physicalAddress, ram.base);
    const end = Math.min(physicalAddress + memorySize, ramEnd);
    if (start >= end) {
      fail(
        `segment ${index} at 0x${physicalAddress.toString(16)}..0x${(physicalAddress + memorySize).toString(16)} ` +
          `lies outside RAM 0x${ram.base.toString(16)}..0x${ramEnd.toString(16)}`,
      );
    }
    totalBytes += end - start;
    if (totalBytes > ram.size)
      fail(`segments total ${totalBytes} bytes, more than the ${ram.size} bytes of RAM`);
    const segment = new Uint8Array(memorySize);
    segment.set(bytes.subarray(fileOffset, fileOffset + fileSize));
    segments.push({
      address: start,
      bytes: segment.subarray(start - physicalAddress, end - physicalAddress),
    });
  }
  if (segments.length === 0) fail('ELF file has no loadable segments');
  const entryInside = segments.some(
    (segment) => entry >= segment.address && entry < segment.address + segment.bytes.length,
  );
  if (!entryInside) fail(`entry point 0x${entry.toString(16)} is not inside a loaded segment`);
  return { entry, segments };
}

/**
 * A raw binary: loaded at the start of RAM (or at `address`) and entered there (QEMU does the same
 * with -kernel).
 */
export function parseRawImage(
  bytes: Uint8Array,
  ram: Pick<RamRegion, 'base' | 'size'>,
  name = 'image',
  address = ram.base,
): LoadedImage {
  if (bytes.length === 0) throw new ImageError(`${name}: empty image`);
  const room = ram.base + ram.size - address;
  if (bytes.length > room) {
    const where = address === ram.base ? '' : ` at 0x${address.toString(16)}`;
    throw new ImageError(
      `${name}: image of ${bytes.length} bytes does not fit in ${room} bytes of RAM${where}`,
    );
  }
  return { entry: address, segments: [{ address, bytes: bytes.slice() }] };
}

/**
 * Where QEMU 7.2 puts a kernel behind a firmware on a 32-bit board: the firmware's end rounded up
 * to 4 MiB (a superpage of Sv32, so the kernel can map itself with one).
 */
export const KERNEL_ALIGN_BYTES = 4 * 1024 * 1024;

/**
 * A firmware and the kernel it boots, as QEMU's `-bios FILE -kernel FILE` loads them: the
 * firmware (ELF, or raw at the start of RAM) and the kernel (ELF at its own addresses, or raw at
 * the firmware's end rounded up to {@link KERNEL_ALIGN_BYTES}). The hart starts at the start of
 * RAM, where QEMU's reset ROM jumps whatever the firmware's ELF entry says; the kernel's entry goes
 * to the firmware through the ROM's `fw_dynamic_info`.
 */
export function parseFirmwareAndKernel(
  firmware: { readonly bytes: Uint8Array; readonly name: string },
  kernel: { readonly bytes: Uint8Array; readonly name: string },
  ram: Pick<RamRegion, 'base' | 'size'>,
): LoadedImage {
  const loadedFirmware = parseImage(firmware.bytes, ram, firmware.name);
  if (!loadedFirmware.segments.some((segment) => segment.address === ram.base)) {
    throw new ImageError(
      `${firmware.name}: a firmware must be linked to start at 0x${ram.base.toString(16)}, where the board starts the hart (as QEMU does)`,
    );
  }
  const firmwareEnd = Math.max(
    ...loadedFirmware.segments.map((segment) => segment.address + segment.bytes.length),
  );
  const kernelStart =
    Math.ceil((firmwareEnd - ram.base) / KERNEL_ALIGN_BYTES) * KERNEL_ALIGN_BYTES + ram.base;
  if (!looksLikeElf(kernel.bytes) && kernelStart >= ram.base + ram.size) {
    throw new ImageError(
      `${kernel.name}: no room for the kernel after the firmware (it would start at 0x${kernelStart.toString(16)}, past the end of RAM)`,
    );
  }
  const loadedKernel = looksLikeElf(kernel.bytes)
    ? parseElf(kernel.bytes, ram, kernel.name)
    : parseRawImage(kernel.bytes, ram, kernel.name, kernelStart);
  for (const ours of loadedKernel.segments) {
    for (const theirs of loadedFirmware.segments) {
      if (
        ours.address < theirs.address + theirs.bytes.length &&
        theirs.address < ours.address + ours.bytes.length
      ) {
        throw new ImageError(
          `${kernel.name}: the kernel at 0x${ours.address.toString(16)} overlaps the firmware ${firmware.name}`,
        );
      }
    }
  }
  return {
    entry: ram.base,
    kernelEntry: loadedKernel.entry,
    segments: [...loadedFirmware.segments, ...loadedKernel.segments],
  };
}

/** ELF when it looks like ELF, a raw binary otherwise. */
export function parseImage(
  bytes: Uint8Array,
  ram: Pick<RamRegion, 'base' | 'size'>,
  name = 'image',
): LoadedImage {
  return looksLikeElf(bytes) ? parseElf(bytes, ram, name) : parseRawImage(bytes, ram, name);
}
