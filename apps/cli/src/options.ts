import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readSync, type Stats, statSync } from 'node:fs';
import { ConfigError, ExitStatus, FtvmError } from '@ftvm/core';

const SIZE_SUFFIXES: Record<string, number> = { '': 2 ** 20, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

/**
 * Parses a memory size as QEMU's `-m` does: a number with an optional K, M or G suffix (MiB when
 * there is none), e.g. `64M`, `128`, `1G`.
 */
export function parseMemorySize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([BKMG]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new ConfigError(`bad memory size '${text}' (expected e.g. 64M or 1G)`);
  const multiplier = SIZE_SUFFIXES[(match[2] ?? '').toUpperCase()] as number;
  const bytes = Math.round(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ConfigError(`bad memory size '${text}'`);
  if (bytes % 4096 !== 0) throw new ConfigError(`memory size '${text}' is not a multiple of 4 KiB`);
  return bytes;
}

/** How large an input may be, and what to say when it is larger. */
export interface InputSizeLimit {
  readonly maxBytes: number;
  /** The error for a file of `sizeBytes`, more than `maxBytes`. */
  tooLarge(sizeBytes: number): FtvmError;
}

/**
 * Reads an input file: it must be a regular file (a device such as /dev/zero, or a FIFO, would be
 * read without end, or block), and its size is checked against `limit` before a byte is read. A
 * missing, unreadable or irregular one is a sysexits "no input" failure (66).
 */
export function readInputFile(path: string, what = 'file', limit?: InputSizeLimit): Uint8Array {
  // stat, not open: opening a FIFO blocks until something writes to it.
  const sizeBytes = checkInputFile(path, what);
  if (limit && sizeBytes > limit.maxBytes) throw limit.tooLarge(sizeBytes);
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    // The size seen by stat is what is read: a file still growing (a recording being written) is
    // read as it was, and one swapped for a device meanwhile is refused.
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    const bytes = new Uint8Array(sizeBytes);
    let filled = 0;
    while (filled < sizeBytes) {
      const count = readSync(fd, bytes, filled, sizeBytes - filled, null);
      if (count === 0) break;
      filled += count;
    }
    return filled === sizeBytes ? bytes : bytes.subarray(0, filled);
  } catch (error) {
    throw noInput(path, what, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The first `count` bytes of an input file (fewer when it is shorter); check it first. */
export function readInputHead(path: string, count: number, what = 'file'): Uint8Array {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const bytes = new Uint8Array(count);
    return bytes.subarray(0, readSync(fd, bytes, 0, count, 0));
  } catch (error) {
    throw noInput(path, what, error);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Checks that an input file exists and is a regular file (66 when it is not); returns its size. */
export function checkInputFile(path: string, what = 'file'): number {
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch (error) {
    throw noInput(path, what, error);
  }
  if (stats.isDirectory()) throw noInput(path, what, Object.assign(new Error(), { code: 'EISDIR' }));
  if (!stats.isFile()) throw noInput(path, what, Object.assign(new Error(), { code: 'ENOTREG' }));
  return stats.size;
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ENOTREG: 'not a regular file',
};

function noInput(path: string, what: string, error: unknown): FtvmError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = (code && REASONS[code]) ?? ((error as Error).message || String(error));
  return new FtvmError(`cannot read ${what} ${path}: ${reason}`, 'FTVM_IO', ExitStatus.noInput, {
    cause: error,
  });
}

/** The digest a record file names an image or a disk by: `sha256:` and the hex of SHA-256. */
export function bytesDigest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** {@link bytesDigest} of a file, streamed (disks can be large). */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}
