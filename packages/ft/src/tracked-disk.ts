import type { BlockBackend } from '@ftvm/devices';

/**
 * A host's own copy of a disk (non-shared disks), as live cloning needs it: a primary copies it
 * to a new backup while the guest runs, then the runs the guest wrote meanwhile, then the last ones
 * while the guest stands still; a new backup writes them into its empty copy.
 *
 * Wraps the disk's backend: it records which byte runs were written while tracking (once each
 * write is done), counts writes in flight (the last copy waits for them), and issues a write to
 * bytes that a write in flight covers only once that one is done, so that a run received in the
 * state transfer always lands before a write of the replayed guest to the same place (two writes
 * in flight at once to one file may land in either order).
 */
export class TrackedDisk implements BlockBackend {
  readonly readOnly: boolean;
  readonly #backend: BlockBackend;
  #tracking: Map<number, number> | undefined;
  #drained: (() => void)[] = [];
  /** Writes in flight, by the bytes they cover. */
  readonly #writing = new Set<{ offset: number; end: number; done: Promise<unknown> }>();

  /** `device`: the disk's name on the bus (`virtio7`), as the transfer names it. */
  constructor(
    readonly device: string,
    backend: BlockBackend,
  ) {
    this.#backend = backend;
    this.readOnly = backend.readOnly;
  }

  get sizeBytes(): number {
    return this.#backend.sizeBytes;
  }

  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    return this.#backend.read(offset, lengthBytes);
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    const run = { offset, end: offset + data.length, done: Promise.resolve() };
    // Only a write to the same place waits for the one before it: the order is kept where it
    // matters, and writes elsewhere still overlap.
    const before = [...this.#writing].filter((other) => other.offset < run.end && offset < other.end);
    const done = Promise.all(before.map((other) => other.done)).then(() => this.#backend.write(offset, data));
    run.done = done.catch(() => {});
    this.#writing.add(run);
    return done.finally(() => {
      this.#writing.delete(run);
      // Recorded once the bytes are there: a copy of the run read after it is collected sees them.
      this.#tracking?.set(offset, Math.max(this.#tracking.get(offset) ?? 0, data.length));
      if (this.#writing.size === 0) for (const resolve of this.#drained.splice(0)) resolve();
    });
  }

  flush(): Promise<void> {
    return this.#backend.flush();
  }

  close(): Promise<void> {
    return this.#backend.close?.() ?? Promise.resolve();
  }

  /** Starts recording written runs (or starts over). */
  startTracking(): void {
    this.#tracking = new Map();
  }

  /** The runs written since the last call (or since tracking started), as [offset, length], merged. */
  collectWritten(): [number, number][] {
    const written = [...(this.#tracking ?? new Map<number, number>())].sort((a, b) => a[0] - b[0]);
    if (this.#tracking) this.#tracking = new Map();
    const merged: [number, number][] = [];
    for (const [offset, length] of written) {
      const last = merged[merged.length - 1];
      if (last && offset <= last[0] + last[1]) last[1] = Math.max(last[1], offset + length - last[0]);
      else merged.push([offset, length]);
    }
    return merged;
  }

  stopTracking(): void {
    this.#tracking = undefined;
  }

  /** Resolves once no write is in flight. */
  drained(): Promise<void> {
    if (this.#writing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }
}

/** Cuts the runs [offset, length] into pieces of at most `maxBytes`, on sector boundaries. */
export function diskRunPieces(runs: readonly [number, number][], maxBytes: number): [number, number][] {
  const pieces: [number, number][] = [];
  for (const [offset, length] of runs) {
    const start = offset - (offset % 512);
    const end = Math.ceil((offset + length) / 512) * 512;
    for (let at = start; at < end; at += maxBytes) pieces.push([at, Math.min(maxBytes, end - at)]);
  }
  return pieces;
}
