/**
 * An arbiter in a directory on storage that every host mounts: the paper's test-and-set on shared
 * storage, done with files.
 *
 * Layout: `<directory>/<vmId>/epoch-<n>` for every epoch n ≥ 1 the VM has reached, each holding its
 * owner followed by a newline. The VM's record is its highest `epoch-<n>` file.
 *
 * The test-and-set from `e` to `e + 1`: check that `epoch-<e>` exists (or `e` is 0), then create
 * `epoch-<e+1>` with `open(path, 'wx')`, that is O_CREAT|O_EXCL. That creation is the atomic step:
 * of all the hosts that try, the filesystem lets exactly one create the file, and that one is the
 * winner of `e + 1`; the others get EEXIST and lose. Moving from a stale epoch loses too: its
 * successor file exists already. Files are never removed or renamed.
 *
 * What this relies on, and where it holds:
 * - O_CREAT|O_EXCL creation is atomic among every host that uses the directory. It is on POSIX
 *   local filesystems (ext4, xfs, btrfs, tmpfs...) for processes of one host, and on NFS version 3
 *   and later (exclusive CREATE with a verifier; NFSv4 OPEN with EXCLUSIVE4) across hosts. It is
 *   NOT on NFSv2, which has no exclusive create, and may not be on some FUSE filesystems (sshfs,
 *   object-store mounts) or SMB/CIFS mounts: do not use this arbiter there.
 * - A file created by one host is seen by another host's later `readdir`/`open` (NFS close-to-open
 *   consistency gives this after the writer's close; the winner is told it won only after its
 *   close).
 * - The contents are written after the creation, so a reader can find the winner's file empty or
 *   without its final newline for a moment: it then retries for a while (`incompleteReadTimeoutMs`)
 *   and never reports a partial owner. The file and its directory are fsynced before the winner is
 *   told it won, so the move survives a crash of the storage host.
 *
 * The directory itself must exist: it is never created, so that a shared mount that is missing
 * (and would leave an empty local directory) answers `ArbiterUnavailableError` rather than looking
 * like an arbiter that has never seen the VM. Any I/O error answers `ArbiterUnavailableError`.
 */
import type { Dirent } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  type Arbiter,
  type ArbiterRecord,
  type ArbiterResult,
  ArbiterUnavailableError,
  ConfigError,
} from '@ftvm/core';
import { assertValidTestAndSet, assertValidVmId, isValidOwner } from '../validate.js';

/** How long a reader waits by default for a just-created epoch file to get its contents. */
export const FILE_ARBITER_INCOMPLETE_READ_TIMEOUT_MS = 2_000;

export interface FileArbiterOptions {
  /**
   * How long a reader waits for a just-created epoch file (empty, or without its final newline
   * because its writer is mid-write) to be complete before it answers `ArbiterUnavailableError`;
   * default {@link FILE_ARBITER_INCOMPLETE_READ_TIMEOUT_MS}. A writer that crashed between the
   * creation and the write leaves such a file for good: the VM's owner at that epoch is then
   * unknown, and the next move (from that epoch) still works.
   */
  incompleteReadTimeoutMs?: number;
}

const EPOCH_FILE = /^epoch-([1-9][0-9]{0,15})$/;
const UNKNOWN: ArbiterRecord = Object.freeze({ epoch: 0, owner: '' });

/** The test-and-set arbiter in a shared directory; see the file's header for what it relies on. */
export class FileArbiter implements Arbiter {
  /** The arbiter's directory, absolute. */
  readonly directory: string;
  readonly #incompleteReadTimeoutMs: number;

  constructor(directory: string, options: FileArbiterOptions = {}) {
    if (typeof directory !== 'string' || directory.length === 0) {
      throw new ConfigError('FileArbiter needs the path of a directory on shared storage');
    }
    const timeout = options.incompleteReadTimeoutMs ?? FILE_ARBITER_INCOMPLETE_READ_TIMEOUT_MS;
    if (!Number.isFinite(timeout) || timeout < 0) {
      throw new ConfigError(`incompleteReadTimeoutMs must be a non-negative number, not ${timeout}`);
    }
    this.directory = resolve(directory);
    this.#incompleteReadTimeoutMs = timeout;
  }

  async testAndSet(vmId: string, fromEpoch: number, owner: string): Promise<ArbiterResult> {
    assertValidTestAndSet(vmId, fromEpoch, owner);
    const vmDirectory = join(this.directory, vmId);
    try {
      if (fromEpoch === 0) {
        if (await this.#makeVmDirectory(vmDirectory)) await syncDirectory(this.directory);
      } else if (!(await exists(this.#epochPath(vmId, fromEpoch)))) {
        // Not at `fromEpoch` yet (or never will be from here): nothing to move.
        return { won: false, record: await this.read(vmId) };
      }
      const path = this.#epochPath(vmId, fromEpoch + 1);
      let handle: FileHandle;
      try {
        handle = await open(path, 'wx', 0o644); // O_CREAT|O_EXCL: the atomic step
      } catch (error) {
        if (errorCode(error) === 'EEXIST') return { won: false, record: await this.read(vmId) };
        throw error;
      }
      // From here on the epoch is ours. If writing the owner fails, the caller is told the arbiter
      // is unavailable (it must not act as the winner) and readers find the file incomplete.
      try {
        await handle.writeFile(`${owner}\n`, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await syncDirectory(vmDirectory);
      return { won: true, record: { epoch: fromEpoch + 1, owner } };
    } catch (error) {
      throw this.#unavailable(`testAndSet(${vmId}, ${fromEpoch})`, error);
    }
  }

  async read(vmId: string): Promise<ArbiterRecord> {
    assertValidVmId(vmId);
    try {
      let entries: Dirent[];
      try {
        entries = await readdir(join(this.directory, vmId), { withFileTypes: true });
      } catch (error) {
        if (errorCode(error) !== 'ENOENT') throw error;
        await this.#checkDirectory();
        return UNKNOWN;
      }
      let epoch = 0;
      for (const entry of entries) {
        const match = EPOCH_FILE.exec(entry.name);
        if (!match) continue;
        const n = Number(match[1]);
        if (Number.isSafeInteger(n) && n > epoch) epoch = n;
      }
      if (epoch === 0) return UNKNOWN;
      return { epoch, owner: await this.#readOwner(vmId, epoch) };
    } catch (error) {
      throw this.#unavailable(`read(${vmId})`, error);
    }
  }

  /** Nothing to release: every call opens and closes its own files. */
  async close(): Promise<void> {}

  #epochPath(vmId: string, epoch: number): string {
    return join(this.directory, vmId, `epoch-${epoch}`);
  }

  /** Creates the VM's directory; true when this call created it. */
  async #makeVmDirectory(vmDirectory: string): Promise<boolean> {
    try {
      await mkdir(vmDirectory, { mode: 0o755 });
      return true;
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      if (errorCode(error) === 'ENOENT') await this.#checkDirectory();
      throw error;
    }
  }

  /** Throws when the arbiter's directory is missing or not a directory. */
  async #checkDirectory(): Promise<void> {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(this.directory)).isDirectory();
    } catch (error) {
      throw new ArbiterUnavailableError(
        `file arbiter: its directory ${this.directory} is not there (${errorCode(error) ?? String(error)}); is the shared storage mounted?`,
        { cause: error },
      );
    }
    if (!isDirectory) {
      throw new ArbiterUnavailableError(`file arbiter: ${this.directory} is not a directory`);
    }
  }

  /** The owner in `epoch-<epoch>`, waiting while the file is still being written. */
  async #readOwner(vmId: string, epoch: number): Promise<string> {
    const path = this.#epochPath(vmId, epoch);
    const deadline = Date.now() + this.#incompleteReadTimeoutMs;
    let pauseMs = 1;
    for (;;) {
      const text = await readFile(path, 'utf8');
      if (text.endsWith('\n')) {
        const owner = text.slice(0, -1);
        if (!isValidOwner(owner)) {
          throw new ArbiterUnavailableError(`file arbiter: ${path} does not hold a valid owner`);
        }
        return owner;
      }
      // Empty or without its newline: the winner is between its O_EXCL create and its write.
      if (Date.now() >= deadline) {
        throw new ArbiterUnavailableError(
          `file arbiter: ${path} is still incomplete after ${this.#incompleteReadTimeoutMs} ms (its writer may have died mid-write); the owner of epoch ${epoch} is unknown`,
        );
      }
      await sleep(Math.min(pauseMs, Math.max(1, deadline - Date.now())));
      pauseMs = Math.min(pauseMs * 2, 50);
    }
  }

  #unavailable(what: string, error: unknown): unknown {
    if (ArbiterUnavailableError.is(error) || ConfigError.is(error)) return error;
    const code = errorCode(error);
    const detail = error instanceof Error ? error.message : String(error);
    return new ArbiterUnavailableError(
      `file arbiter at ${this.directory}: ${what} failed${code ? ` (${code})` : ''}: ${detail}`,
      { cause: error },
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

/** fsyncs a directory so that a new entry in it survives a crash; a no-op where not supported. */
async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isUnsupported(error)) return;
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!isUnsupported(error)) throw error;
  } finally {
    await handle.close();
  }
}

/** Errors that mean "this filesystem or platform cannot fsync a directory", not a failure. */
function isUnsupported(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'EINVAL' || code === 'EISDIR' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EBADF';
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
