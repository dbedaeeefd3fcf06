import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
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

/** Reads an input file; a missing or unreadable one is a sysexits "no input" failure (66). */
export function readInputFile(path: string, what = 'file'): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw noInput(path, what, error);
  }
}

/** Checks that an input file exists and is a regular file (66 when it is not). */
export function checkInputFile(path: string, what = 'file'): void {
  try {
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
  } catch (error) {
    throw noInput(path, what, error);
  }
}

function noInput(path: string, what: string, error: unknown): FtvmError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a directory'
          : ((error as Error).message ?? String(error));
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
