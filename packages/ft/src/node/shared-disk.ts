import type { BlockBackend } from '@ftvm/devices';

/**
 * A disk in shared memory that several threads see (the in-process deployment's shared storage,
 * as the paper's VMFS), fenced by epoch: each writer holds the epoch it writes for, the disk
 * remembers the highest epoch that went live, and a write from an older epoch is refused. So a
 * primary that was paused and resumes after its backup took over cannot overwrite what the new
 * primary wrote (a late write whose release it believed in).
 *
 * Layout: `data` holds the sectors; `control` (an Int32Array over its own SharedArrayBuffer) holds
 * [0] a lock word and [1] the fence epoch. A write and a fence move each take the lock, so a write
 * either lands before the fence moved or is refused after.
 */
export class SharedMemoryDisk implements BlockBackend {
  readonly readOnly = false;
  readonly #bytes: Uint8Array;
  readonly #control: Int32Array;
  #epoch: number;

  constructor(
    readonly shared: SharedDiskBuffers,
    epoch: number,
  ) {
    this.#bytes = new Uint8Array(shared.data);
    this.#control = new Int32Array(shared.control);
    this.#epoch = epoch;
  }

  /** Fresh buffers for a disk of `sizeBytes`, holding `contents` at its start when given. */
  static create(sizeBytes: number, contents?: Uint8Array): SharedDiskBuffers {
    const data = new SharedArrayBuffer(sizeBytes);
    if (contents) new Uint8Array(data).set(contents.subarray(0, sizeBytes));
    return { data, control: new SharedArrayBuffer(8) };
  }

  get sizeBytes(): number {
    return this.#bytes.length;
  }

  /** The highest epoch that went live on this disk. */
  get fenceEpoch(): number {
    return Atomics.load(this.#control, 1);
  }

  /**
   * This writer now writes for `epoch` and fences out every older one (called when a backup goes
   * live, before it reissues in-flight writes).
   */
  fence(epoch: number): void {
    this.#locked(() => {
      if (epoch > Atomics.load(this.#control, 1)) Atomics.store(this.#control, 1, epoch);
    });
    this.#epoch = Math.max(this.#epoch, epoch);
  }

  async read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    this.#check(offset, lengthBytes);
    return this.#bytes.slice(offset, offset + lengthBytes);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#check(offset, data.length);
    let refused = false;
    this.#locked(() => {
      if (Atomics.load(this.#control, 1) > this.#epoch) refused = true;
      else this.#bytes.set(data, offset);
    });
    if (refused)
      throw new Error(`a write from epoch ${this.#epoch} after epoch ${this.fenceEpoch} went live`);
  }

  async flush(): Promise<void> {}

  #locked(action: () => void): void {
    while (Atomics.compareExchange(this.#control, 0, 0, 1) !== 0) {
      // Another thread holds it for a memory copy: a short wait.
      Atomics.wait(this.#control, 0, 1, 1);
    }
    try {
      action();
    } finally {
      Atomics.store(this.#control, 0, 0);
      Atomics.notify(this.#control, 0, 1);
    }
  }

  #check(offset: number, lengthBytes: number): void {
    if (
      !(
        Number.isSafeInteger(offset) &&
        offset >= 0 &&
        lengthBytes >= 0 &&
        offset + lengthBytes <= this.#bytes.length
      )
    ) {
      throw new RangeError(`${lengthBytes} bytes at ${offset} are outside the disk`);
    }
  }
}

/** The shared memory of a {@link SharedMemoryDisk}: pass it to each thread that uses the disk. */
export interface SharedDiskBuffers {
  readonly data: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
}
