import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, open, readFile, rename, rm, rmdir, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The hosts' data directories on tmpfs mounts of their own, so that the nemesis can fill one up
 * (`disk-full`): a filler file written until ENOSPC, deleted when the fault ends. Mounting needs
 * root (or CAP_SYS_ADMIN); {@link tmpfsSkipReason} says why it cannot be done here.
 *
 * Size: a host's data directory holds, per VM with `--disk-mode separate`, its own copy of the
 * disk — a sparse file of the disk's size (16 MiB in the nemesis) of which only what the guest
 * wrote (kv's store: under 1 MiB) or what a clone copied (1 MiB pieces that are not all zeros)
 * takes space — and a one-block fence file. 64 MiB holds the whole disk with room to spare.
 */
export const DATA_DIR_TMPFS_BYTES = 64 << 20;

/** The filler's name in a full data directory. */
export const FILLER = 'nemesis-disk-full.filler';

/** Runs a command; rejects with its stderr. */
function run(command: string, args: readonly string[]): Promise<void> {
  return new Promise((done, fail) => {
    execFile(command, [...args], { timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error) fail(new Error(`${command} ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else done();
    });
  });
}

async function mountTmpfs(dir: string, bytes: number): Promise<void> {
  await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'ftvm-nemesis', dir]);
}

/** Whether `dir` is a mount point now (from /proc/self/mounts; its octal escapes decoded). */
export async function isMounted(dir: string): Promise<boolean> {
  const target = resolve(dir);
  const table = await readFile('/proc/self/mounts', 'utf8').catch(() => '');
  return table
    .split('\n')
    .map((line) =>
      line
        .split(' ')[1]
        ?.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))),
    )
    .includes(target);
}

/** Unmounts `dir`; a busy one lazily (it leaves the namespace at once, freed when its last user goes). */
async function unmount(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await run('umount', [dir]);
      return;
    } catch (error) {
      if (!(await isMounted(dir))) return;
      if (attempt === 4) {
        await run('umount', ['-l', dir]).catch(() => {
          throw error;
        });
        return;
      }
      await new Promise((done) => setTimeout(done, 200));
    }
  }
}

/** Unmounts `dir` if it is a mount point (a last resort on the way out; lazily if busy). */
export async function unmountIfMounted(dir: string): Promise<void> {
  if (await isMounted(dir)) await unmount(dir);
}

/**
 * Why the data directories cannot be tmpfs mounts here (so `disk-full` is not injected), or
 * undefined. Tries one mount, as the only sure test (a container may refuse it even to root).
 */
export async function tmpfsSkipReason(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `tmpfs mounts are a Linux feature (this is ${process.platform})`;
  const uid = process.getuid?.();
  if (uid !== 0) return `mounting a tmpfs for each host's data directory needs root (running as uid ${uid})`;
  const probe = await mkdtemp(join(tmpdir(), 'ftvm-tmpfs-probe-'));
  let mounted = false;
  try {
    await mountTmpfs(probe, 1 << 20);
    mounted = true;
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed (${(error as Error).message})`;
  } finally {
    if (mounted) await unmount(probe).catch(() => {});
    // Never recursive: if the probe were still mounted, its contents are not ours to delete.
    await rmdir(probe).catch(() => {});
  }
}

/** What filling a data directory did. */
export interface Filled {
  readonly fillerBytes: number;
  /** Free bytes left once the filler hit ENOSPC (0, or a few bytes a file's tail cannot take). */
  readonly freeBytes: number;
}

/** The tmpfs mounts of one cluster's data directories. */
export class TmpfsDataDirs {
  readonly #mounted = new Set<string>();

  /** Mounts a tmpfs of {@link DATA_DIR_TMPFS_BYTES} on `dir` (created). */
  async mount(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await mountTmpfs(dir, DATA_DIR_TMPFS_BYTES);
    this.#mounted.add(dir);
  }

  /** Fills `dir`'s tmpfs up with a filler file: large pieces, then single pages, until ENOSPC. */
  async fill(dir: string): Promise<Filled> {
    if (!this.#mounted.has(dir)) throw new Error(`${dir} is not a tmpfs data directory of the nemesis`);
    const handle = await open(join(dir, FILLER), 'w');
    let fillerBytes = 0;
    try {
      for (const size of [1 << 20, 4096, 512]) {
        const piece = Buffer.alloc(size, 0xa5);
        for (;;) {
          try {
            const { bytesWritten } = await handle.write(piece, 0, size);
            fillerBytes += bytesWritten;
            if (bytesWritten < size) break;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw error;
          }
        }
      }
    } finally {
      await handle.close();
    }
    const stats = await statfs(dir);
    return { fillerBytes, freeBytes: stats.bavail * stats.bsize };
  }

  /** Space comes back: the filler goes. */
  async unfill(dir: string): Promise<void> {
    await rm(join(dir, FILLER), { force: true });
  }

  /**
   * Unmounts every data directory (its processes must have ended). With `keepContents`, what was
   * in each is copied out first and put back in the directory once it is plain again (a failing
   * trial's disks and fences stay with its logs); the filler is never kept.
   */
  async unmountAll(keepContents = false): Promise<void> {
    const failures: string[] = [];
    for (const dir of this.#mounted) {
      try {
        let saved: string | undefined;
        if (keepContents) {
          await this.unfill(dir);
          saved = `${dir}.kept`;
          await cp(dir, saved, { recursive: true }).catch(() => {
            saved = undefined;
          });
        }
        await unmount(dir);
        this.#mounted.delete(dir);
        if (saved) {
          await rm(dir, { recursive: true, force: true });
          await rename(saved, dir);
        }
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    if (failures.length > 0) throw new Error(`could not unmount: ${failures.join('; ')}`);
  }
}
