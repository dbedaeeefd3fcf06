import type { BlockBackend, MemoryBlockBackend } from '@ftvm/devices';
import type { SimHost } from './loop.js';

/**
 * One host's path to the shared disk (a {@link MemoryBlockBackend} every host of the VM uses, the
 * paper's shared storage). A request acts on the shared bytes when the host issues it and
 * completes, on that host, after the disk's current latency: a slow disk is a longer latency. A
 * dead host issues nothing more.
 */
export class SimDisk implements BlockBackend {
  readonly #shared: MemoryBlockBackend;
  readonly #host: SimHost;
  readonly #latencyNs: () => number;
  /** Requests this host issued. */
  requests = 0;

  constructor(shared: MemoryBlockBackend, host: SimHost, latencyNs: () => number) {
    this.#shared = shared;
    this.#host = host;
    this.#latencyNs = latencyNs;
  }

  get sizeBytes(): number {
    return this.#shared.sizeBytes;
  }

  get readOnly(): boolean {
    return this.#shared.readOnly;
  }

  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    return this.#complete(() => this.#shared.read(offset, lengthBytes));
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#complete(() => this.#shared.write(offset, data));
  }

  flush(): Promise<void> {
    return this.#complete(() => this.#shared.flush());
  }

  #complete<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#host.dead) return new Promise<T>(() => {}); // a dead host's IO never completes
    this.requests++;
    // The memory backend acts at once (its methods have no await before the change).
    const result = operation();
    return new Promise<T>((resolve, reject) => {
      this.#host.after(this.#latencyNs(), () => {
        result.then(resolve, reject);
      });
    });
  }
}
