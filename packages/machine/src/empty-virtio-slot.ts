import type { AccessWidth, Device, DevicePlacement, DeviceTreeNode, StateSection } from '@ftvm/core';
import { SnapshotError } from '@ftvm/core';
import { PHANDLE_PLIC } from './board.js';

const MAGIC_VALUE = 0x74726976; // "virt"
const VERSION_MODERN = 2;
/** QEMU's vendor id for virtio-mmio ("QEMU"), which guests may print. */
const VENDOR_ID_QEMU = 0x554d4551;

/**
 * A virtio-mmio slot with no device behind it (virtio 1.x, 4.2.2: DeviceID 0 means "no device"):
 * guests probe it and move on. Registers other than the identification ones read as zero and
 * ignore writes, as QEMU's transport does with no backend.
 */
export class EmptyVirtioSlot implements Device {
  readonly kind = 'virtio-mmio-empty';
  readonly mmioSize = 0x1000;

  attach(): void {}

  readMmio(offset: number, width: AccessWidth): number {
    if (width !== 4) return 0;
    switch (offset) {
      case 0x000:
        return MAGIC_VALUE;
      case 0x004:
        return VERSION_MODERN;
      case 0x00c:
        return VENDOR_ID_QEMU;
      default:
        return 0;
    }
  }

  writeMmio(): void {}
  applyEvent(): void {}
  reset(): void {}

  saveState(): StateSection {
    return { kind: this.kind, version: 1, state: null };
  }

  restoreState(section: StateSection): void {
    if (section?.kind !== this.kind || section.version !== 1) {
      throw new SnapshotError(
        `virtio slot: cannot restore ${String(section?.kind)} v${String(section?.version)}`,
      );
    }
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    return {
      name: `virtio_mmio@${placement.base.toString(16)}`,
      properties: {
        interrupts: [placement.irq],
        'interrupt-parent': [PHANDLE_PLIC],
        reg: [0, placement.base, 0, this.mmioSize],
        compatible: 'virtio,mmio',
      },
    };
  }
}
