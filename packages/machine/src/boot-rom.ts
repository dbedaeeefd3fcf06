import type { AccessWidth, Device, StateSection } from '@ftvm/core';
import { BOOT_ROM_BYTES, bootRomBytes } from './board.js';
import type { LoadedImage } from './image.js';

/**
 * The board's mask ROM at 0x1000 (QEMU virt's `mrom`): the reset vector and its `fw_dynamic_info`,
 * for a firmware to read. Its bytes follow from the loaded image and the device tree's address, so
 * it has no state of its own (a restored snapshot brings the image); stores are ignored, as on QEMU.
 */
export class BootRom implements Device {
  readonly kind = 'mrom';
  readonly mmioSize = BOOT_ROM_BYTES;
  private bytes: Uint8Array = new Uint8Array(0);
  private bytesFor: LoadedImage | undefined;

  constructor(
    private readonly image: () => LoadedImage | undefined,
    private readonly deviceTreeAddress: number,
  ) {}

  attach(): void {}

  readMmio(offset: number, width: AccessWidth): number {
    const image = this.image();
    if (image !== this.bytesFor) {
      this.bytesFor = image;
      this.bytes = image
        ? bootRomBytes(image.entry, this.deviceTreeAddress, image.kernelEntry ?? image.entry)
        : new Uint8Array(0);
    }
    let value = 0;
    for (let index = width - 1; index >= 0; index--) value = (value << 8) | (this.bytes[offset + index] ?? 0);
    return value >>> 0;
  }

  writeMmio(): void {}
  applyEvent(): void {}
  reset(): void {}
  saveState(): StateSection {
    return { kind: this.kind, version: 1, state: null };
  }
  restoreState(): void {}
}
