/**
 * The physical bus between a CPU (or any bus master) and memory and devices.
 *
 * RAM is exposed as plain byte arrays so the CPU's hot path touches memory directly; everything
 * else goes through MMIO callbacks on the slow path.
 */

/** Width of one bus access in bytes. */
export type AccessWidth = 1 | 2 | 4;

/** Size of the pages that dirty tracking works in (and that Sv32 maps). */
export const PAGE_SIZE_BYTES = 4096;
export const PAGE_SHIFT = 12;

/**
 * A region of guest RAM. The bytes are little-endian guest memory; `base` is its guest-physical
 * address.
 *
 * Dirty tracking: whoever writes `bytes` (the CPU, a device doing DMA through {@link GuestMemory})
 * sets `dirtyPages[(address - base) >>> PAGE_SHIFT] = 1` at the latest when the write completes. A
 * CPU may remember which pages it already marked (to keep stores cheap); so whoever clears
 * `dirtyPages` must then call `Cpu.resetDirtyTracking` before the CPU runs again.

 */
export interface RamRegion {
  /** Guest-physical address of the first byte. */
  readonly base: number;
  /** Size in bytes, a multiple of {@link PAGE_SIZE_BYTES}. */
  readonly size: number;
  /** The memory itself. Its length is `size`. */
  readonly bytes: Uint8Array;
  /** One byte per page: non-zero once the page was written since the last clear. */
  readonly dirtyPages: Uint8Array;
}

/**
 * What a CPU sees of the machine. Implemented by the machine (or by a test's flat memory).
 *
 * `readMmio` and `writeMmio` are called by the CPU during an instruction, for addresses outside
 * every {@link RamRegion}. They run device code synchronously and must not block, await or throw
 * for anything a guest can do.
 */
export interface Bus {
  /** RAM regions, sorted by base, not overlapping. The CPU may access them directly. */
  readonly ram: readonly RamRegion[];
  /**
   * Reads `width` bytes at a guest-physical address outside RAM. Returns the value zero-extended
   * to an unsigned 32-bit number, or `undefined` when nothing claims the address: the CPU then
   * raises a load access fault.
   */
  readMmio(address: number, width: AccessWidth): number | undefined;
  /**
   * Writes the low `width` bytes of `value` at a guest-physical address outside RAM. Returns false
   * when nothing claims the address: the CPU then raises a store access fault.
   */
  writeMmio(address: number, width: AccessWidth, value: number): boolean;
}

/**
 * Guest memory as a device sees it for DMA. Provided by the machine in {@link DeviceEnv.memory}.
 * Use it only inside an MMIO handler or `applyEvent` (the points where guest-visible state may
 * change). Writes mark pages dirty and drop any CPU caches of the bytes written.
 */
export interface GuestMemory {
  /**
   * True when `[address, address + length)` lies wholly inside RAM. Devices check guest-supplied
   * addresses with it and answer with their spec's error instead of touching memory.
   */
  contains(address: number, length: number): boolean;
  /** Copies guest memory out. Throws {@link RangeError} when the range is not wholly in RAM. */
  read(address: number, length: number): Uint8Array;
  /** Copies bytes into guest memory. Throws {@link RangeError} when the range is not wholly in RAM. */
  write(address: number, data: Uint8Array): void;
  readU16(address: number): number;
  readU32(address: number): number;
  writeU16(address: number, value: number): void;
  writeU32(address: number, value: number): void;
}
