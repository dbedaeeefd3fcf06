import {
  type AccessWidth,
  type DeviceEventPayload,
  type PlainValue,
  SnapshotError,
  type StateSection,
} from '@ftvm/core';
import { StateReader } from '../../state.js';
import { VIRTIO_QUEUE_SIZE_MAX, VirtioDeviceId } from '../constants.js';
import { type DescriptorChain, type GuestBufferSegment, VirtqueueError } from '../queue/virtqueue.js';
import { readConfigBytes, setConfigField } from '../transport/config-space.js';
import type { VirtioDevice, VirtioDeviceContext } from '../transport/virtio-device.js';
import type { BlockBackend } from './block-backend.js';

/**
 * virtio-blk (virtio 1.2 §5.2) with the disk IO design of the paper (DESIGN.md, "Disk IO"):
 *
 * - When the guest notifies, the device takes each request off the queue and, for a write, copies
 *   the data out of guest memory at once (a bounce buffer). The request joins the in-flight list.
 * - The host half performs the IO on a {@link BlockBackend}, one request at a time in request
 *   order, and hands the outcome back with `env.inject({ type: 'request-completed', data:
 *   { id, status, data } })` — `data` holds the bytes a read brought in.
 * - Applying that event is the only point where a read's data reaches guest memory, with the
 *   status byte and the used-ring entry. So a guest that races its own DMA (reads or rewrites the
 *   buffer while the request is in flight) sees the same thing on a replay.
 * - Requests complete in the order they were issued: a request that is answered at once (GET_ID,
 *   an unsupported type, a range error) waits behind the ones in flight.
 * - A write is acknowledged only after the backend resolved it (and, when the driver did not take
 *   VIRTIO_BLK_F_FLUSH, after a flush too: without a flush command the cache must be write-through).
 *   A backend failure is VIRTIO_BLK_S_IOERR; a write to a read-only disk is VIRTIO_BLK_S_IOERR
 *   (§5.2.6.2); an unknown request type is VIRTIO_BLK_S_UNSUPP.
 * - In-flight requests are part of the saved state; {@link VirtioBlock.onGoLive} reissues them
 *   (they are idempotent) on a backup that becomes the primary.
 *
 * One request queue. Configuration space (57 bytes, as QEMU 7.2): `capacity` in 512-byte sectors
 * at 0, `seg_max` at 12, `blk_size` (512) at 20; the rest reads 0. Write data held in bounce
 * buffers is bounded by {@link VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX}: past it, requests wait in
 * the ring.
 *
 * State layout (section `virtio-blk`, version 1): `nextRequestId`, `stalled` (requests wait in
 * the ring for bounce-buffer room), `inFlight`: an array of
 * `{ id, headIndex, operation ('read' | 'write' | 'flush' | 'answered'), offsetBytes, lengthBytes,
 * writeData (bytes or null), flushAfter, writable ([address, length, …]), status (null until
 * known), data (bytes or null) }`.
 */

/** Request types (§5.2.6). */
export const VirtioBlockRequestType = {
  in: 0,
  out: 1,
  flush: 4,
  getId: 8,
} as const;

/** Status byte values (§5.2.6). */
export const VirtioBlockStatus = {
  ok: 0,
  ioError: 1,
  unsupported: 2,
} as const;

/** Device feature bits (§5.2.3). */
export const VirtioBlockFeature = {
  /** `seg_max` holds the most data buffers of one request. */
  segmentsMax: 2n,
  readOnly: 5n,
  /** `blk_size` holds the disk's block size. */
  blockSize: 6n,
  flush: 9n,
} as const;

/** The sector size of the request protocol, whatever the disk's. */
export const VIRTIO_BLOCK_SECTOR_BYTES = 512;
/** Size of the request queue (QueueNumMax), as QEMU reports it. */
export const VIRTIO_BLOCK_QUEUE_SIZE_MAX = VIRTIO_QUEUE_SIZE_MAX;
/** `seg_max` in the configuration space: QEMU's value for its default queue size (256 − 2). */
export const VIRTIO_BLOCK_SEGMENTS_MAX = 254;
/** Largest data transfer of one request; a larger one gets VIRTIO_BLK_S_IOERR. */
export const VIRTIO_BLOCK_REQUEST_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Write data the device holds in bounce buffers at most (plus one request). Past it the device
 * takes no more requests off the ring until completions make room, which bounds the saved state.
 */
export const VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX = 64 * 1024 * 1024;
/** Length of the GET_ID answer (VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLOCK_ID_BYTES = 20;
/**
 * Size of the configuration space QEMU 7.2 exposes (`struct virtio_blk_config` through
 * `write_zeroes_may_unmap`); an access reaching past it reads all ones.
 */
export const VIRTIO_BLOCK_CONFIG_SIZE_BYTES = 57;

const HEADER_BYTES = 16;
const STATE_VERSION = 1;
/** Event type of a completion from the host half. */
export const BLOCK_REQUEST_COMPLETED = 'request-completed';

/** What the host half does for a request; `answered` needs no IO. */
type BlockOperation = 'read' | 'write' | 'flush' | 'answered';

interface InFlightRequest {
  readonly id: number;
  readonly headIndex: number;
  readonly operation: BlockOperation;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  /** The bounce buffer of a write, copied from guest memory when the request was taken. */
  readonly writeData: Uint8Array | null;
  readonly flushAfter: boolean;
  readonly writable: readonly GuestBufferSegment[];
  readonly writableBytes: number;
  /** The outcome, once known (at once for `answered`, from the completion event otherwise). */
  status: number | null;
  data: Uint8Array | null;
}

/** A request in flight, as {@link VirtioBlock.inFlightRequests} lists it. */
export interface BlockRequestSummary {
  readonly id: number;
  readonly operation: BlockOperation;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  /** True once its outcome is known (it waits for earlier requests to complete). */
  readonly answered: boolean;
}

/** Options of {@link VirtioBlock}. */
export interface VirtioBlockOptions {
  /** The disk. */
  readonly backend: BlockBackend;
  /** What GET_ID answers (at most 20 bytes of ASCII; default empty, as QEMU without `serial=`). */
  readonly serial?: string;
  /**
   * Whether the host half performs IO (default true). A backup on a shared disk passes false, so
   * only the primary touches the disk; {@link VirtioBlock.onGoLive} turns it on.
   */
  readonly issueHostIo?: boolean;
}

/** The completion a host half injects. */
interface BlockCompletion {
  readonly id: number;
  readonly status: number;
  readonly data: Uint8Array | null;
}

export class VirtioBlock implements VirtioDevice {
  readonly kind = 'virtio-blk';
  readonly deviceId = VirtioDeviceId.block;
  readonly queueSizesMax = [VIRTIO_BLOCK_QUEUE_SIZE_MAX] as const;
  readonly deviceFeatures: bigint;
  readonly backend: BlockBackend;
  /** Whether the host half performs IO (see {@link VirtioBlockOptions.issueHostIo}). */
  issueHostIo: boolean;

  readonly #config = new Uint8Array(VIRTIO_BLOCK_CONFIG_SIZE_BYTES);
  readonly #serial: Uint8Array;
  readonly #capacitySectors: number;
  #context: VirtioDeviceContext | undefined;
  #nextRequestId = 1;
  #inFlight: InFlightRequest[] = [];
  /** True when requests were left in the ring because the bounce buffers were full. */
  #stalled = false;
  /** The host half's chain of IO: one request at a time, in order. */
  #hostWork: Promise<void> = Promise.resolve();

  constructor(options: VirtioBlockOptions) {
    this.backend = options.backend;
    this.issueHostIo = options.issueHostIo ?? true;
    this.#capacitySectors = Math.floor(options.backend.sizeBytes / VIRTIO_BLOCK_SECTOR_BYTES);
    setConfigField(this.#config, 0, 8, this.#capacitySectors);
    setConfigField(this.#config, 12, 4, VIRTIO_BLOCK_SEGMENTS_MAX);
    setConfigField(this.#config, 20, 4, VIRTIO_BLOCK_SECTOR_BYTES);
    this.#serial = new Uint8Array(VIRTIO_BLOCK_ID_BYTES);
    const serial = options.serial ?? '';
    for (let i = 0; i < Math.min(serial.length, VIRTIO_BLOCK_ID_BYTES); i++)
      this.#serial[i] = serial.charCodeAt(i) & 0xff;
    this.deviceFeatures =
      (1n << VirtioBlockFeature.segmentsMax) |
      (1n << VirtioBlockFeature.blockSize) |
      (1n << VirtioBlockFeature.flush) |
      (options.backend.readOnly ? 1n << VirtioBlockFeature.readOnly : 0n);
  }

  /** Capacity in 512-byte sectors, as the configuration space reports it. */
  get capacitySectors(): number {
    return this.#capacitySectors;
  }

  /** The requests taken from the guest and not yet completed to it, oldest first. */
  inFlightRequests(): BlockRequestSummary[] {
    return this.#inFlight.map((request) => ({
      id: request.id,
      operation: request.operation,
      offsetBytes: request.offsetBytes,
      lengthBytes: request.lengthBytes,
      answered: request.status !== null,
    }));
  }

  /** A promise that settles when the host half has no IO left to do (for tests and shutdown). */
  hostIdle(): Promise<void> {
    return this.#hostWork;
  }

  attach(context: VirtioDeviceContext): void {
    this.#context = context;
  }

  readConfig(offset: number, width: AccessWidth): number {
    return readConfigBytes(this.#config, offset, width);
  }

  writeConfig(): void {
    // Only `writeback` is writable, with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
  }

  activate(): void {}

  reset(): void {
    // Completions of these requests may still arrive from the host half; their ids match nothing.
    this.#inFlight = [];
    this.#stalled = false;
  }

  notifyQueue(queueIndex: number): void {
    if (queueIndex !== 0) return;
    this.#takeRequests();
    this.#completeInOrder();
  }

  applyEvent(event: DeviceEventPayload): void {
    if (event.type !== BLOCK_REQUEST_COMPLETED) return;
    const completion = parseCompletion(event.data);
    if (completion === null || !this.#requireContext().isLive()) return;
    const request = this.#inFlight.find(
      (candidate) => candidate.id === completion.id && candidate.status === null,
    );
    if (request === undefined) return;
    if (request.operation === 'read' && completion.status === VirtioBlockStatus.ok) {
      if (completion.data === null || completion.data.length !== request.lengthBytes) {
        request.status = VirtioBlockStatus.ioError;
      } else {
        request.status = VirtioBlockStatus.ok;
        request.data = completion.data;
      }
    } else {
      request.status =
        completion.status === VirtioBlockStatus.ok ? VirtioBlockStatus.ok : VirtioBlockStatus.ioError;
    }
    this.#completeInOrder();
  }

  onGoLive(): void {
    this.issueHostIo = true;
    for (const request of this.#inFlight) if (request.status === null) this.#issue(request);
  }

  dispose(): void {
    const backend = this.backend;
    void this.#hostWork.then(() => backend.close?.()).catch(() => {});
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        nextRequestId: this.#nextRequestId,
        stalled: this.#stalled,
        inFlight: this.#inFlight.map((request) => ({
          id: request.id,
          headIndex: request.headIndex,
          operation: request.operation,
          offsetBytes: request.offsetBytes,
          lengthBytes: request.lengthBytes,
          writeData: request.writeData === null ? null : request.writeData.slice(),
          flushAfter: request.flushAfter,
          writable: request.writable.flatMap((segment) => [segment.address, segment.lengthBytes]),
          status: request.status,
          data: request.data === null ? null : request.data.slice(),
        })),
      },
    };
  }

  restoreState(section: StateSection): void {
    const fields = StateReader.open(section, this.kind, STATE_VERSION);
    const nextRequestId = fields.integer('nextRequestId', Number.MAX_SAFE_INTEGER);
    const stalled = fields.boolean('stalled');
    const inFlight = fields.array('inFlight', VIRTIO_BLOCK_QUEUE_SIZE_MAX, (value, path) =>
      readRequest(value, path),
    );
    this.#nextRequestId = nextRequestId;
    this.#stalled = stalled;
    this.#inFlight = inFlight;
  }

  /** Takes requests off the ring while the bounce buffers have room. */
  #takeRequests(): void {
    const queue = this.#requireContext().queues[0]!;
    this.#stalled = false;
    for (;;) {
      if (this.#inFlightWriteBytes() >= VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX) {
        this.#stalled = true;
        return;
      }
      const chain = queue.popAvailable();
      if (chain === null) return;
      if (this.#inFlight.length >= queue.size) {
        throw new VirtqueueError('virtio-blk: more requests in flight than the queue holds');
      }
      const request = this.#take(chain);
      this.#inFlight.push(request);
      if (request.status === null) this.#issue(request);
    }
  }

  #inFlightWriteBytes(): number {
    let total = 0;
    for (const request of this.#inFlight) total += request.writeData?.length ?? 0;
    return total;
  }

  /** Reads one request off the ring (§5.2.6): header, data, status byte. */
  #take(chain: DescriptorChain): InFlightRequest {
    const queue = this.#requireContext().queues[0]!;
    if (chain.readableBytes < HEADER_BYTES || chain.writableBytes < 1) {
      throw new VirtqueueError('virtio-blk request without its header or status byte');
    }
    const header = queue.readReadable(chain, HEADER_BYTES);
    const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
    const type = view.getUint32(0, true);
    const sector = view.getUint32(8, true) + view.getUint32(12, true) * 2 ** 32;
    const base = {
      id: this.#nextRequestId++,
      headIndex: chain.headIndex,
      writable: chain.writable,
      writableBytes: chain.writableBytes,
      flushAfter: false,
      writeData: null,
      data: null,
    };
    const answered = (status: number, data: Uint8Array | null = null): InFlightRequest => ({
      ...base,
      operation: 'answered',
      offsetBytes: 0,
      lengthBytes: 0,
      status,
      data,
    });
    switch (type) {
      case VirtioBlockRequestType.in:
      case VirtioBlockRequestType.out: {
        const isWrite = type === VirtioBlockRequestType.out;
        const lengthBytes = isWrite ? chain.readableBytes - HEADER_BYTES : chain.writableBytes - 1;
        const offsetBytes = sector * VIRTIO_BLOCK_SECTOR_BYTES;
        if (isWrite && this.backend.readOnly) return answered(VirtioBlockStatus.ioError);
        if (
          lengthBytes % VIRTIO_BLOCK_SECTOR_BYTES !== 0 ||
          lengthBytes > VIRTIO_BLOCK_REQUEST_BYTES_MAX ||
          sector + lengthBytes / VIRTIO_BLOCK_SECTOR_BYTES > this.#capacitySectors
        ) {
          return answered(VirtioBlockStatus.ioError);
        }
        return {
          ...base,
          operation: isWrite ? 'write' : 'read',
          offsetBytes,
          lengthBytes,
          writeData: isWrite ? queue.readReadable(chain).slice(HEADER_BYTES) : null,
          flushAfter: isWrite && !this.#flushNegotiated(),
          status: null,
        };
      }
      case VirtioBlockRequestType.flush:
        return { ...base, operation: 'flush', offsetBytes: 0, lengthBytes: 0, status: null };
      case VirtioBlockRequestType.getId:
        return answered(
          VirtioBlockStatus.ok,
          this.#serial.slice(0, Math.min(VIRTIO_BLOCK_ID_BYTES, chain.writableBytes - 1)),
        );
      default:
        return answered(VirtioBlockStatus.unsupported);
    }
  }

  #flushNegotiated(): boolean {
    return (this.#requireContext().negotiatedFeatures() & (1n << VirtioBlockFeature.flush)) !== 0n;
  }

  /**
   * Completes, from the oldest, every request whose outcome is known: data (a read, GET_ID), then
   * the status byte in the last writable byte, then the used-ring entry (length: every writable
   * byte, as QEMU reports it). Stops at the first request still waiting for its IO.
   */
  #completeInOrder(): void {
    const context = this.#requireContext();
    const queue = context.queues[0]!;
    let pushedAny = false;
    for (;;) {
      let pushed = false;
      while (this.#inFlight.length > 0 && this.#inFlight[0]!.status !== null) {
        const request = this.#inFlight.shift()!;
        const chain: DescriptorChain = {
          headIndex: request.headIndex,
          readable: [],
          writable: request.writable,
          readableBytes: 0,
          writableBytes: request.writableBytes,
        };
        if (request.data !== null)
          queue.writeWritable(chain, request.data.subarray(0, request.writableBytes - 1));
        queue.writeWritable(chain, Uint8Array.of(request.status!), request.writableBytes - 1);
        queue.pushUsed(request.headIndex, request.writableBytes);
        pushed = true;
      }
      if (!pushed) break;
      pushedAny = true;
      // Completions made room in the bounce buffers: take the requests that waited in the ring.
      if (!this.#stalled || !context.isLive()) break;
      this.#takeRequests();
    }
    if (pushedAny) context.usedBuffersPushed(queue);
  }

  /** Host half: queue the request's IO behind the ones already issued. Never rejects. */
  #issue(request: InFlightRequest): void {
    if (!this.issueHostIo) return;
    const context = this.#requireContext();
    const backend = this.backend;
    const { id, operation, offsetBytes, lengthBytes, writeData, flushAfter } = request;
    this.#hostWork = this.#hostWork.then(async () => {
      let completion: BlockCompletion;
      try {
        if (operation === 'read') {
          const data = await backend.read(offsetBytes, lengthBytes);
          completion = { id, status: VirtioBlockStatus.ok, data: data.slice() };
        } else {
          if (operation === 'write') await backend.write(offsetBytes, writeData!);
          if (operation === 'flush' || flushAfter) await backend.flush();
          completion = { id, status: VirtioBlockStatus.ok, data: null };
        }
      } catch {
        completion = { id, status: VirtioBlockStatus.ioError, data: null };
      }
      context.env.inject({ type: BLOCK_REQUEST_COMPLETED, data: { ...completion } });
    });
  }

  #requireContext(): VirtioDeviceContext {
    if (this.#context === undefined) throw new VirtqueueError('virtio-blk used before it was attached');
    return this.#context;
  }
}

/** Reads a completion event's data; null when it is not one (a hostile log). */
function parseCompletion(data: PlainValue | undefined): BlockCompletion | null {
  if (typeof data !== 'object' || data === null || data instanceof Uint8Array || Array.isArray(data))
    return null;
  const record = data as { readonly [key: string]: PlainValue };
  const { id, status } = record;
  const bytes = record.data;
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) return null;
  if (typeof status !== 'number') return null;
  return { id, status, data: bytes instanceof Uint8Array ? bytes : null };
}

const OPERATIONS: readonly BlockOperation[] = ['read', 'write', 'flush', 'answered'];

function readRequest(value: PlainValue, path: string): InFlightRequest {
  const fields = StateReader.of(value, path);
  const operation = fields.string('operation', 16) as BlockOperation;
  if (!OPERATIONS.includes(operation)) throw new SnapshotError(`${path}: unknown operation`);
  const writableWords = fields.array('writable', 2 * 2048, (word, wordPath) => {
    if (typeof word !== 'number' || !Number.isSafeInteger(word) || word < 0) {
      throw new SnapshotError(`${wordPath}: not an address or length`);
    }
    return word;
  });
  if (writableWords.length % 2 !== 0) throw new SnapshotError(`${path}.writable: odd length`);
  const writable: GuestBufferSegment[] = [];
  let writableBytes = 0;
  for (let i = 0; i < writableWords.length; i += 2) {
    writable.push({ address: writableWords[i]!, lengthBytes: writableWords[i + 1]! });
    writableBytes += writableWords[i + 1]!;
  }
  if (writableBytes < 1) throw new SnapshotError(`${path}.writable: no status byte`);
  const status = fields.raw('status') === null ? null : fields.integer('status', 0xff);
  const writeData = fields.bytesOrNull('writeData', VIRTIO_BLOCK_REQUEST_BYTES_MAX);
  if ((operation === 'write') !== (writeData !== null))
    throw new SnapshotError(`${path}: write data does not fit the operation`);
  return {
    id: fields.integer('id', Number.MAX_SAFE_INTEGER),
    headIndex: fields.integer('headIndex', 0xffff),
    operation,
    offsetBytes: fields.integer('offsetBytes', Number.MAX_SAFE_INTEGER),
    lengthBytes: fields.integer('lengthBytes', VIRTIO_BLOCK_REQUEST_BYTES_MAX),
    writeData,
    flushAfter: fields.boolean('flushAfter'),
    writable,
    writableBytes,
    status,
    data: fields.bytesOrNull('data', VIRTIO_BLOCK_REQUEST_BYTES_MAX),
  };
}
