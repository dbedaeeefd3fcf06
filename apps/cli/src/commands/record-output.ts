import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  openSync,
  realpathSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { HostIoError } from '@ftvm/core';

/** Writes `length` bytes of `bytes` from `offset` at the file's position; returns how many it wrote. */
export type WriteBytes = (fd: number, bytes: Uint8Array, offset: number, length: number) => number;

export interface RecordOutputOptions {
  /** The write system call (tests give one that writes short or fails). */
  readonly write?: WriteBytes;
  /** Makes the file's bytes durable (tests give one that fails). */
  readonly fsync?: (fd: number) => void;
}

/** The suffix of a recording still being written: `NAME.XXXXXXXX.partial` beside `NAME`. */
export const PARTIAL_SUFFIX = '.partial';

/** Tries at finding an unused name for the partial file before giving up. */
const PARTIAL_NAME_TRIES = 16;

/** `ENOSPC: no space left on device, write` → `no space left on device (ENOSPC)`: no temporary path. */
export function describeIoError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^([A-Z][A-Z0-9]+): (.*?)(?:, \w+(?: '.*')?)?$/.exec(message);
  return match ? `${match[2]} (${match[1]})` : message;
}

/**
 * The file `ftvm record` writes, such that a file at the output path is always a whole recording.
 *
 * The bytes go to a new file beside it, `NAME.XXXXXXXX.partial`, created exclusively; `commit`
 * makes them durable (fsync) and renames the file to NAME (through a symlink, to the file it names,
 * as writing through it would). A write that writes less is continued; one that fails is a
 * {@link HostIoError} (exit 74) naming NAME, and so is every write after it. `discard` (after an
 * error) removes the partial file. A process killed meanwhile leaves the partial file behind: its
 * whole frames are a recording cut short that `ftvm replay` reads.
 *
 * An output that exists and is not a regular file (`/dev/null`, a FIFO) is written in place:
 * renaming over it would replace the device.
 */
export class RecordOutput {
  private failure: HostIoError | undefined;
  private fd: number | undefined;
  /** The partial file is gone: renamed into place, or removed. */
  private settled = false;

  private constructor(
    /** The path the user named. */
    readonly path: string,
    /** Where the whole recording goes: `path`, through any symlinks. */
    readonly target: string,
    /** The file being written; undefined when writing in place. */
    readonly partialPath: string | undefined,
    fd: number,
    private readonly writeBytes: WriteBytes,
    private readonly fsync: (fd: number) => void,
  ) {
    this.fd = fd;
  }

  static open(path: string, options: RecordOutputOptions = {}): RecordOutput {
    const write = options.write ?? ((fd, bytes, offset, length) => writeSync(fd, bytes, offset, length));
    const fsync = options.fsync ?? fsyncSync;
    let existing: Stats | undefined;
    try {
      existing = statSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw cannotWrite(path, error);
    }
    if (existing?.isDirectory()) throw cannotWrite(path, new Error('is a directory'));
    if (existing && !existing.isFile()) {
      return new RecordOutput(path, path, undefined, openOrFail(path, 'w'), write, fsync);
    }
    const target = existing ? realpathOrFail(path) : path;
    for (let attempt = 0; ; attempt++) {
      const partialPath = join(
        dirname(target),
        `${basename(target)}.${randomBytes(4).toString('hex')}${PARTIAL_SUFFIX}`,
      );
      let fd: number;
      try {
        fd = openSync(partialPath, 'wx', 0o666);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST' && attempt < PARTIAL_NAME_TRIES) continue;
        throw cannotWrite(path, error);
      }
      if (existing) {
        try {
          // The recording replaces the file: it keeps the file's permissions, as overwriting would.
          fchmodSync(fd, existing.mode & 0o7777);
        } catch {
          // A file system without permissions: the new file's defaults will do.
        }
      }
      return new RecordOutput(path, target, partialPath, fd, write, fsync);
    }
  }

  /** Writes all of `bytes`, continuing short writes. */
  write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const fd = this.openFd();
      done += this.attempt(() => {
        const written = this.writeBytes(fd, bytes, done, bytes.length - done);
        // A file that takes nothing would be written to forever.
        if (!(written > 0)) throw new Error(`a write of ${bytes.length - done} bytes wrote none`);
        return written;
      });
    }
  }

  /** Makes the recording durable and puts it at its path. */
  commit(): void {
    const fd = this.openFd();
    if (this.partialPath === undefined) {
      this.fd = undefined;
      this.attempt(() => closeSync(fd));
      this.settled = true;
      return;
    }
    this.attempt(() => this.fsync(fd));
    this.fd = undefined;
    this.attempt(() => closeSync(fd));
    const partialPath = this.partialPath;
    this.attempt(() => renameSync(partialPath, this.target));
    this.settled = true;
    syncDirectory(dirname(this.target));
  }

  /** Abandons the recording: closes and removes the partial file. Does nothing after `commit`. */
  discard(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // Already failing: the file is removed next.
      }
      this.fd = undefined;
    }
    if (this.settled || this.partialPath === undefined) return;
    this.settled = true;
    try {
      unlinkSync(this.partialPath);
    } catch {
      // Gone already, or the directory is unwritable: nothing more to do.
    }
  }

  private openFd(): number {
    if (this.failure) throw this.failure;
    if (this.fd === undefined) throw cannotWrite(this.path, new Error('the recording was closed'));
    return this.fd;
  }

  /** Runs one step of writing; its failure fails the output for good. */
  private attempt<T>(step: () => T): T {
    if (this.failure) throw this.failure;
    try {
      return step();
    } catch (error) {
      this.failure = cannotWrite(this.path, error);
      throw this.failure;
    }
  }
}

function cannotWrite(path: string, error: unknown): HostIoError {
  return new HostIoError(`cannot write ${path}: ${describeIoError(error)}`, { cause: error });
}

function openOrFail(path: string, flags: string): number {
  try {
    return openSync(path, flags);
  } catch (error) {
    throw cannotWrite(path, error);
  }
}

function realpathOrFail(path: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    throw cannotWrite(path, error);
  }
}

/** Makes a rename in `directory` durable where the platform allows it (best effort: it is done). */
function syncDirectory(directory: string): void {
  try {
    const fd = openSync(directory, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform or file system can sync a directory; the rename itself is complete.
  }
}
