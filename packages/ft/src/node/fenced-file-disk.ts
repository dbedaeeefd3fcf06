import { type FileHandle, open } from 'node:fs/promises';
import { HostIoError } from '@ftvm/core';
import type { BlockBackend } from '@ftvm/devices';
import { FileBlockBackend } from '@ftvm/devices/node';

/** The fence file's one record: the epoch in decimal, padded to this many bytes (one write). */
const FENCE_RECORD_BYTES = 24;

/**
 * A disk image on storage several processes (or machines) reach, fenced by epoch: the networked
 * deployment's shared disk, as the paper's VMFS. Beside the image, a fence file holds the highest
 * epoch that went live on it; a write from an older epoch is refused, so a primary that was paused
 * and resumes after its backup went live cannot overwrite what the new primary wrote.
 *
 * The fence is read before each write (one positioned read of an open file): a write racing a
 * go-live by less than that read can still land (the paper closes the window with VMFS's on-disk
 * locks; a file system shared over the network gives no stronger primitive that every one of them
 * has). It is written in place with one positioned write of a fixed-size record.
 */
export class FencedFileDisk implements BlockBackend {
  readonly readOnly = false;
  readonly #file: FileBlockBackend;
  readonly #fence: FileHandle;
  readonly #fencePath: string;
  /** The last fence move under way (writes wait for it). */
  #fencing: Promise<void> = Promise.resolve();
  #epoch: number;

  private constructor(file: FileBlockBackend, fence: FileHandle, fencePath: string, epoch: number) {
    this.#file = file;
    this.#fence = fence;
    this.#fencePath = fencePath;
    this.#epoch = epoch;
  }

  /** Opens the image at `path` (it must exist) for a writer of `epoch`; the fence is `path + '.fence'`. */
  static async open(path: string, epoch: number): Promise<FencedFileDisk> {
    const file = await FileBlockBackend.open(path);
    const fencePath = `${path}.fence`;
    let fence: FileHandle;
    try {
      // Created empty when missing ('a' never truncates one another process just made), then
      // opened for positioned reads and writes ('r+': Linux ignores positions in append mode).
      await (await open(fencePath, 'a')).close();
      fence = await open(fencePath, 'r+');
    } catch (error) {
      await file.close();
      throw new HostIoError(`cannot open the disk fence ${fencePath}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return new FencedFileDisk(file, fence, fencePath, epoch);
  }

  get sizeBytes(): number {
    return this.#file.sizeBytes;
  }

  /** The highest epoch that went live on this disk (0 when none did). */
  async fenceEpoch(): Promise<number> {
    const record = Buffer.alloc(FENCE_RECORD_BYTES);
    const { bytesRead } = await this.#fence.read(record, 0, FENCE_RECORD_BYTES, 0);
    const text = record.subarray(0, bytesRead).toString('latin1').trim();
    if (text === '') return 0;
    const epoch = Number(text);
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new HostIoError(`the disk fence ${this.#fencePath} holds ${JSON.stringify(text)}, not an epoch`);
    }
    return epoch;
  }

  /**
   * This writer now writes for `epoch` and fences out every older one (before go-live reissues
   * writes). Its own writes wait until the fence is on the disk, so none of them can land while
   * the old epoch may still write.
   */
  fence(epoch: number): Promise<void> {
    this.#epoch = Math.max(this.#epoch, epoch);
    const fencing = this.#fencing.then(async () => {
      if ((await this.fenceEpoch()) >= epoch) return;
      const record = Buffer.from(`${String(epoch).padEnd(FENCE_RECORD_BYTES - 1, ' ')}\n`, 'latin1');
      await this.#fence.write(record, 0, FENCE_RECORD_BYTES, 0);
      await this.#fence.datasync();
    });
    // A failed fence is the caller's to report; later writes are refused by the old fence anyway.
    this.#fencing = fencing.catch(() => {});
    return fencing;
  }

  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    return this.#file.read(offset, lengthBytes);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    await this.#fencing;
    const fence = await this.fenceEpoch();
    if (fence > this.#epoch) {
      throw new HostIoError(`a write from epoch ${this.#epoch} after epoch ${fence} went live`);
    }
    await this.#file.write(offset, data);
  }

  flush(): Promise<void> {
    return this.#file.flush();
  }

  async close(): Promise<void> {
    await this.#fence.close();
    await this.#file.close();
  }
}
