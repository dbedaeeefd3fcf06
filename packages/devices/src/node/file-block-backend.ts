/// <reference types="node" />
import { readSync, writeSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { HostIoError } from '@ftvm/core';
import type { BlockBackend } from '../virtio/block/block-backend.js';

/** Options of {@link FileBlockBackend.open}. */
export interface FileBlockBackendOptions {
  /** Open the image read-only (the device then offers VIRTIO_BLK_F_RO). Default false. */
  readonly readOnly?: boolean;
}

/**
 * A raw disk image file as a virtio-blk backend (Node only: `@ftvm/devices/node`). Byte `n` of the
 * file is byte `n` of the disk; the disk's size is the file's size when opened. `flush` is
 * `fdatasync`. Reads past the end of the file (it shrank under us) give zeros.
 *
 * Reads and writes are synchronous system calls (as Firecracker's default `Sync` block engine):
 * they move data to and from the page cache, where a round trip through libuv's thread pool and
 * a promise cost more than the copy (kv.elf through the gateway: 13–22 % more requests per
 * second). `flush`, which waits for the device, stays on the thread pool. A failure still rejects.
 */
export class FileBlockBackend implements BlockBackend {
  readonly path: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  readonly #handle: FileHandle;
  #closed = false;

  private constructor(path: string, handle: FileHandle, sizeBytes: number, readOnly: boolean) {
    this.path = path;
    this.#handle = handle;
    this.sizeBytes = sizeBytes;
    this.readOnly = readOnly;
  }

  /** Opens an existing image. Throws `HostIoError` (with the system error as `cause`) when it cannot. */
  static async open(path: string, options: FileBlockBackendOptions = {}): Promise<FileBlockBackend> {
    const readOnly = options.readOnly ?? false;
    let handle: FileHandle;
    try {
      handle = await open(path, readOnly ? 'r' : 'r+');
    } catch (error) {
      throw new HostIoError(`cannot open disk image ${path}: ${describe(error)}`, { cause: error });
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new Error('not a regular file');
      return new FileBlockBackend(path, handle, stats.size, readOnly);
    } catch (error) {
      await handle.close().catch(() => {});
      throw new HostIoError(`cannot use disk image ${path}: ${describe(error)}`, { cause: error });
    }
  }

  async read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    this.#checkOpen();
    const buffer = new Uint8Array(lengthBytes);
    let done = 0;
    while (done < lengthBytes) {
      const bytesRead = readSync(this.#handle.fd, buffer, done, lengthBytes - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return buffer;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new HostIoError(`disk image ${this.path} is read-only`);
    this.#checkOpen();
    let done = 0;
    while (done < data.length) {
      done += writeSync(this.#handle.fd, data, done, data.length - done, offset + done);
    }
  }

  /** A closed handle's descriptor number may already belong to another file: never use it. */
  #checkOpen(): void {
    if (this.#closed) throw new HostIoError(`disk image ${this.path} is closed`);
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.#handle.datasync();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
