/**
 * The host half's disk: where a {@link VirtioBlock}'s requests go. Every call is asynchronous and
 * may fail (reject); the device answers a failure with VIRTIO_BLK_S_IOERR, never by losing a write
 * it acknowledged. The device issues one call at a time, in the guest's request order.
 */
export interface BlockBackend {
  /** Size of the disk in bytes (the device reports `floor(sizeBytes / 512)` sectors). */
  readonly sizeBytes: number;
  /** A read-only disk: the device offers VIRTIO_BLK_F_RO and refuses writes. */
  readonly readOnly: boolean;
  /** Reads `lengthBytes` bytes at byte `offset` (inside the disk). */
  read(offset: number, lengthBytes: number): Promise<Uint8Array>;
  /** Writes `data` at byte `offset`. Resolves once the data is with the backend. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Resolves once every write that resolved before is on stable storage. */
  flush(): Promise<void>;
  /** Releases host resources (a file handle). */
  close?(): Promise<void>;
}

/** Options of {@link MemoryBlockBackend}. */
export interface MemoryBlockBackendOptions {
  readonly readOnly?: boolean;
}

/**
 * A disk held in memory: the reference backend (tests, demos, browsers). `bytes` is the disk;
 * a test may read or change it directly.
 */
export class MemoryBlockBackend implements BlockBackend {
  readonly bytes: Uint8Array;
  readonly readOnly: boolean;
  /** How many flushes were asked for. */
  flushes = 0;

  /** A disk of `sizeBytesOrContents` zero bytes, or holding a copy of the given contents. */
  constructor(sizeBytesOrContents: number | Uint8Array, options: MemoryBlockBackendOptions = {}) {
    this.bytes =
      typeof sizeBytesOrContents === 'number'
        ? new Uint8Array(sizeBytesOrContents)
        : sizeBytesOrContents.slice();
    this.readOnly = options.readOnly ?? false;
  }

  get sizeBytes(): number {
    return this.bytes.length;
  }

  async read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    this.#check(offset, lengthBytes);
    return this.bytes.slice(offset, offset + lengthBytes);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new Error('the disk is read-only');
    this.#check(offset, data.length);
    this.bytes.set(data, offset);
  }

  async flush(): Promise<void> {
    this.flushes++;
  }

  #check(offset: number, lengthBytes: number): void {
    if (
      !(
        Number.isInteger(offset) &&
        offset >= 0 &&
        lengthBytes >= 0 &&
        offset + lengthBytes <= this.bytes.length
      )
    ) {
      throw new RangeError(`disk range ${offset}+${lengthBytes} is outside the disk`);
    }
  }
}
