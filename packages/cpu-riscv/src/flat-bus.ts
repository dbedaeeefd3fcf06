import type { AccessWidth, Bus, RamRegion } from '@ftvm/core';
import { PAGE_SHIFT, PAGE_SIZE_BYTES } from '@ftvm/core';

/** One MMIO window of a {@link createFlatBus} bus. Offsets are relative to `base`. */
export interface FlatBusMmioRegion {
  readonly base: number;
  readonly size: number;
  /** Returns the value read (zero-extended), or undefined to raise a load access fault. */
  read(offset: number, width: AccessWidth): number | undefined;
  /** Returns false to raise a store access fault. */
  write(offset: number, width: AccessWidth, value: number): boolean;
}

export interface FlatBusOptions {
  /** Guest-physical address of RAM, 4 KiB aligned (0x8000_0000 on the virt board). */
  readonly ramBase: number;
  /** RAM size in bytes, a multiple of 4 KiB. */
  readonly ramSizeBytes: number;
  readonly mmio?: readonly FlatBusMmioRegion[];
}

/** A {@link Bus} with one RAM region, plus direct access to that region for loading programs. */
export interface FlatBus extends Bus {
  readonly ramRegion: RamRegion;
  /** Copies `data` into RAM at guest-physical `address`. Throws RangeError outside RAM. */
  load(address: number, data: Uint8Array): void;
}

/**
 * A minimal bus: one RAM region and a list of MMIO windows, so the CPU runs on its own
 * (`npm i @ftvm/cpu-riscv` and go). After `load`, call `cpu.invalidateMemoryCaches()` if the CPU
 * has already run.
 */
export function createFlatBus(options: FlatBusOptions): FlatBus {
  const { ramBase, ramSizeBytes } = options;
  if (ramBase % PAGE_SIZE_BYTES !== 0 || ramSizeBytes % PAGE_SIZE_BYTES !== 0 || ramSizeBytes <= 0) {
    throw new RangeError('ramBase and ramSizeBytes must be positive multiples of 4096');
  }
  const ramRegion: RamRegion = {
    base: ramBase,
    size: ramSizeBytes,
    bytes: new Uint8Array(ramSizeBytes),
    dirtyPages: new Uint8Array(ramSizeBytes >>> PAGE_SHIFT),
  };
  const mmio = [...(options.mmio ?? [])];
  const find = (address: number, width: number): FlatBusMmioRegion | undefined => {
    for (const region of mmio) {
      const offset = address - region.base;
      if (offset >= 0 && offset + width <= region.size) return region;
    }
    return undefined;
  };
  return {
    ram: [ramRegion],
    ramRegion,
    readMmio(address, width) {
      const region = find(address, width);
      return region === undefined ? undefined : region.read(address - region.base, width);
    },
    writeMmio(address, width, value) {
      const region = find(address, width);
      return region === undefined ? false : region.write(address - region.base, width, value);
    },
    load(address, data) {
      const offset = address - ramBase;
      if (offset < 0 || offset + data.length > ramSizeBytes) throw new RangeError('load outside RAM');
      ramRegion.bytes.set(data, offset);
      const firstPage = offset >>> PAGE_SHIFT;
      const lastPage = (offset + Math.max(data.length, 1) - 1) >>> PAGE_SHIFT;
      ramRegion.dirtyPages.fill(1, firstPage, lastPage + 1);
    },
  };
}
