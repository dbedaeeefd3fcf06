import type { AccessWidth, Bus, Cpu, Device, GuestMemory, RamRegion } from '@ftvm/core';
import { ConfigError, DeviceError, PAGE_SHIFT, PAGE_SIZE_BYTES } from '@ftvm/core';

/** Guest RAM starts here on the board, as on QEMU's virt. */
export const RAM_BASE = 0x8000_0000;
/** The largest RAM the 32-bit board holds above {@link RAM_BASE} (the top page is left out). */
export const RAM_SIZE_BYTES_MAX = 0x8000_0000 - PAGE_SIZE_BYTES;

/** Allocates a zeroed RAM region. */
export function createRam(base: number, sizeBytes: number): RamRegion {
  if (!Number.isInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE_BYTES !== 0) {
    throw new ConfigError(`RAM size ${sizeBytes} is not a positive multiple of 4 KiB`);
  }
  if (sizeBytes > RAM_SIZE_BYTES_MAX) {
    throw new ConfigError(`RAM size ${sizeBytes} bytes exceeds the board's ${RAM_SIZE_BYTES_MAX} bytes`);
  }
  return {
    base,
    size: sizeBytes,
    bytes: new Uint8Array(sizeBytes),
    dirtyPages: new Uint8Array(sizeBytes >>> PAGE_SHIFT),
  };
}

/** A device placed on the bus. */
export interface MmioWindow {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  readonly device: Device;
}

/** Granularity of the MMIO lookup table: windows are at least this aligned on the board. */
const MMIO_LOOKUP_SHIFT = 8;

/**
 * The machine's bus: RAM for the CPU's direct access, and MMIO windows looked up through a map from
 * 256-byte blocks to windows (MMIO is the slow path; the map keeps it constant-time anyway).
 */
export class MachineBus implements Bus {
  readonly ram: readonly RamRegion[];
  private readonly windows: MmioWindow[] = [];
  private readonly lookup = new Map<number, MmioWindow>();

  constructor(ram: RamRegion) {
    this.ram = [ram];
  }

  /** Places a device; throws DeviceError when its window overlaps RAM or another device. */
  addWindow(window: MmioWindow): void {
    const end = window.base + window.size;
    const blockSize = 1 << MMIO_LOOKUP_SHIFT;
    if (window.size <= 0 || window.base % blockSize !== 0 || end > 2 ** 32) {
      throw new DeviceError(
        `${window.name}: bad MMIO window at 0x${window.base.toString(16)} size ${window.size}`,
      );
    }
    for (const region of this.ram) {
      if (window.base < region.base + region.size && region.base < end) {
        throw new DeviceError(`${window.name}: MMIO window overlaps RAM`);
      }
    }
    for (const other of this.windows) {
      if (window.base < other.base + other.size && other.base < end) {
        throw new DeviceError(`${window.name}: MMIO window overlaps ${other.name}`);
      }
    }
    this.windows.push(window);
    for (let block = window.base >>> MMIO_LOOKUP_SHIFT; block < Math.ceil(end / blockSize); block++) {
      this.lookup.set(block, window);
    }
  }

  /** The windows in the order they were added. */
  get mmioWindows(): readonly MmioWindow[] {
    return this.windows;
  }

  readMmio(address: number, width: AccessWidth): number | undefined {
    const window = this.lookup.get(address >>> MMIO_LOOKUP_SHIFT);
    if (window === undefined || address + width > window.base + window.size) return undefined;
    return window.device.readMmio(address - window.base, width) >>> 0;
  }

  writeMmio(address: number, width: AccessWidth, value: number): boolean {
    const window = this.lookup.get(address >>> MMIO_LOOKUP_SHIFT);
    if (window === undefined || address + width > window.base + window.size) return false;
    window.device.writeMmio(address - window.base, width, value >>> 0);
    return true;
  }
}

/**
 * Guest memory as devices see it for DMA: bounds-checked, marks pages dirty, and drops the CPU's
 * caches of what it overwrites.
 */
export class RamGuestMemory implements GuestMemory {
  private readonly view: DataView;

  constructor(
    private readonly ram: RamRegion,
    private readonly cpu: () => Cpu | undefined,
  ) {
    this.view = new DataView(ram.bytes.buffer, ram.bytes.byteOffset, ram.bytes.byteLength);
  }

  contains(address: number, length: number): boolean {
    const offset = address - this.ram.base;
    return (
      Number.isInteger(address) &&
      Number.isInteger(length) &&
      length >= 0 &&
      offset >= 0 &&
      offset + length <= this.ram.size
    );
  }

  private offsetOf(address: number, length: number): number {
    if (!this.contains(address, length)) {
      throw new RangeError(`guest range 0x${address.toString(16)}+${length} is outside RAM`);
    }
    return address - this.ram.base;
  }

  read(address: number, length: number): Uint8Array {
    const offset = this.offsetOf(address, length);
    return this.ram.bytes.slice(offset, offset + length);
  }

  write(address: number, data: Uint8Array): void {
    const offset = this.offsetOf(address, data.length);
    this.ram.bytes.set(data, offset);
    this.markWritten(offset, data.length);
  }

  readU16(address: number): number {
    return this.view.getUint16(this.offsetOf(address, 2), true);
  }

  readU32(address: number): number {
    return this.view.getUint32(this.offsetOf(address, 4), true);
  }

  writeU16(address: number, value: number): void {
    const offset = this.offsetOf(address, 2);
    this.view.setUint16(offset, value, true);
    this.markWritten(offset, 2);
  }

  writeU32(address: number, value: number): void {
    const offset = this.offsetOf(address, 4);
    this.view.setUint32(offset, value >>> 0, true);
    this.markWritten(offset, 4);
  }

  private markWritten(offset: number, length: number): void {
    if (length === 0) return;
    const first = offset >>> PAGE_SHIFT;
    const last = (offset + length - 1) >>> PAGE_SHIFT;
    this.ram.dirtyPages.fill(1, first, last + 1);
    // The CPU may hold decoded instructions of these bytes.
    this.cpu()?.invalidateMemoryRange(this.ram.base + offset, length);
  }
}
