/**
 * The board: a single-hart RV32 machine laid out like QEMU 7.2's `virt`, so one guest image runs
 * on both (docs/platform.md).
 */

export const TEST_FINISHER_BASE = 0x0010_0000;
export const RTC_BASE = 0x0010_1000;
export const CLINT_BASE = 0x0200_0000;
export const PLIC_BASE = 0x0c00_0000;
export const UART_BASE = 0x1000_0000;
export const VIRTIO_MMIO_BASE = 0x1000_1000;
export const VIRTIO_MMIO_SLOT_BYTES = 0x1000;
export const VIRTIO_MMIO_SLOT_COUNT = 8;
/** Where user-added devices go: QEMU virt's platform bus window. */
export const PLATFORM_BUS_BASE = 0x0400_0000;
export const PLATFORM_BUS_BYTES = 0x0200_0000;

export const UART_IRQ = 10;
export const RTC_IRQ = 11;
/** virtio-mmio slot n uses PLIC source VIRTIO_IRQ_FIRST + n. */
export const VIRTIO_IRQ_FIRST = 1;
/** PLIC sources for platform-bus devices, as QEMU virt numbers them. */
export const PLATFORM_BUS_IRQ_FIRST = 64;
export const PLATFORM_BUS_IRQ_COUNT = 32;

/** CLINT timebase: mtime counts at 10 MHz. */
export const TIMEBASE_FREQUENCY_HZ = 10_000_000;

/** Default guest RAM, as in the reference QEMU command line (docs/platform.md) (`-m 64M`). */
export const DEFAULT_RAM_SIZE_BYTES = 64 * 1024 * 1024;

/** Phandles as QEMU 7.2 virt numbers them for one hart. */
export const PHANDLE_CPU = 1;
export const PHANDLE_CPU_INTERRUPT_CONTROLLER = 2;
export const PHANDLE_PLIC = 3;
export const PHANDLE_TEST_FINISHER = 4;

/**
 * Where the device tree blob goes: as QEMU 7.2 computes it for `-bios none`, the top of RAM
 * (capped at 3 GiB) minus the blob, aligned down to 2 MiB.
 */
export function deviceTreeAddress(ramBase: number, ramSizeBytes: number, blobBytes: number): number {
  const twoMiB = 2 * 1024 * 1024;
  const top = Math.min(ramBase + ramSizeBytes, 0xc000_0000);
  return Math.floor((top - blobBytes) / twoMiB) * twoMiB;
}

/**
 * QEMU's reset vector (in its ROM at 0x1000) leaves these in the registers when it jumps to the
 * kernel: a0 = hart id, a1 = device tree, a2 = its `fw_dynamic_info` block at 0x1028, t0 = entry.
 * We start the hart at the entry with the same registers instead of executing the ROM; the ROM is
 * there to be read (a firmware reads the kernel's address from its `fw_dynamic_info`).
 */
export const QEMU_FW_DYNAMIC_INFO_ADDRESS = 0x1028;

/** QEMU virt's mask ROM: the reset vector and `fw_dynamic_info`, then zeros. Read-only. */
export const BOOT_ROM_BASE = 0x1000;
export const BOOT_ROM_BYTES = 0xf000;

/** `fw_dynamic_info`'s magic ("OSBI"), the version QEMU 7.2 writes, and "next mode S". */
const FW_DYNAMIC_INFO_MAGIC = 0x4942534f;
const FW_DYNAMIC_INFO_VERSION = 2;
const FW_DYNAMIC_INFO_NEXT_MODE_S = 1;

/**
 * The ROM's contents as QEMU 7.2 writes them for a 32-bit hart: the reset vector (auipc t0; addi
 * a2, t0, 0x28; csrr a0, mhartid; lw a1, 32(t0); lw t0, 24(t0); jr t0), the start address and the
 * device tree address as 64-bit words, then `fw_dynamic_info` (magic, version, the kernel's entry,
 * next mode S, options 0, boot hart 0).
 */
export function bootRomBytes(
  startAddress: number,
  deviceTreeAddress: number,
  kernelEntry: number,
): Uint8Array {
  const words = [
    0x0000_0297,
    0x0282_8613,
    0xf140_2573,
    0x0202_a583,
    0x0182_a283,
    0x0002_8067,
    startAddress,
    0,
    deviceTreeAddress,
    0,
    FW_DYNAMIC_INFO_MAGIC,
    FW_DYNAMIC_INFO_VERSION,
    kernelEntry,
    FW_DYNAMIC_INFO_NEXT_MODE_S,
    0,
    0,
  ];
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  for (const [index, word] of words.entries()) view.setUint32(index * 4, word >>> 0, true);
  return bytes;
}
