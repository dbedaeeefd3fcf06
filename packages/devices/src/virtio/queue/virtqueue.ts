import type { GuestMemory } from '@ftvm/core';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_SIZE_MAX, VirtqDescriptorFlag } from '../constants.js';

/**
 * The split virtqueue (virtio 1.2 §2.7), device side. Every access to guest memory goes through
 * `GuestMemory` and is checked first; whatever the driver got wrong (an address outside RAM, a
 * chain that loops, an index that jumped) throws {@link VirtqueueError}, which the transport turns
 * into the spec's answer: DEVICE_NEEDS_RESET and a configuration-change interrupt (§2.1.2).
 *
 * Memory layout (§2.7.2, offsets from each area's base, little-endian, N = queue size):
 *
 *     descriptor table  16·N bytes, aligned 16:  { addr u64, len u32, flags u16, next u16 }[N]
 *     driver area        6+2·N bytes, aligned 2:  flags u16, idx u16, ring u16[N], used_event u16
 *     device area        6+8·N bytes, aligned 4:  flags u16, idx u16, { id u32, len u32 }[N], avail_event u16
 */

/** The guest broke a virtqueue rule; the message says which. Never escapes the transport. */
export class VirtqueueError extends Error {
  override readonly name = 'VirtqueueError';
}

/** Most descriptors an indirect table may hold (QEMU's limit too: 1024). */
export const VIRTQ_INDIRECT_DESCRIPTORS_MAX = 1024;

/** One guest buffer of a descriptor chain, wholly inside RAM (checked). */
export interface GuestBufferSegment {
  readonly address: number;
  readonly lengthBytes: number;
}

/** A descriptor chain taken from the available ring. */
export interface DescriptorChain {
  /** The head descriptor's index, which goes back in the used ring. */
  readonly headIndex: number;
  /** Device-readable buffers, in order (they all precede the writable ones, §2.7.4.2). */
  readonly readable: readonly GuestBufferSegment[];
  /** Device-writable buffers, in order. */
  readonly writable: readonly GuestBufferSegment[];
  readonly readableBytes: number;
  readonly writableBytes: number;
}

/** The saved state of one queue (part of the transport's section). */
export interface VirtqueueState {
  readonly size: number;
  readonly ready: boolean;
  /** Low and high words of the three area addresses, as the driver wrote them. */
  readonly addressWords: readonly number[];
  readonly nextAvailableIndex: number;
  readonly usedIndex: number;
  /** The used index at the last interrupt decision, or null when none was made (event index). */
  readonly signalledUsedIndex: number | null;
}

const DESCRIPTOR_BYTES = 16;

/** Which of the three areas an address register names. */
export const enum VirtqueueArea {
  DescriptorTable = 0,
  Driver = 1,
  Device = 2,
}

function isPowerOfTwo(value: number): boolean {
  return value > 0 && (value & (value - 1)) === 0;
}

/** One split virtqueue of a device. Owned by the transport, used by the device. */
export class SplitVirtqueue {
  /** The queue's number within its device. */
  readonly index: number;
  /** The largest size the device accepts (QueueNumMax). */
  readonly sizeMax: number;

  /** Queue size the driver chose (QueueNum). */
  size: number;
  /** QueueReady. */
  ready = false;
  /** Low/high words of descriptor table, driver area, device area addresses. */
  readonly addressWords = [0, 0, 0, 0, 0, 0];
  /** The next available-ring entry the device will take (`last_avail_idx`), modulo 2^16. */
  nextAvailableIndex = 0;
  /** The device's used-ring index (`used.idx`), modulo 2^16. */
  usedIndex = 0;
  #signalledUsedIndex: number | null = null;

  /** Set by the transport from the negotiated features when the driver sets FEATURES_OK. */
  indirectDescriptors = false;
  eventIndex = false;

  #memory: GuestMemory | undefined;

  constructor(index: number, sizeMax: number) {
    if (!Number.isInteger(sizeMax) || !isPowerOfTwo(sizeMax) || sizeMax > VIRTQ_SIZE_MAX) {
      throw new RangeError(`queue size ${sizeMax} is not a power of two up to ${VIRTQ_SIZE_MAX}`);
    }
    this.index = index;
    this.sizeMax = sizeMax;
    this.size = sizeMax;
  }

  /** Gives the queue guest memory (the transport does this on attach). */
  bind(memory: GuestMemory): void {
    this.#memory = memory;
  }

  /** Back to the reset values (§4.2.2: QueueReady 0; QEMU also restores the size to the maximum). */
  reset(): void {
    this.size = this.sizeMax;
    this.ready = false;
    this.addressWords.fill(0);
    this.nextAvailableIndex = 0;
    this.usedIndex = 0;
    this.#signalledUsedIndex = null;
    this.indirectDescriptors = false;
    this.eventIndex = false;
  }

  /** Guest-physical address of an area (64 bits from two words; beyond 2^32 it is simply not RAM). */
  areaAddress(area: VirtqueueArea): number {
    return this.addressWords[area * 2]! + this.addressWords[area * 2 + 1]! * 2 ** 32;
  }

  /**
   * Checks the layout the driver set up, as it sets QueueReady (§2.7.2 alignment, sizes; every
   * area inside RAM), and starts the rings at index 0.
   */
  makeReady(): void {
    if (!isPowerOfTwo(this.size) || this.size > this.sizeMax) {
      throw new VirtqueueError(
        `queue ${this.index}: size ${this.size} is not a power of two up to ${this.sizeMax}`,
      );
    }
    const areas: [VirtqueueArea, number, number, string][] = [
      [VirtqueueArea.DescriptorTable, DESCRIPTOR_BYTES * this.size, 16, 'descriptor table'],
      [VirtqueueArea.Driver, 6 + 2 * this.size, 2, 'driver area'],
      [VirtqueueArea.Device, 6 + 8 * this.size, 4, 'device area'],
    ];
    for (const [area, lengthBytes, alignment, what] of areas) {
      const address = this.areaAddress(area);
      if (address % alignment !== 0 || !this.#requireMemory().contains(address, lengthBytes)) {
        throw new VirtqueueError(
          `queue ${this.index}: ${what} at 0x${address.toString(16)} is misaligned or not in RAM`,
        );
      }
    }
    this.ready = true;
    this.nextAvailableIndex = 0;
    this.usedIndex = 0;
    this.#signalledUsedIndex = null;
  }

  /**
   * Takes the next descriptor chain the driver made available, or null when there is none. With
   * the event index, also tells the driver (avail_event) to notify as soon as it adds another.
   */
  popAvailable(): DescriptorChain | null {
    this.#requireReady();
    const driverArea = this.areaAddress(VirtqueueArea.Driver);
    const availableIndex = this.#readU16(driverArea + 2);
    const pending = (availableIndex - this.nextAvailableIndex) & 0xffff;
    if (pending > this.size) {
      throw new VirtqueueError(
        `queue ${this.index}: available index moved from ${this.nextAvailableIndex} to ${availableIndex}, more than the queue size`,
      );
    }
    let chain: DescriptorChain | null = null;
    if (pending > 0) {
      const headIndex = this.#readU16(driverArea + 4 + 2 * (this.nextAvailableIndex % this.size));
      chain = this.#walkChain(headIndex);
      this.nextAvailableIndex = (this.nextAvailableIndex + 1) & 0xffff;
    }
    if (this.eventIndex) {
      this.#writeU16(this.areaAddress(VirtqueueArea.Device) + 4 + 8 * this.size, this.nextAvailableIndex);
    }
    return chain;
  }

  /** Puts the chain just popped back (the device could not use it yet, e.g. a receive buffer too small). */
  undoPop(): void {
    this.nextAvailableIndex = (this.nextAvailableIndex - 1) & 0xffff;
    if (this.eventIndex && this.ready) {
      this.#writeU16(this.areaAddress(VirtqueueArea.Device) + 4 + 8 * this.size, this.nextAvailableIndex);
    }
  }

  /** Returns a chain to the driver through the used ring, with how many bytes the device wrote. */
  pushUsed(headIndex: number, writtenBytes: number): void {
    this.#requireReady();
    const deviceArea = this.areaAddress(VirtqueueArea.Device);
    const slot = deviceArea + 4 + 8 * (this.usedIndex % this.size);
    this.#writeU32(slot, headIndex);
    this.#writeU32(slot + 4, writtenBytes >>> 0);
    this.usedIndex = (this.usedIndex + 1) & 0xffff;
    this.#writeU16(deviceArea + 2, this.usedIndex);
  }

  /**
   * Whether the driver wants an interrupt for the used buffers pushed since the last decision:
   * `used_event` with the event index (§2.7.10, the `vring_need_event` test), else the
   * NO_INTERRUPT flag (§2.7.7).
   */
  needsInterrupt(): boolean {
    this.#requireReady();
    const driverArea = this.areaAddress(VirtqueueArea.Driver);
    if (!this.eventIndex) return (this.#readU16(driverArea) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    const previous = this.#signalledUsedIndex;
    const current = this.usedIndex;
    this.#signalledUsedIndex = current;
    if (previous === null) return true;
    const usedEvent = this.#readU16(driverArea + 4 + 2 * this.size);
    return ((current - usedEvent - 1) & 0xffff) < ((current - previous) & 0xffff);
  }

  /**
   * Copies the chain's readable bytes out of guest memory: at most `limitBytes`, from byte
   * `startOffset` of the readable part on (a request's payload after its header, without copying
   * the whole chain twice).
   */
  readReadable(chain: DescriptorChain, limitBytes = chain.readableBytes, startOffset = 0): Uint8Array {
    const memory = this.#requireMemory();
    const start = Math.min(Math.max(startOffset, 0), chain.readableBytes);
    const total = Math.min(limitBytes, chain.readableBytes - start);
    const bytes = new Uint8Array(total);
    let skip = start;
    let offset = 0;
    for (const segment of chain.readable) {
      if (offset >= total) break;
      if (skip >= segment.lengthBytes) {
        skip -= segment.lengthBytes;
        continue;
      }
      const length = Math.min(segment.lengthBytes - skip, total - offset);
      bytes.set(memory.read(segment.address + skip, length), offset);
      offset += length;
      skip = 0;
    }
    return bytes;
  }

  /** Writes `data` into the chain's writable buffers from byte `startOffset` on; returns bytes written. */
  writeWritable(chain: DescriptorChain, data: Uint8Array, startOffset = 0): number {
    const memory = this.#requireMemory();
    let skip = startOffset;
    let written = 0;
    for (const segment of chain.writable) {
      if (written >= data.length) break;
      if (skip >= segment.lengthBytes) {
        skip -= segment.lengthBytes;
        continue;
      }
      const length = Math.min(segment.lengthBytes - skip, data.length - written);
      memory.write(segment.address + skip, data.subarray(written, written + length));
      written += length;
      skip = 0;
    }
    return written;
  }

  saveState(): VirtqueueState {
    return {
      size: this.size,
      ready: this.ready,
      addressWords: [...this.addressWords],
      nextAvailableIndex: this.nextAvailableIndex,
      usedIndex: this.usedIndex,
      signalledUsedIndex: this.#signalledUsedIndex,
    };
  }

  /** Restores a checked state (the transport validates the fields). */
  restoreState(state: VirtqueueState): void {
    this.size = state.size;
    this.ready = state.ready;
    state.addressWords.forEach((word, i) => {
      this.addressWords[i] = word;
    });
    this.nextAvailableIndex = state.nextAvailableIndex;
    this.usedIndex = state.usedIndex;
    this.#signalledUsedIndex = state.signalledUsedIndex;
  }

  /**
   * Follows a chain from `headIndex` (§2.7.5), through at most one indirect table (§2.7.5.3). The
   * walk is bounded by the table it is in, so a loop ends in an error, not a hang.
   */
  #walkChain(headIndex: number): DescriptorChain {
    const readable: GuestBufferSegment[] = [];
    const writable: GuestBufferSegment[] = [];
    let readableBytes = 0;
    let writableBytes = 0;
    let table = this.areaAddress(VirtqueueArea.DescriptorTable);
    let tableSize = this.size;
    let index = headIndex;
    let visited = 0;
    let indirect = false;
    for (;;) {
      if (index >= tableSize) {
        throw new VirtqueueError(
          `queue ${this.index}: descriptor index ${index} is past the table (${tableSize})`,
        );
      }
      if (++visited > tableSize) throw new VirtqueueError(`queue ${this.index}: descriptor chain loops`);
      const entry = table + DESCRIPTOR_BYTES * index;
      const address = this.#readU32(entry) + this.#readU32(entry + 4) * 2 ** 32;
      const lengthBytes = this.#readU32(entry + 8);
      const flags = this.#readU16(entry + 12);
      const next = this.#readU16(entry + 14);
      if (flags & VirtqDescriptorFlag.indirect) {
        if (!this.indirectDescriptors)
          throw new VirtqueueError(`queue ${this.index}: indirect descriptor not negotiated`);
        if (indirect)
          throw new VirtqueueError(`queue ${this.index}: indirect descriptor inside an indirect table`);
        if (flags & VirtqDescriptorFlag.next)
          throw new VirtqueueError(`queue ${this.index}: indirect descriptor with NEXT`);
        const count = lengthBytes / DESCRIPTOR_BYTES;
        if (!Number.isInteger(count) || count === 0 || count > VIRTQ_INDIRECT_DESCRIPTORS_MAX) {
          throw new VirtqueueError(`queue ${this.index}: indirect table of ${lengthBytes} bytes`);
        }
        // No alignment: §2.7.5.3 asks none of an indirect table (Linux's come from kmalloc, 8-byte
        // aligned on rv32), and QEMU checks none.
        if (!this.#requireMemory().contains(address, lengthBytes)) {
          throw new VirtqueueError(
            `queue ${this.index}: indirect table at 0x${address.toString(16)} is not in RAM`,
          );
        }
        table = address;
        tableSize = count;
        index = 0;
        visited = 0;
        indirect = true;
        continue;
      }
      if (!this.#requireMemory().contains(address, lengthBytes)) {
        throw new VirtqueueError(
          `queue ${this.index}: buffer 0x${address.toString(16)}+${lengthBytes} is not in RAM`,
        );
      }
      if (flags & VirtqDescriptorFlag.write) {
        writable.push({ address, lengthBytes });
        writableBytes += lengthBytes;
      } else {
        if (writable.length > 0) {
          throw new VirtqueueError(`queue ${this.index}: device-readable buffer after a writable one`);
        }
        readable.push({ address, lengthBytes });
        readableBytes += lengthBytes;
      }
      if (!(flags & VirtqDescriptorFlag.next)) break;
      index = next;
    }
    return { headIndex, readable, writable, readableBytes, writableBytes };
  }

  #requireMemory(): GuestMemory {
    if (this.#memory === undefined)
      throw new VirtqueueError('virtqueue used before the transport was attached');
    return this.#memory;
  }

  #requireReady(): void {
    if (!this.ready) throw new VirtqueueError(`queue ${this.index} is not ready`);
  }

  #check(address: number, lengthBytes: number): GuestMemory {
    const memory = this.#requireMemory();
    if (!memory.contains(address, lengthBytes)) {
      throw new VirtqueueError(`queue ${this.index}: ring access at 0x${address.toString(16)} is not in RAM`);
    }
    return memory;
  }

  #readU16(address: number): number {
    return this.#check(address, 2).readU16(address);
  }

  #readU32(address: number): number {
    return this.#check(address, 4).readU32(address);
  }

  #writeU16(address: number, value: number): void {
    this.#check(address, 2).writeU16(address, value & 0xffff);
  }

  #writeU32(address: number, value: number): void {
    this.#check(address, 4).writeU32(address, value >>> 0);
  }
}
