import type { BlockBackend, MemoryBlockBackend } from '@ftvm/devices';
import type { SimHost } from './loop.js';

/**
 * The shared disk of a simulated VM (the paper's shared storage): one {@link MemoryBlockBackend}
 * every host uses, optionally fenced by epoch as the node deployment's `SharedMemoryDisk` is (a
 * backup that goes live raises the fence to its epoch; a write from an older epoch is refused).
 * With separate disks each host has one of these to itself, unfenced: no other host writes it.
 */
export class SimSharedDisk {
  readonly backend: MemoryBlockBackend;
  /** Refuse writes from epochs below the fence. */
  readonly fencing: boolean;
  /** The highest epoch that went live (kept without fencing too, to see late writes). */
  fenceEpoch = 0;
  /** Writes refused by the fence. */
  refusedWrites = 0;
  /** Writes from an epoch below the fence that landed (only without fencing). */
  lateWrites = 0;

  constructor(backend: MemoryBlockBackend, fencing: boolean) {
    this.backend = backend;
    this.fencing = fencing;
  }
}

/**
 * One host's path to the {@link SimSharedDisk}. A request acts on the shared bytes when the host
 * issues it and completes, on that host, after the disk's current latency: a slow disk is a longer
 * latency. A dead host issues nothing more. `onLateWrite` hears of a write from an epoch older than
 * one that went live that landed (possible only without fencing): it may overwrite newer data.
 */
export class SimDisk implements BlockBackend {
  readonly #shared: SimSharedDisk;
  readonly #host: SimHost;
  readonly #latencyNs: () => number;
  readonly #onLateWrite: ((epoch: number, offset: number, length: number) => void) | undefined;
  /** The epoch this host writes for. */
  #epoch: number;
  /** Requests this host issued. */
  requests = 0;
  /** Requests issued and not completed yet (a dead host's never complete). */
  inFlight = 0;

  constructor(
    shared: SimSharedDisk,
    host: SimHost,
    epoch: number,
    latencyNs: () => number,
    onLateWrite?: (epoch: number, offset: number, length: number) => void,
  ) {
    this.#shared = shared;
    this.#host = host;
    this.#epoch = epoch;
    this.#latencyNs = latencyNs;
    this.#onLateWrite = onLateWrite;
  }

  get sizeBytes(): number {
    return this.#shared.backend.sizeBytes;
  }

  get readOnly(): boolean {
    return this.#shared.backend.readOnly;
  }

  /** This host went live in `epoch`: it writes for it, and (with fencing) older epochs write no more. */
  fence(epoch: number): void {
    this.#epoch = Math.max(this.#epoch, epoch);
    this.#shared.fenceEpoch = Math.max(this.#shared.fenceEpoch, epoch);
  }

  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    return this.#complete(() => this.#shared.backend.read(offset, lengthBytes));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#complete(() => {
      if (this.#shared.fenceEpoch > this.#epoch) {
        if (this.#shared.fencing) {
          this.#shared.refusedWrites++;
          return Promise.reject(
            new Error(`a write from epoch ${this.#epoch} after epoch ${this.#shared.fenceEpoch} went live`),
          );
        }
        this.#shared.lateWrites++;
        this.#onLateWrite?.(this.#epoch, offset, data.length);
      }
      return this.#shared.backend.write(offset, data);
    });
  }

  flush(): Promise<void> {
    return this.#complete(() => this.#shared.backend.flush());
  }

  #complete<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#host.dead) return new Promise<T>(() => {}); // a dead host's IO never completes
    this.requests++;
    this.inFlight++;
    // The memory backend acts at once (its methods have no await before the change).
    const outcome = operation().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    return new Promise<T>((resolve, reject) => {
      this.#host.after(this.#latencyNs(), () => {
        void outcome.then((settled) => {
          this.inFlight--;
          if (settled.ok) resolve(settled.value);
          else reject(settled.error);
        });
      });
    });
  }
}
