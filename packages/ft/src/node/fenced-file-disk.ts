import { readFile, rename, writeFile } from 'node:fs/promises';
import { HostIoError } from '@ftvm/core';
import type { BlockBackend } from '@ftvm/devices';
import { FileBlockBackend } from '@ftvm/devices/node';

/**
 * A disk image on storage several processes (or machines) reach, fenced by epoch: the networked
 * deployment's shared disk, as the paper's VMFS. Beside the image, a fence file holds the highest
 * epoch that went live on it; a write from an older epoch is refused, so a primary that was paused
 * and resumes after its backup went live cannot overwrite what the new primary wrote.
 *
 * The fence is read before each write: a write racing a go-live by less than that read can still
 * land (the paper closes the window with VMFS's on-disk locks; a file system shared over the
 * network gives no stronger primitive that every one of them has).
 */
export class FencedFileDisk implements BlockBackend {
  readonly readOnly = false;
  readonly #file: FileBlockBackend;
  readonly #fencePath: string;
  #epoch: number;

  private constructor(file: FileBlockBackend, fencePath: string, epoch: number) {
    this.#file = file;
    this.#fencePath = fencePath;
    this.#epoch = epoch;
  }

  /** Opens the image at `path` (it must exist) for a writer of `epoch`; the fence is `path + '.fence'`. */
  static async open(path: string, epoch: number): Promise<FencedFileDisk> {
    return new FencedFileDisk(await FileBlockBackend.open(path), `${path}.fence`, epoch);
  }

  get sizeBytes(): number {
    return this.#file.sizeBytes;
  }

  /** The highest epoch that went live on this disk (0 when none did). */
  async fenceEpoch(): Promise<number> {
    try {
      const text = await readFile(this.#fencePath, 'utf8');
      const epoch = Number(text.trim());
      if (!Number.isSafeInteger(epoch) || epoch < 0) {
        throw new HostIoError(
          `the disk fence ${this.#fencePath} holds ${JSON.stringify(text)}, not an epoch`,
        );
      }
      return epoch;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw error;
    }
  }

  /** This writer now writes for `epoch` and fences out every older one (before go-live reissues writes). */
  async fence(epoch: number): Promise<void> {
    this.#epoch = Math.max(this.#epoch, epoch);
    if ((await this.fenceEpoch()) >= epoch) return;
    const temporary = `${this.#fencePath}.${epoch}.tmp`;
    await writeFile(temporary, `${epoch}\n`);
    await rename(temporary, this.#fencePath);
  }

  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    return this.#file.read(offset, lengthBytes);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const fence = await this.fenceEpoch();
    if (fence > this.#epoch) {
      throw new HostIoError(`a write from epoch ${this.#epoch} after epoch ${fence} went live`);
    }
    await this.#file.write(offset, data);
  }

  flush(): Promise<void> {
    return this.#file.flush();
  }

  close(): Promise<void> {
    return this.#file.close();
  }
}
