import {
  type AccessWidth,
  type DeviceEventPayload,
  DivergenceError,
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
 * virtio-blk (virtio 1.2 §5.2) with the disk IO design of the paper (docs/architecture.md):
 *
 * - When the guest notifies, the device takes each request off the queue and, for a write, copies
 *   the data out of guest memory at once (a bounce buffer). The request joins the in-flight list.
 * - A write is an output (on a shared disk the backup will use what the primary wrote): taking it
 *   off the ring calls `env.output('disk-write', summary)` — 16 bytes: offset in bytes (u64 LE),
 *   length (u32 LE), 32-bit FNV-1a of the data (u32 LE), see {@link diskWriteSummary} — so a
 *   replay checks the same write happened while record files stay small. A flush, and the
 *   implicit flush after a write when VIRTIO_BLK_F_FLUSH was not negotiated, is
 *   `env.output('disk-flush', <empty>)`. These calls happen on the guest's path on every machine.
 * - The host half performs the IO on a {@link BlockBackend}, one request at a time in request
 *   order. Before a write or a flush reaches the backend it awaits the promise `env.output`
 *   answered, i.e. the output's release (on an FT primary: once the backup acknowledged the log
 *   position covering it — the output rule). Requests behind a held write wait too, so a read of
 *   the sectors just written sees the new data. The outcome goes back with `env.inject({ type:
 *   'request-completed', data: { id, status, data } })` — `data` holds the bytes a read brought
 *   in; with `logReadData: false` it is null and `dataFromBackend: true` is set instead (the
 *   paper's "backup reads": the log stays small, each machine reads its own disk).
 * - Applying that event is the only point where a read's data reaches guest memory, with the
 *   status byte and the used-ring entry. So a guest that races its own DMA (reads or rewrites the
 *   buffer while the request is in flight) sees the same thing on a replay. A completion with
 *   `dataFromBackend` takes the data from this machine's own host read of the request;
 *   {@link VirtioBlock.isReadyFor} answers false until that read settled
 *   ({@link VirtioBlock.hostReadsSettled}). A logged success whose local read failed is a
 *   divergence (`DivergenceError`, kind `missing-entry`).
 * - Host IO modes ({@link VirtioBlockHostIo}): `all` (standalone, primary, a backup with its own
 *   copy of the disk, which applies the primary's writes to it), `reads` (a backup that reads the
 *   shared disk itself; it never writes), `none` (a backup on a shared disk whose read data comes
 *   in the log). Only `all` injects completions. {@link VirtioBlock.onGoLive} switches to `all`.
 * - Requests complete in the order they were issued: a request that is answered at once (GET_ID,
 *   an unsupported type, a range error) waits behind the ones in flight.
 * - A write is acknowledged only after the backend resolved it (and, when the driver did not take
 *   VIRTIO_BLK_F_FLUSH, after a flush too: without a flush command the cache must be write-through).
 *   With {@link VirtioBlockOptions.writeBack} and VIRTIO_BLK_F_FLUSH negotiated, the device is a
 *   disk with a volatile write cache instead: a write completes to the guest as soon as it was
 *   taken, while the data still waits for its output's release (the output rule holds for the
 *   disk: nothing reaches it before the backup has the log). Only a flush promises that earlier
 *   writes reached the disk, and a write that failed there makes the next flush fail (IOERR).
 *   Completed writes the disk may not have yet stay in the device's state (`unapplied`) until a
 *   completion reports them applied (`appliedThrough`); a backup that goes live writes them again
 *   (idempotent) with the requests in flight, all in request order.
 *   A backend failure is VIRTIO_BLK_S_IOERR; a write to a read-only disk is VIRTIO_BLK_S_IOERR
 *   (§5.2.6.2) and is no output; an unknown request type is VIRTIO_BLK_S_UNSUPP.
 * - In-flight requests are part of the saved state; {@link VirtioBlock.onGoLive} reissues them
 *   (they are idempotent) on a backup that becomes the primary. Their outputs were made when they
 *   were taken, on the machine that took them, and are not repeated.
 *
 * One request queue. Configuration space (57 bytes, as QEMU 7.2): `capacity` in 512-byte sectors
 * at 0, `seg_max` at 12, `blk_size` (512) at 20; the rest reads 0. Write data held in bounce
 * buffers is bounded by {@link VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX}: past it, requests wait in
 * the ring.
 *
 * State layout (section `virtio-blk`, version 2; saved as version 1, without `unapplied`, while
 * there are none, so state hashes stay as they were without a write cache):
 * `nextRequestId`, `stalled` (requests wait in the ring for bounce-buffer room), `unapplied`: an
 * array of `{ id, offsetBytes, data }` (write-back: completed writes not yet known to be on the
 * disk, oldest first), `inFlight`: an array of
 * `{ id, headIndex, operation ('read' | 'write' | 'flush' | 'answered'), offsetBytes, lengthBytes,
 * writeData (bytes or null), flushAfter, writable ([address, length, …]), status (null until
 * known), data (bytes or null) }`. The host half (held releases, local read results, the IO
 * mode) is not state.
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
/**
 * Write-back: data of writes completed early and not yet on the disk, at most. Past it writes
 * complete once they reached the disk again (their completions report the earlier ones applied),
 * so the completed writes a device keeps in its state stay well under the bounce-buffer limit.
 */
export const VIRTIO_BLOCK_WRITE_BACK_BYTES_MAX = 16 * 1024 * 1024;

/**
 * A backup's own read of the shared disk (`hostIo: 'reads'`) that fails is tried this many times
 * in all before the replay stops on it: the primary's read of the same sectors most likely
 * succeeded. The paper's backup retries until its read succeeds; this one gives up, so a backup
 * whose path to the disk is broken for good diverges and is replaced rather than holding its
 * primary back through lag control. Tries follow one another at once: the device has no host
 * timer, and each waits for the disk.
 */
export const VIRTIO_BLOCK_BACKUP_READ_TRIES = 5;
/** Length of the GET_ID answer (VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLOCK_ID_BYTES = 20;
/**
 * Size of the configuration space QEMU 7.2 exposes (`struct virtio_blk_config` through
 * `write_zeroes_may_unmap`); an access reaching past it reads all ones.
 */
export const VIRTIO_BLOCK_CONFIG_SIZE_BYTES = 57;

const HEADER_BYTES = 16;
const STATE_VERSION = 2;
/** State versions {@link VirtioBlock.restoreState} reads: 1 had no `unapplied` writes. */
const STATE_VERSIONS_READ = [1, 2];
/** Event type of a completion from the host half. */
export const BLOCK_REQUEST_COMPLETED = 'request-completed';
/** Output stream of disk writes (`env.output`), one {@link diskWriteSummary} per write request. */
export const BLOCK_OUTPUT_DISK_WRITE = 'disk-write';
/** Output stream of disk flushes (`env.output`), with empty data. */
export const BLOCK_OUTPUT_DISK_FLUSH = 'disk-flush';
/** Length of a {@link diskWriteSummary}: offset (8), length (4), FNV-1a hash (4). */
export const DISK_WRITE_SUMMARY_BYTES = 16;

/**
 * What the host half does (the paper's disk modes):
 * - `all`: reads, writes and flushes, and injects each completion (standalone, primary, and a
 *   backup with its own copy of the disk, which applies the primary's writes to it);
 * - `reads`: reads only, kept for a completion that comes without its data; injects nothing (a
 *   backup that reads the shared disk itself, "backup reads");
 * - `none`: nothing (a backup on a shared disk whose read data travels in the log).
 */
export type VirtioBlockHostIo = 'all' | 'reads' | 'none';

const HOST_IO_MODES: readonly VirtioBlockHostIo[] = ['all', 'reads', 'none'];
const NO_BYTES = new Uint8Array(0);
const RELEASED: Promise<void> = Promise.resolve();

/** The 32-bit FNV-1a hash of `data`. */
export function fnv1a32(data: Uint8Array): number {
  let hash = 0x811c_9dc5;
  for (let i = 0; i < data.length; i++) hash = Math.imul(hash ^ data[i]!, 0x0100_0193);
  return hash >>> 0;
}

/**
 * The data of a `disk-write` output: the byte offset (u64 LE), the length (u32 LE) and the 32-bit
 * FNV-1a hash of the data (u32 LE). Small, so logs that record outputs stay small; enough for a
 * replay to check that the same write happened.
 */
export function diskWriteSummary(offsetBytes: number, data: Uint8Array): Uint8Array {
  const summary = new Uint8Array(DISK_WRITE_SUMMARY_BYTES);
  const view = new DataView(summary.buffer);
  view.setBigUint64(0, BigInt(offsetBytes), true);
  view.setUint32(8, data.length, true);
  view.setUint32(12, fnv1a32(data), true);
  return summary;
}

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
   * What the host half does (default `all`); see {@link VirtioBlockHostIo}.
   * {@link VirtioBlock.onGoLive} switches to `all`.
   */
  readonly hostIo?: VirtioBlockHostIo;
  /**
   * @deprecated Use `hostIo`: true is `all`, false is `none`. Ignored when `hostIo` is given.
   */
  readonly issueHostIo?: boolean;
  /**
   * Whether a read's completion carries the data read (default true). False (a primary whose
   * backup reads the disk itself): the completion carries `data: null, dataFromBackend: true`
   * and every machine applying it takes the data from its own host read.
   */
  readonly logReadData?: boolean;
  /**
   * A volatile write cache (default false): with VIRTIO_BLK_F_FLUSH negotiated, a write completes
   * to the guest before it reached the disk, which it still reaches only once its output is
   * released; a flush completes once every earlier write did. Under fault tolerance this takes
   * the wait for the backup's acknowledgement off the guest's path for writes (it stays on the
   * path of the network reply that follows). Not with a backup that reads the disk itself
   * (`logReadData: false`): its reads could overtake a completed write. Every machine of a VM
   * must be given the same value (it decides what the log's completions mean).
   */
  readonly writeBack?: boolean;
}

/** The completion a host half injects. */
interface BlockCompletion {
  readonly id: number;
  readonly status: number;
  readonly data: Uint8Array | null;
  /** The data is not in the event: the applying machine's own host read has it. */
  readonly dataFromBackend: boolean;
  /** A write completed before it reached the disk (write-back). */
  readonly early: boolean;
  /** Every write up to this id had reached the disk when the host half made the event. */
  readonly appliedThrough: number | undefined;
}

/** A write completed to the guest that the disk may not hold yet (write-back). */
interface UnappliedWrite {
  readonly id: number;
  readonly offsetBytes: number;
  readonly data: Uint8Array;
}

/** The host half's read of one request, kept for a completion that comes without its data. */
interface HostRead {
  settled: boolean;
  /** The execution point at which the read was issued. */
  readonly issuedAtIcount: number;
  /** The bytes read, or null when the read failed (or has not settled). */
  data: Uint8Array | null;
  /** Settles (never rejects) once the read did. */
  done: Promise<void>;
}

/** The release promises of a request's outputs (`env.output`), host half only. */
interface Releases {
  readonly write: Promise<void>;
  readonly flush: Promise<void>;
}

export class VirtioBlock implements VirtioDevice {
  readonly kind = 'virtio-blk';
  readonly deviceId = VirtioDeviceId.block;
  readonly queueSizesMax = [VIRTIO_BLOCK_QUEUE_SIZE_MAX] as const;
  readonly deviceFeatures: bigint;
  readonly backend: BlockBackend;
  /** Whether read completions carry their data (see {@link VirtioBlockOptions.logReadData}). */
  logReadData: boolean;

  readonly #config = new Uint8Array(VIRTIO_BLOCK_CONFIG_SIZE_BYTES);
  readonly #serial: Uint8Array;
  readonly #capacitySectors: number;
  #context: VirtioDeviceContext | undefined;
  #nextRequestId = 1;
  #inFlight: InFlightRequest[] = [];
  /** Write-back: completed writes the disk may not hold yet, oldest first (state). */
  #unapplied: UnappliedWrite[] = [];
  readonly #writeBack: boolean;
  /**
   * Host half: every write up to this id is on the backend, or its failure was reported to the
   * guest (in its own completion, or by a flush that failed). Completions carry it.
   */
  #appliedThrough = 0;
  /** Host half: the highest write id the backend finished, well or not (in request order). */
  #processedThrough = 0;
  /**
   * Host half, write-back: a write completed early failed on the backend and no flush said so
   * yet. `#appliedThrough` stays below it meanwhile, so it stays in `unapplied` (a new primary
   * writes it again); the next flush fails.
   */
  #failureUnreported = false;
  /** Host half, write-back: bytes of writes completed early and not yet on the backend. */
  #earlyBytes = 0;
  /** True when requests were left in the ring because the bounce buffers were full. */
  #stalled = false;
  /** The host half's chain of IO: one request at a time, in order. */
  #hostWork: Promise<void> = Promise.resolve();
  #hostIo: VirtioBlockHostIo;
  /** Host half: the release of each in-flight write's and flush's outputs, by request id. */
  readonly #releases = new Map<number, Releases>();
  /** Host half: this machine's own reads of in-flight read requests, by request id. */
  readonly #hostReads = new Map<number, HostRead>();
  #disposed = false;
  /** Settles on dispose, so a write held forever (a halted primary) no longer holds the chain. */
  readonly #disposal: Promise<void>;
  #signalDisposal: () => void = () => {};

  constructor(options: VirtioBlockOptions) {
    this.backend = options.backend;
    this.#hostIo = checkHostIo(
      options.hostIo ?? (options.issueHostIo === undefined || options.issueHostIo ? 'all' : 'none'),
    );
    this.logReadData = options.logReadData ?? true;
    this.#writeBack = options.writeBack ?? false;
    this.#disposal = new Promise((resolve) => {
      this.#signalDisposal = resolve;
    });
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

  /** What the host half does (see {@link VirtioBlockHostIo}). */
  get hostIo(): VirtioBlockHostIo {
    return this.#hostIo;
  }

  /**
   * Changes what the host half does from the next request on; requests already taken keep what
   * was done for them (use {@link VirtioBlock.onGoLive} to reissue them).
   */
  set hostIo(mode: VirtioBlockHostIo) {
    this.#hostIo = checkHostIo(mode);
  }

  /** Same as setting {@link VirtioBlock.hostIo}. */
  setHostIo(mode: VirtioBlockHostIo): void {
    this.hostIo = mode;
  }

  /** @deprecated Use {@link VirtioBlock.hostIo}: true when it is not `none`; true sets `all`, false `none`. */
  get issueHostIo(): boolean {
    return this.#hostIo !== 'none';
  }

  set issueHostIo(on: boolean) {
    this.#hostIo = on ? 'all' : 'none';
  }

  /**
   * A promise that settles when the host half has no IO left to do (for tests and shutdown). A
   * write whose output is held keeps it pending until the output is released.
   */
  hostIdle(): Promise<void> {
    return this.#hostWork;
  }

  /**
   * A promise that settles once every host read issued so far has settled (the reads a
   * completion without data waits for; see {@link VirtioBlock.isReadyFor}). Never rejects.
   */
  hostReadsSettled(): Promise<void> {
    return Promise.all([...this.#hostReads.values()].map((read) => read.done)).then(() => {});
  }

  /**
   * Whether `event` can be applied now. False only for a successful read's completion that
   * carries no data (`dataFromBackend`) while this machine's own read of the request has not
   * settled: wait for {@link VirtioBlock.hostReadsSettled} and ask again. A read this machine never
   * issued (its request was restored from a snapshot) is issued here. Any other event — and a
   * completion this device cannot serve at all (host IO `none`) — is ready: applying it decides.
   */
  whenReadyFor(event: DeviceEventPayload): Promise<void> | undefined {
    return this.isReadyFor(event) ? undefined : this.hostReadsSettled();
  }

  /** The icount at which the oldest of this machine's own reads still pending was issued. */
  hostWorkPendingSince(): number | undefined {
    let oldest: number | undefined;
    for (const read of this.#hostReads.values()) {
      if (!read.settled && (oldest === undefined || read.issuedAtIcount < oldest))
        oldest = read.issuedAtIcount;
    }
    return oldest;
  }

  isReadyFor(event: DeviceEventPayload): boolean {
    if (event.type !== BLOCK_REQUEST_COMPLETED || this.#context === undefined || !this.#context.isLive())
      return true;
    const completion = parseCompletion(event.data);
    if (
      completion === null ||
      completion.status !== VirtioBlockStatus.ok ||
      completion.data !== null ||
      !completion.dataFromBackend
    )
      return true;
    const request = this.#pending(completion.id);
    if (request === undefined || request.operation !== 'read') return true;
    const read = this.#hostReads.get(request.id);
    if (read !== undefined) return read.settled;
    if (this.#hostIo === 'none') return true;
    this.#issue(request);
    return false;
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
    // Writes already taken still reach the disk once released: they were output.
    this.#inFlight = [];
    this.#stalled = false;
    this.#forgetHostHalf();
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
    const request = this.#pending(completion.id);
    if (request === undefined) return;
    if (request.operation === 'read' && completion.status === VirtioBlockStatus.ok) {
      const data =
        completion.data === null && completion.dataFromBackend
          ? this.#localReadData(request)
          : completion.data;
      if (data === null || data.length !== request.lengthBytes) {
        request.status = VirtioBlockStatus.ioError;
      } else {
        request.status = VirtioBlockStatus.ok;
        request.data = data;
      }
    } else {
      request.status =
        completion.status === VirtioBlockStatus.ok ? VirtioBlockStatus.ok : VirtioBlockStatus.ioError;
      if (
        completion.early &&
        request.operation === 'write' &&
        request.status === VirtioBlockStatus.ok &&
        request.writeData !== null &&
        // A primary never has this much (see the cap's comment); a log that says so is ignored.
        unappliedBytes(this.#unapplied) + request.writeData.length <= UNAPPLIED_BYTES_MAX
      ) {
        this.#unapplied.push({ id: request.id, offsetBytes: request.offsetBytes, data: request.writeData });
      }
    }
    if (completion.appliedThrough !== undefined) {
      const through = completion.appliedThrough;
      this.#unapplied = this.#unapplied.filter((write) => write.id > through);
    }
    this.#completeInOrder();
  }

  /** Write-back: the completed writes the disk may not hold yet (id, offset, length), oldest first. */
  unappliedWrites(): { id: number; offsetBytes: number; lengthBytes: number }[] {
    return this.#unapplied.map((write) => ({
      id: write.id,
      offsetBytes: write.offsetBytes,
      lengthBytes: write.data.length,
    }));
  }

  onGoLive(): void {
    this.#hostIo = 'all';
    // Completed writes the old primary may not have put on the disk, and the requests in flight,
    // all in request order: a write completed early can follow one still in flight.
    const work: { id: number; issue: () => void }[] = [
      ...this.#unapplied.map((write) => ({
        id: write.id,
        issue: () => {
          this.#hostWork = this.#hostWork.then(() =>
            this.#applyWrite(write.id, write.offsetBytes, write.data),
          );
        },
      })),
      ...this.#inFlight
        .filter((request) => request.status === null)
        .map((request) => ({ id: request.id, issue: () => this.#issue(request) })),
    ];
    work.sort((a, b) => a.id - b.id);
    for (const item of work) item.issue();
  }

  dispose(): void {
    // Writes still held are never released now: they must not reach the disk.
    this.#disposed = true;
    this.#signalDisposal();
    const backend = this.backend;
    void this.#hostWork.then(() => backend.close?.()).catch(() => {});
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      // Version 1's layout while nothing is unapplied (always, without a write cache): state
      // hashes and transfers stay as they were for recordings and peers of older versions.
      version: this.#unapplied.length > 0 ? STATE_VERSION : 1,
      state: {
        nextRequestId: this.#nextRequestId,
        stalled: this.#stalled,
        ...(this.#unapplied.length > 0
          ? {
              unapplied: this.#unapplied.map((write) => ({
                id: write.id,
                offsetBytes: write.offsetBytes,
                data: write.data.slice(),
              })),
            }
          : {}),
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
    const version = STATE_VERSIONS_READ.includes(section?.version as number)
      ? (section.version as number)
      : STATE_VERSION;
    const fields = StateReader.open(section, this.kind, version);
    const nextRequestId = fields.integer('nextRequestId', Number.MAX_SAFE_INTEGER);
    const stalled = fields.boolean('stalled');
    const unapplied =
      version < 2
        ? []
        : fields.array('unapplied', UNAPPLIED_WRITES_MAX, (value, path) => readUnappliedWrite(value, path));
    this.#checkUnapplied(unapplied, nextRequestId);
    const inFlight = fields.array('inFlight', VIRTIO_BLOCK_QUEUE_SIZE_MAX, (value, path) =>
      readRequest(value, path),
    );
    this.#nextRequestId = nextRequestId;
    this.#stalled = stalled;
    this.#unapplied = unapplied;
    this.#inFlight = inFlight;
    // The restored requests' outputs were made on the machine that took them; nothing is held.
    this.#forgetHostHalf();
  }

  /** Restored completed writes must be ones this disk could have taken: in order, in range, bounded. */
  #checkUnapplied(unapplied: readonly UnappliedWrite[], nextRequestId: number): void {
    let previousId = 0;
    for (const write of unapplied) {
      const end = write.offsetBytes + write.data.length;
      if (write.id <= previousId || write.id >= nextRequestId)
        throw new SnapshotError(`virtio-blk: unapplied write ${write.id} is out of order`);
      if (
        write.data.length === 0 ||
        write.offsetBytes % VIRTIO_BLOCK_SECTOR_BYTES !== 0 ||
        write.data.length % VIRTIO_BLOCK_SECTOR_BYTES !== 0 ||
        end > this.#capacitySectors * VIRTIO_BLOCK_SECTOR_BYTES
      )
        throw new SnapshotError(`virtio-blk: unapplied write ${write.id} does not fit the disk`);
      previousId = write.id;
    }
    if (unappliedBytes(unapplied) > UNAPPLIED_BYTES_MAX)
      throw new SnapshotError('virtio-blk: more unapplied writes than a primary keeps');
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
      this.#output(request);
      if (request.status === null) this.#issue(request);
    }
  }

  /**
   * Door 3 for a request just taken, on the guest's path: a write and a flush reach the outside
   * world (a shared disk), so they are outputs; the host half acts once they are released.
   */
  #output(request: InFlightRequest): void {
    if (request.operation !== 'write' && request.operation !== 'flush') return;
    const env = this.#requireContext().env;
    const write =
      request.operation === 'write'
        ? env.output(BLOCK_OUTPUT_DISK_WRITE, diskWriteSummary(request.offsetBytes, request.writeData!))
        : RELEASED;
    const flush =
      request.operation === 'flush' || request.flushAfter
        ? env.output(BLOCK_OUTPUT_DISK_FLUSH, NO_BYTES)
        : RELEASED;
    this.#releases.set(request.id, { write, flush });
  }

  /** The in-flight request `id` that still waits for its outcome. */
  #pending(id: number): InFlightRequest | undefined {
    return this.#inFlight.find((candidate) => candidate.id === id && candidate.status === null);
  }

  /**
   * The data of a successful read whose completion left it to this machine's own host read. Not
   * having it — no local read, a read not yet settled, a read that failed — is a divergence:
   * the primary read the data, this machine cannot give the guest the same.
   */
  #localReadData(request: InFlightRequest): Uint8Array {
    const read = this.#hostReads.get(request.id);
    const icount = this.#requireContext().env.icount();
    const expected = `the ${request.lengthBytes} bytes at offset ${request.offsetBytes} of read request ${request.id}, which the log leaves to this machine's own disk read`;
    if (read === undefined) {
      throw new DivergenceError(
        'missing-entry',
        icount,
        expected,
        this.#hostIo === 'none'
          ? 'a device that reads nothing (host IO mode "none")'
          : 'no local read of that request',
        'a backup of a primary with logReadData false must read the disk itself (hostIo "reads" or "all")',
      );
    }
    if (!read.settled) {
      throw new DivergenceError(
        'missing-entry',
        icount,
        expected,
        'a local read that has not completed yet',
        'apply the event only once isReadyFor answers true (await hostReadsSettled())',
      );
    }
    if (read.data === null) {
      throw new DivergenceError(
        'missing-entry',
        icount,
        expected,
        `a local read that failed ${VIRTIO_BLOCK_BACKUP_READ_TRIES} times, where the primary read succeeded`,
      );
    }
    return read.data;
  }

  /** Drops the host half's records (held releases, local reads): their requests are gone. */
  #forgetHostHalf(): void {
    this.#releases.clear();
    this.#hostReads.clear();
  }

  /**
   * Write data of the requests in flight. The completed writes not known applied are bounded on
   * their own (`UNAPPLIED_BYTES_MAX`): counted here, they could stall a device with nothing in
   * flight to complete.
   */
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
    switch (type) {
      case VirtioBlockRequestType.in:
      case VirtioBlockRequestType.out: {
        const isWrite = type === VirtioBlockRequestType.out;
        const lengthBytes = isWrite ? chain.readableBytes - HEADER_BYTES : chain.writableBytes - 1;
        const offsetBytes = sector * VIRTIO_BLOCK_SECTOR_BYTES;
        if (isWrite && this.backend.readOnly) return this.#answered(chain, VirtioBlockStatus.ioError);
        if (
          lengthBytes % VIRTIO_BLOCK_SECTOR_BYTES !== 0 ||
          lengthBytes > VIRTIO_BLOCK_REQUEST_BYTES_MAX ||
          sector + lengthBytes / VIRTIO_BLOCK_SECTOR_BYTES > this.#capacitySectors
        ) {
          return this.#answered(chain, VirtioBlockStatus.ioError);
        }
        return this.#newRequest(
          chain,
          isWrite ? 'write' : 'read',
          offsetBytes,
          lengthBytes,
          isWrite ? queue.readReadable(chain, lengthBytes, HEADER_BYTES) : null,
          isWrite && !this.#flushNegotiated(),
          null,
          null,
        );
      }
      case VirtioBlockRequestType.flush:
        return this.#newRequest(chain, 'flush', 0, 0, null, false, null, null);
      case VirtioBlockRequestType.getId:
        return this.#answered(
          chain,
          VirtioBlockStatus.ok,
          this.#serial.slice(0, Math.min(VIRTIO_BLOCK_ID_BYTES, chain.writableBytes - 1)),
        );
      default:
        return this.#answered(chain, VirtioBlockStatus.unsupported);
    }
  }

  /**
   * Every request taken from the queue is built by this one literal, so all share one shape: object
   * spreads with overridden fields made V8 migrate each request's hidden class (4.5 % of a kv VM
   * thread's CPU). `readRequest` (a snapshot's requests) keeps the same key order.
   */
  #newRequest(
    chain: DescriptorChain,
    operation: BlockOperation,
    offsetBytes: number,
    lengthBytes: number,
    writeData: Uint8Array | null,
    flushAfter: boolean,
    status: number | null,
    data: Uint8Array | null,
  ): InFlightRequest {
    return {
      id: this.#nextRequestId++,
      headIndex: chain.headIndex,
      operation,
      offsetBytes,
      lengthBytes,
      writeData,
      flushAfter,
      writable: chain.writable,
      writableBytes: chain.writableBytes,
      status,
      data,
    };
  }

  /** A request answered at once (no IO): its outcome is known as it is taken. */
  #answered(chain: DescriptorChain, status: number, data: Uint8Array | null = null): InFlightRequest {
    return this.#newRequest(chain, 'answered', 0, 0, null, false, status, data);
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
        this.#releases.delete(request.id);
        this.#hostReads.delete(request.id);
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

  /**
   * Host half: queue the request's IO behind the ones already issued, as the IO mode says. A
   * write or flush first waits for its output's release. Never rejects.
   */
  #issue(request: InFlightRequest): void {
    const mode = this.#hostIo;
    const { id, operation } = request;
    if (mode === 'none' || (mode === 'reads' && operation !== 'read')) return;
    const env = this.#requireContext().env;
    const inject = mode === 'all';
    if (operation === 'read') {
      const read: HostRead = { settled: false, issuedAtIcount: env.icount(), data: null, done: RELEASED };
      this.#hostReads.set(id, read);
      this.#hostWork = this.#hostWork.then(() => this.#hostRead(request, read, env, inject));
      read.done = this.#hostWork;
      return;
    }
    const releases = this.#releases.get(id) ?? { write: RELEASED, flush: RELEASED };
    if (
      this.#writeBack &&
      operation === 'write' &&
      !request.flushAfter &&
      inject &&
      this.#earlyBytes + request.lengthBytes <= VIRTIO_BLOCK_WRITE_BACK_BYTES_MAX
    ) {
      this.#earlyBytes += request.lengthBytes;
      // A volatile write cache: the guest hears now; the disk gets the data once it is released.
      env.inject({
        type: BLOCK_REQUEST_COMPLETED,
        data: {
          id,
          status: VirtioBlockStatus.ok,
          data: null,
          early: true,
          appliedThrough: this.#appliedThrough,
        },
      });
      this.#hostWork = this.#hostWork.then(async () => {
        if (!(await this.#released(releases.write))) return;
        await this.#applyWrite(id, request.offsetBytes, request.writeData!);
        this.#earlyBytes -= request.lengthBytes;
      });
      return;
    }
    this.#hostWork = this.#hostWork.then(() => this.#hostWrite(request, releases, env));
  }

  /**
   * Host half, write-back: one completed write onto the disk. A failure cannot reach the guest's
   * completion any more; the next flush reports it. Never rejects.
   */
  async #applyWrite(id: number, offsetBytes: number, data: Uint8Array): Promise<void> {
    if (this.#disposed) return;
    let ok = true;
    try {
      await this.backend.write(offsetBytes, data);
    } catch {
      ok = false;
    }
    this.#writeDone(id, ok);
  }

  /** Host half: the backend finished write `id`; `reported` false for a failure the guest does not know of. */
  #writeDone(id: number, reported: boolean): void {
    this.#processedThrough = Math.max(this.#processedThrough, id);
    if (!reported) this.#failureUnreported = true;
    if (!this.#failureUnreported) this.#appliedThrough = this.#processedThrough;
  }

  /** Host half: a flush's completion tells the guest of every failure so far. */
  #failuresReported(): void {
    this.#failureUnreported = false;
    this.#appliedThrough = this.#processedThrough;
  }

  async #hostRead(
    request: InFlightRequest,
    read: HostRead,
    env: VirtioDeviceContext['env'],
    inject: boolean,
  ): Promise<void> {
    const { id, offsetBytes, lengthBytes } = request;
    if (this.#disposed) return;
    let status: number = VirtioBlockStatus.ok;
    // The primary's failure is the guest's to see; a backup's own read is tried again.
    const tries = inject ? 1 : VIRTIO_BLOCK_BACKUP_READ_TRIES;
    for (let attempt = 1; ; attempt++) {
      try {
        read.data = (await this.backend.read(offsetBytes, lengthBytes)).slice();
        status = VirtioBlockStatus.ok;
        break;
      } catch {
        read.data = null;
        status = VirtioBlockStatus.ioError;
        if (attempt >= tries || this.#disposed) break;
      }
    }
    read.settled = true;
    if (!inject) return;
    env.inject({
      type: BLOCK_REQUEST_COMPLETED,
      data: this.#withProgress(
        this.logReadData
          ? { id, status, data: read.data }
          : { id, status, data: null, dataFromBackend: true },
      ),
    });
  }

  async #hostWrite(
    request: InFlightRequest,
    releases: Releases,
    env: VirtioDeviceContext['env'],
  ): Promise<void> {
    const { id, operation, offsetBytes, writeData, flushAfter } = request;
    let status: number = VirtioBlockStatus.ok;
    let flushed = false;
    try {
      if (operation === 'write') {
        if (!(await this.#released(releases.write))) return;
        try {
          await this.backend.write(offsetBytes, writeData!);
        } finally {
          // Its own completion tells the guest how it went.
          this.#writeDone(id, true);
        }
      }
      if (operation === 'flush' || flushAfter) {
        if (!(await this.#released(releases.flush))) return;
        flushed = true;
        // A write completed early that failed on the disk: this flush cannot promise it.
        if (this.#failureUnreported) status = VirtioBlockStatus.ioError;
        await this.backend.flush();
      }
    } catch {
      status = VirtioBlockStatus.ioError;
    }
    if (flushed) this.#failuresReported();
    env.inject({ type: BLOCK_REQUEST_COMPLETED, data: this.#withProgress({ id, status, data: null }) });
  }

  /** Write-back: a completion also says how far the disk has the writes (`appliedThrough`). */
  #withProgress(completion: { readonly [key: string]: PlainValue }): PlainValue {
    return this.#writeBack ? { ...completion, appliedThrough: this.#appliedThrough } : completion;
  }

  /** Waits for an output's release; false when the device was disposed first (act no more). */
  async #released(release: Promise<void>): Promise<boolean> {
    await Promise.race([release, this.#disposal]);
    return !this.#disposed;
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
  const appliedThrough = record.appliedThrough;
  return {
    id,
    status,
    data: bytes instanceof Uint8Array ? bytes : null,
    dataFromBackend: record.dataFromBackend === true,
    early: record.early === true,
    appliedThrough:
      typeof appliedThrough === 'number' && Number.isSafeInteger(appliedThrough) && appliedThrough >= 0
        ? appliedThrough
        : undefined,
  };
}

/** Completed writes a saved state may hold at most (each was a request of the queue once). */
const UNAPPLIED_WRITES_MAX = 1 << 20;
/**
 * Bytes of completed writes not known applied a device keeps at most. A primary keeps at most
 * what it completed early since the last completion reported progress: under
 * `VIRTIO_BLOCK_WRITE_BACK_BYTES_MAX` plus one request.
 */
const UNAPPLIED_BYTES_MAX = 2 * VIRTIO_BLOCK_WRITE_BACK_BYTES_MAX;

function unappliedBytes(writes: readonly UnappliedWrite[]): number {
  let total = 0;
  for (const write of writes) total += write.data.length;
  return total;
}

function readUnappliedWrite(value: PlainValue, path: string): UnappliedWrite {
  const fields = StateReader.of(value, path);
  return {
    id: fields.integer('id', Number.MAX_SAFE_INTEGER),
    offsetBytes: fields.integer('offsetBytes', Number.MAX_SAFE_INTEGER),
    data: fields.bytes('data', VIRTIO_BLOCK_REQUEST_BYTES_MAX),
  };
}

function checkHostIo(mode: VirtioBlockHostIo): VirtioBlockHostIo {
  if (!HOST_IO_MODES.includes(mode)) throw new RangeError(`virtio-blk: unknown host IO mode ${String(mode)}`);
  return mode;
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
