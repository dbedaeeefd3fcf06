/**
 * A guest's virtio driver, for tests: it lays out split virtqueues in the harness RAM, negotiates
 * features through the MMIO registers and submits descriptor chains, the way a kernel driver does
 * (virtio 1.2 §3.1.1, §2.7.13). Test support only; not exported from the package.
 */

import { createDeviceHarness, type DeviceHarness } from '../../testing/index.js';
import { VirtioFeature, VirtioStatus, VirtqDescriptorFlag } from '../constants.js';
import { VirtioMmioTransport } from '../transport/mmio-transport.js';
import type { VirtioDevice } from '../transport/virtio-device.js';

export const Reg = {
  magic: 0x000,
  version: 0x004,
  deviceId: 0x008,
  vendorId: 0x00c,
  deviceFeatures: 0x010,
  deviceFeaturesSelect: 0x014,
  driverFeatures: 0x020,
  driverFeaturesSelect: 0x024,
  queueSelect: 0x030,
  queueSizeMax: 0x034,
  queueSize: 0x038,
  queueReady: 0x044,
  queueNotify: 0x050,
  interruptStatus: 0x060,
  interruptAcknowledge: 0x064,
  status: 0x070,
  queueDescriptorLow: 0x080,
  queueDescriptorHigh: 0x084,
  queueDriverLow: 0x090,
  queueDriverHigh: 0x094,
  queueDeviceLow: 0x0a0,
  queueDeviceHigh: 0x0a4,
  configGeneration: 0x0fc,
  config: 0x100,
} as const;

/** One buffer of a chain the test submits. */
export type GuestBuffer =
  | { readonly readable: Uint8Array }
  | { readonly readableBytes: number; readonly address: number }
  | { readonly writableBytes: number; readonly address?: number };

/** A submitted chain: its head and where each buffer went in guest RAM. */
export interface SubmittedChain {
  readonly headIndex: number;
  readonly addresses: readonly number[];
}

export interface UsedElement {
  readonly id: number;
  readonly lengthBytes: number;
}

/** The guest side of one split virtqueue. */
export class GuestQueue {
  readonly index: number;
  readonly size: number;
  readonly descriptorTable: number;
  readonly driverArea: number;
  readonly deviceArea: number;
  availableIndex = 0;
  lastSeenUsedIndex = 0;
  readonly #free: number[];

  constructor(index: number, size: number, descriptorTable: number, driverArea: number, deviceArea: number) {
    this.index = index;
    this.size = size;
    this.descriptorTable = descriptorTable;
    this.driverArea = driverArea;
    this.deviceArea = deviceArea;
    this.#free = Array.from({ length: size }, (_, i) => i);
  }

  takeDescriptor(): number {
    const index = this.#free.shift();
    if (index === undefined) throw new Error(`queue ${this.index}: no free descriptor`);
    return index;
  }

  freeDescriptor(index: number): void {
    this.#free.push(index);
  }
}

export interface InitializeOptions {
  /** Features to accept (default: every offered one). */
  readonly features?: bigint;
  /** Queue sizes (default: each queue's maximum, at most 16). */
  readonly queueSizes?: readonly number[];
}

export class GuestDriver {
  readonly harness: DeviceHarness<VirtioMmioTransport>;
  readonly queues: GuestQueue[] = [];
  #nextFree: number;
  readonly #end: number;

  constructor(harness: DeviceHarness<VirtioMmioTransport>) {
    this.harness = harness;
    const region = harness.env.memory.region;
    this.#nextFree = region.base;
    this.#end = region.base + region.size;
  }

  get memory() {
    return this.harness.env.memory;
  }

  read(offset: number): number {
    return this.harness.read(offset, 4);
  }

  write(offset: number, value: number): void {
    this.harness.write(offset, value, 4);
  }

  /** Bump allocation in guest RAM. */
  allocate(lengthBytes: number, alignment = 16): number {
    const address = Math.ceil(this.#nextFree / alignment) * alignment;
    if (address + lengthBytes > this.#end) throw new Error('test guest RAM exhausted');
    this.#nextFree = address + lengthBytes;
    return address;
  }

  offeredFeatures(): bigint {
    this.write(Reg.deviceFeaturesSelect, 0);
    const low = this.read(Reg.deviceFeatures);
    this.write(Reg.deviceFeaturesSelect, 1);
    const high = this.read(Reg.deviceFeatures);
    return BigInt(low) | (BigInt(high) << 32n);
  }

  writeDriverFeatures(features: bigint): void {
    this.write(Reg.driverFeaturesSelect, 0);
    this.write(Reg.driverFeatures, Number(features & 0xffff_ffffn));
    this.write(Reg.driverFeaturesSelect, 1);
    this.write(Reg.driverFeatures, Number((features >> 32n) & 0xffff_ffffn));
  }

  /** §3.1.1 in full; returns the status read back at the end. */
  initialize(options: InitializeOptions = {}): number {
    this.write(Reg.status, 0);
    this.write(Reg.status, VirtioStatus.acknowledge);
    this.write(Reg.status, VirtioStatus.acknowledge | VirtioStatus.driver);
    this.writeDriverFeatures(options.features ?? this.offeredFeatures());
    this.write(Reg.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOk);
    if (!(this.read(Reg.status) & VirtioStatus.featuresOk)) return this.read(Reg.status);
    const queueCount = this.harness.device.device?.queueSizesMax.length ?? 0;
    for (let index = 0; index < queueCount; index++) {
      this.write(Reg.queueSelect, index);
      const sizeMax = this.read(Reg.queueSizeMax);
      this.setUpQueue(index, options.queueSizes?.[index] ?? Math.min(16, sizeMax));
    }
    this.write(
      Reg.status,
      VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOk | VirtioStatus.driverOk,
    );
    return this.read(Reg.status);
  }

  setUpQueue(index: number, size: number): GuestQueue {
    const descriptorTable = this.allocate(16 * size, 16);
    const driverArea = this.allocate(6 + 2 * size, 2);
    const deviceArea = this.allocate(6 + 8 * size, 4);
    const queue = new GuestQueue(index, size, descriptorTable, driverArea, deviceArea);
    this.write(Reg.queueSelect, index);
    this.write(Reg.queueSize, size);
    this.write(Reg.queueDescriptorLow, descriptorTable);
    this.write(Reg.queueDescriptorHigh, 0);
    this.write(Reg.queueDriverLow, driverArea);
    this.write(Reg.queueDriverHigh, 0);
    this.write(Reg.queueDeviceLow, deviceArea);
    this.write(Reg.queueDeviceHigh, 0);
    this.write(Reg.queueReady, 1);
    this.queues[index] = queue;
    return queue;
  }

  #writeDescriptor(
    table: number,
    index: number,
    address: number,
    length: number,
    flags: number,
    next: number,
  ): void {
    const entry = table + 16 * index;
    this.memory.writeU32(entry, address);
    this.memory.writeU32(entry + 4, 0);
    this.memory.writeU32(entry + 8, length);
    this.memory.writeU16(entry + 12, flags);
    this.memory.writeU16(entry + 14, next);
  }

  /** Puts a chain of `buffers` on queue `queueIndex` (optionally as one indirect table) and makes it available. */
  submit(
    queueIndex: number,
    buffers: readonly GuestBuffer[],
    options: { indirect?: boolean; notify?: boolean } = {},
  ): SubmittedChain {
    const queue = this.queues[queueIndex]!;
    const addresses = buffers.map((buffer) => {
      if ('readable' in buffer) {
        const address = this.allocate(Math.max(1, buffer.readable.length));
        this.memory.write(address, buffer.readable);
        return address;
      }
      if ('readableBytes' in buffer) return buffer.address;
      return buffer.address ?? this.allocate(Math.max(1, buffer.writableBytes));
    });
    const flagsOf = (buffer: GuestBuffer) => ('writableBytes' in buffer ? VirtqDescriptorFlag.write : 0);
    const lengthOf = (buffer: GuestBuffer) =>
      'readable' in buffer
        ? buffer.readable.length
        : 'readableBytes' in buffer
          ? buffer.readableBytes
          : buffer.writableBytes;
    let headIndex: number;
    if (options.indirect) {
      // 8 bytes off a 16-byte boundary, as Linux's kmalloc'd tables often are on rv32: the spec
      // asks no alignment of an indirect table.
      const table = this.allocate(16 * buffers.length + 8, 16) + 8;
      buffers.forEach((buffer, i) => {
        const last = i === buffers.length - 1;
        this.#writeDescriptor(
          table,
          i,
          addresses[i]!,
          lengthOf(buffer),
          flagsOf(buffer) | (last ? 0 : VirtqDescriptorFlag.next),
          last ? 0 : i + 1,
        );
      });
      headIndex = queue.takeDescriptor();
      this.#writeDescriptor(
        queue.descriptorTable,
        headIndex,
        table,
        16 * buffers.length,
        VirtqDescriptorFlag.indirect,
        0,
      );
    } else {
      const indices = buffers.map(() => queue.takeDescriptor());
      buffers.forEach((buffer, i) => {
        const last = i === buffers.length - 1;
        this.#writeDescriptor(
          queue.descriptorTable,
          indices[i]!,
          addresses[i]!,
          lengthOf(buffer),
          flagsOf(buffer) | (last ? 0 : VirtqDescriptorFlag.next),
          last ? 0 : indices[i + 1]!,
        );
      });
      headIndex = indices[0]!;
    }
    this.makeAvailable(queueIndex, headIndex);
    if (options.notify ?? true) this.notify(queueIndex);
    return { headIndex, addresses };
  }

  /** Adds `headIndex` to the available ring. */
  makeAvailable(queueIndex: number, headIndex: number): void {
    const queue = this.queues[queueIndex]!;
    this.memory.writeU16(queue.driverArea + 4 + 2 * (queue.availableIndex % queue.size), headIndex);
    queue.availableIndex = (queue.availableIndex + 1) & 0xffff;
    this.memory.writeU16(queue.driverArea + 2, queue.availableIndex);
  }

  notify(queueIndex: number): void {
    this.write(Reg.queueNotify, queueIndex);
  }

  /** The used elements the device returned since the last call. */
  takeUsed(queueIndex: number): UsedElement[] {
    const queue = this.queues[queueIndex]!;
    const usedIndex = this.memory.readU16(queue.deviceArea + 2);
    const elements: UsedElement[] = [];
    while (queue.lastSeenUsedIndex !== usedIndex) {
      const slot = queue.deviceArea + 4 + 8 * (queue.lastSeenUsedIndex % queue.size);
      elements.push({ id: this.memory.readU32(slot), lengthBytes: this.memory.readU32(slot + 4) });
      queue.lastSeenUsedIndex = (queue.lastSeenUsedIndex + 1) & 0xffff;
    }
    return elements;
  }

  /** Acknowledges every pending interrupt; returns what InterruptStatus held. */
  acknowledgeInterrupts(): number {
    const status = this.read(Reg.interruptStatus);
    this.write(Reg.interruptAcknowledge, status);
    return status;
  }
}

/** Every transport feature and the device's, as a driver that knows them all would accept. */
export const VERSION_1 = 1n << VirtioFeature.version1;

/** A transport with `device` on the test harness (slot 0 of `virt`, 256 KiB of RAM), and a guest driver for it. */
export interface VirtioRig<D extends VirtioDevice> {
  readonly transport: VirtioMmioTransport;
  readonly device: D;
  readonly harness: DeviceHarness<VirtioMmioTransport>;
  readonly driver: GuestDriver;
}

export function createVirtioRig<D extends VirtioDevice>(
  device: D,
  memorySizeBytes = 256 * 1024,
): VirtioRig<D> {
  const transport = new VirtioMmioTransport(device);
  const harness = createDeviceHarness(transport, {
    name: 'virtio0',
    memorySizeBytes,
    placement: { name: 'virtio0', base: 0x1000_1000, irq: 1 },
  });
  return { transport, device, harness, driver: new GuestDriver(harness) };
}
