import type { LogEntry, PlainValue } from '@ftvm/core';
import { isPlainValue, LogFormatError } from '@ftvm/core';
import { crc32c } from './checksum.js';
import {
  encodeFrame,
  FRAME_FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  FRAME_MAGIC_0,
  FRAME_MAGIC_1,
  FRAME_PAYLOAD_BYTES_MAX,
  type Frame,
  FrameDecoder,
  FrameType,
} from './frame.js';
import { decodeEntriesPayload, LogEncoder, messagePack } from './log-stream.js';

/**
 * The record file: a recording of one run, to replay later.
 *
 *     header frame      (type 2)  RecordHeader as MessagePack
 *     entries frames    (type 1)  the log
 *     index frames      (type 3)  [icount, seq, offset of the entries frame before it, snapshot | null]
 *     ...
 *     trailer frame     (type 4)  RecordTrailer as MessagePack
 *
 * Every frame is checksummed. A file cut short by a crash (no trailer, a partial last frame) is
 * still read up to its last whole frame; a file damaged anywhere is refused (see `readRecordFile`
 * for how the two are told apart). Index points let a reader start near an icount.
 */

export const RECORD_FILE_FORMAT = 'ftvm-record';
export const RECORD_FILE_VERSION = 1;
/** An index point is written every this many entries frames. */
export const INDEX_INTERVAL_FRAMES = 16;
/** The most disks a recording describes: the board has 8 virtio-mmio slots. */
export const RECORD_DISKS_MAX = 8;

export interface RecordHeader {
  readonly format: typeof RECORD_FILE_FORMAT;
  readonly version: number;
  /** The machine configuration (RAM, clock mode, devices) the run used. */
  readonly machine: PlainValue;
  /**
   * The guest image: its file name, a digest of its bytes (`sha256:…`) and, so that a replay needs
   * nothing but the file, the bytes themselves.
   */
  readonly image: { readonly name: string; readonly digest: string; readonly bytes?: Uint8Array };
  /** The firmware the image was booted through (QEMU's `-bios`), when there was one: as `image`. */
  readonly firmware?: { readonly name: string; readonly digest: string; readonly bytes?: Uint8Array };
  /** Disks attached, each with a digest of its contents at the start. */
  readonly disks: readonly { readonly name: string; readonly digest: string }[];
  /** Free-form: the tool and version that wrote it. */
  readonly writer: string;
}

export interface IndexPoint {
  readonly icount: number;
  readonly seq: number;
  /** File offset of the entries frame that starts with entry `seq`. */
  readonly offset: number;
  /** Where a snapshot taken at this point is kept, if one was. */
  readonly snapshot: string | null;
}

export interface RecordTrailer {
  readonly entryCount: number;
  readonly lastIcount: number;
  /** The guest's exit status, or null when the run ended otherwise. */
  readonly exitStatus: number | null;
}

/** Builds a record file as a sequence of byte chunks to append to a file, in order. */
export class RecordFileWriter {
  private readonly encoder = new LogEncoder();
  private offset = 0;
  private framesSinceIndex = INDEX_INTERVAL_FRAMES - 1;
  private entryCount = 0;
  private lastIcount = 0;
  private pendingFirst: { seq: number; icount: number } | undefined;
  /** The exit status of the power-off entry, once one was appended. */
  private stopExitStatus: number | undefined;

  /** The header frame: the first bytes of the file. */
  start(header: Omit<RecordHeader, 'format' | 'version'>): Uint8Array {
    if (header.disks.length > RECORD_DISKS_MAX) {
      throw new LogFormatError('oversized', `${header.disks.length} disks, at most ${RECORD_DISKS_MAX}`);
    }
    const full: RecordHeader = { format: RECORD_FILE_FORMAT, version: RECORD_FILE_VERSION, ...header };
    return this.emit(encodeFrame(FrameType.recordHeader, messagePack.pack(full)));
  }

  /** Adds an entry; returns bytes to append when a frame filled up (else an empty array). */
  append(entry: LogEntry): Uint8Array {
    // The reader refuses a recording that goes on after its power-off: never write one.
    if (this.stopExitStatus !== undefined) {
      throw new LogFormatError('out-of-order', `log entry ${entry.seq} appended after the power-off`);
    }
    if (entry.kind === 'stop') this.stopExitStatus = entry.exitStatus;
    this.pendingFirst ??= { seq: entry.seq, icount: entry.icount };
    this.entryCount = entry.seq + 1;
    this.lastIcount = entry.icount;
    const frame = this.encoder.append(entry);
    return frame ? this.emitEntries(frame) : new Uint8Array(0);
  }

  /** Closes the open entries frame (call it before the host might crash); bytes to append. */
  flush(): Uint8Array {
    const frame = this.encoder.flush();
    return frame ? this.emitEntries(frame) : new Uint8Array(0);
  }

  /**
   * Flushes and writes the trailer: the last bytes of the file. `exitStatus` must be the power-off
   * entry's, or null when the log has none (the reader checks they agree).
   */
  finish(exitStatus: number | null): Uint8Array {
    if (exitStatus !== (this.stopExitStatus ?? null)) {
      throw new LogFormatError(
        'malformed-entry',
        `trailer exit status ${String(exitStatus)} but the log's power-off says ${String(this.stopExitStatus ?? null)}`,
      );
    }
    const rest = this.flush();
    const trailer: RecordTrailer = { entryCount: this.entryCount, lastIcount: this.lastIcount, exitStatus };
    const trailerFrame = this.emit(encodeFrame(FrameType.recordTrailer, messagePack.pack(trailer)));
    const bytes = new Uint8Array(rest.length + trailerFrame.length);
    bytes.set(rest);
    bytes.set(trailerFrame, rest.length);
    return bytes;
  }

  private emitEntries(frame: Uint8Array): Uint8Array {
    const first = this.pendingFirst as { seq: number; icount: number };
    this.pendingFirst = undefined;
    const frameOffset = this.offset;
    this.emit(frame);
    if (++this.framesSinceIndex < INDEX_INTERVAL_FRAMES) return frame;
    // The index point follows the entries frame it points back at.
    this.framesSinceIndex = 0;
    const index = this.emit(
      encodeFrame(FrameType.indexPoint, messagePack.pack([first.icount, first.seq, frameOffset, null])),
    );
    const bytes = new Uint8Array(frame.length + index.length);
    bytes.set(frame);
    bytes.set(index, frame.length);
    return bytes;
  }

  private emit(bytes: Uint8Array): Uint8Array {
    this.offset += bytes.length;
    return bytes;
  }
}

export interface RecordFileContents {
  readonly header: RecordHeader;
  readonly entries: LogEntry[];
  readonly index: IndexPoint[];
  /** Present when the file was finished properly. */
  readonly trailer: RecordTrailer | undefined;
  /**
   * True when the file has no trailer and ends at or inside its last frame: a crash cut it short.
   * A file damaged anywhere is never read as cut short (see {@link readRecordFile}).
   */
  readonly truncated: boolean;
  /** Bytes at the end that did not make a whole frame (a frame the crash cut). */
  readonly discardedBytes: number;
}

function unpackPlain(frame: Frame, what: string): PlainValue {
  let value: unknown;
  try {
    value = messagePack.unpack(frame.payload);
  } catch (error) {
    throw new LogFormatError('malformed-entry', `${what} is not valid MessagePack`, frame.offset, {
      cause: error,
    });
  }
  if (!isPlainValue(value))
    throw new LogFormatError('malformed-entry', `${what} is not plain data`, frame.offset);
  return value;
}

function parseHeader(frame: Frame): RecordHeader {
  const header = unpackPlain(frame, 'record header') as Partial<RecordHeader> | null;
  if (header?.format !== RECORD_FILE_FORMAT) {
    throw new LogFormatError('bad-magic', 'not an ftvm record file', frame.offset);
  }
  if (header.version !== RECORD_FILE_VERSION) {
    throw new LogFormatError(
      'unsupported-version',
      `unsupported record file version ${String(header.version)}`,
      frame.offset,
    );
  }
  if (
    typeof header.image?.name !== 'string' ||
    typeof header.image.digest !== 'string' ||
    !(header.image.bytes === undefined || header.image.bytes instanceof Uint8Array) ||
    !Array.isArray(header.disks)
  ) {
    throw new LogFormatError('malformed-entry', 'record header lacks the image or disks', frame.offset);
  }
  const firmware = header.firmware as RecordHeader['firmware'] | null | undefined;
  if (
    firmware !== undefined &&
    (typeof firmware?.name !== 'string' ||
      typeof firmware.digest !== 'string' ||
      !(firmware.bytes === undefined || firmware.bytes instanceof Uint8Array))
  ) {
    throw new LogFormatError('malformed-entry', 'record header has a malformed firmware', frame.offset);
  }
  // A replay presents one device per disk: a disk with no slot would silently go missing.
  if (header.disks.length > RECORD_DISKS_MAX) {
    throw new LogFormatError(
      'malformed-entry',
      `record header describes ${header.disks.length} disks; a machine has room for ${RECORD_DISKS_MAX}`,
      frame.offset,
    );
  }
  for (const disk of header.disks as readonly unknown[]) {
    const { name, digest } = (disk ?? {}) as { name?: unknown; digest?: unknown };
    if (typeof name !== 'string' || typeof digest !== 'string') {
      throw new LogFormatError(
        'malformed-entry',
        'record header has a disk without a name or digest',
        frame.offset,
      );
    }
  }
  return header as RecordHeader;
}

function parseIndexPoint(frame: Frame): IndexPoint {
  const point = unpackPlain(frame, 'index point');
  if (
    !Array.isArray(point) ||
    point.length !== 4 ||
    !point.slice(0, 3).every((item) => Number.isSafeInteger(item) && (item as number) >= 0) ||
    !(point[3] === null || typeof point[3] === 'string')
  ) {
    throw new LogFormatError('malformed-entry', 'malformed index point', frame.offset);
  }
  const [icount, seq, offset, snapshot] = point as [number, number, number, string | null];
  return { icount, seq, offset, snapshot };
}

function parseTrailer(frame: Frame): RecordTrailer {
  const trailer = unpackPlain(frame, 'record trailer') as Partial<RecordTrailer> | null;
  if (
    !Number.isSafeInteger(trailer?.entryCount) ||
    !Number.isSafeInteger(trailer?.lastIcount) ||
    !(trailer?.exitStatus === null || Number.isSafeInteger(trailer?.exitStatus))
  ) {
    throw new LogFormatError('malformed-entry', 'malformed record trailer', frame.offset);
  }
  return trailer as RecordTrailer;
}

/** The trailer must say what the log says: its length, its last icount, its power-off. */
function checkTrailer(trailer: RecordTrailer, entries: readonly LogEntry[], offset: number): void {
  const last = entries.at(-1);
  if (trailer.entryCount !== entries.length) {
    throw new LogFormatError(
      'malformed-entry',
      `trailer counts ${trailer.entryCount} entries, file holds ${entries.length}`,
      offset,
    );
  }
  if (trailer.lastIcount !== (last?.icount ?? 0)) {
    throw new LogFormatError(
      'malformed-entry',
      `trailer's last icount ${trailer.lastIcount} is not the last entry's (${last?.icount ?? 0})`,
      offset,
    );
  }
  const exitStatus = last?.kind === 'stop' ? last.exitStatus : null;
  if (trailer.exitStatus !== exitStatus) {
    throw new LogFormatError(
      'malformed-entry',
      `trailer's exit status ${String(trailer.exitStatus)} is not the log's (${String(exitStatus)})`,
      offset,
    );
  }
}

/** Frame types that may follow the header of a record file. */
const BODY_FRAME_TYPES: ReadonlySet<number> = new Set([
  FrameType.entries,
  FrameType.indexPoint,
  FrameType.recordTrailer,
]);
/** A trailer's payload is three small numbers: a generous bound for recognising one. */
const TRAILER_PAYLOAD_BYTES_MAX = 256;
/**
 * Checksum work allowed on the bytes after the last whole frame (twice the largest frame): bounds
 * what a hostile file full of frame-like bytes costs.
 */
const PARTIAL_FRAME_CHECK_BYTES_MAX = 2 * FRAME_PAYLOAD_BYTES_MAX;

function readU32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0, true);
}

/**
 * True when the frame at `start`, taken to end at `end` (its length field set to match), has a
 * checksum that agrees.
 */
function checksumAgrees(bytes: Uint8Array, start: number, end: number): boolean {
  const head = bytes.slice(start, start + 8);
  new DataView(head.buffer).setUint32(4, end - start - FRAME_HEADER_BYTES, true);
  return crc32c(bytes.subarray(start + FRAME_HEADER_BYTES, end), crc32c(head)) === readU32(bytes, start + 8);
}

/** True when the bytes at `at` (as many as there are) could begin a frame of a record file's body. */
function couldStartFrame(bytes: Uint8Array, at: number): boolean {
  const available = bytes.length - at;
  return (
    bytes[at] === FRAME_MAGIC_0 &&
    (available < 2 || bytes[at + 1] === FRAME_MAGIC_1) &&
    (available < 3 || bytes[at + 2] === FRAME_FORMAT_VERSION) &&
    (available < 4 || BODY_FRAME_TYPES.has(bytes[at + 3] as number))
  );
}

/**
 * Checks the bytes after the last whole frame of a file without a trailer. A crash leaves there a
 * prefix of one frame. Damage that makes a frame seem to run past the end of the file (its length
 * field) leaves instead a whole frame, and whatever followed it up to the trailer. Throws unless
 * the bytes can only be the former:
 *
 * - they must begin like a body frame (entries, index point, trailer);
 * - no whole trailer frame may lie among them (the file was finished);
 * - at no frame boundary among them, nor at the end of the file, may the frame's checksum agree
 *   with its length field set to end there (the length is what was damaged).
 *
 * A crash-cut frame passes both last checks unless its payload itself holds such bytes, which only
 * a guest sending recordings around could make, and a checksum match by chance (2^-32 a try).
 */
function checkPartialLastFrame(bytes: Uint8Array, start: number): void {
  const end = bytes.length;
  // The frame decoder has checked its magic and version already: only its type is left to see.
  if (!couldStartFrame(bytes, start)) {
    throw new LogFormatError('malformed-entry', `unexpected frame of type ${bytes[start + 3]}`, start);
  }
  let budget = PARTIAL_FRAME_CHECK_BYTES_MAX;
  const spend = (bytesChecked: number) => {
    budget -= bytesChecked;
    if (budget < 0) {
      throw new LogFormatError(
        'malformed-entry',
        'the frame that runs past the end of the file holds too many frame-like bytes to tell a cut from damage',
        start,
      );
    }
  };
  for (let at = start + 1; at <= end; at++) {
    if (at < end && !couldStartFrame(bytes, at)) continue;
    if (end - at >= FRAME_HEADER_BYTES && bytes[at + 3] === FrameType.recordTrailer) {
      const length = FRAME_HEADER_BYTES + readU32(bytes, at + 4);
      if (length <= FRAME_HEADER_BYTES + TRAILER_PAYLOAD_BYTES_MAX && at + length <= end) {
        spend(length);
        if (checksumAgrees(bytes, at, at + length)) {
          throw new LogFormatError(
            'bad-checksum',
            `the frame at byte ${start} runs past the end of the file, yet a record trailer follows it at byte ${at}: the file is damaged, not cut short`,
            start,
          );
        }
      }
    }
    if (at - start < FRAME_HEADER_BYTES) continue;
    spend(at - start);
    if (checksumAgrees(bytes, start, at)) {
      throw new LogFormatError(
        'bad-checksum',
        `the frame at byte ${start} runs past the end of the file, yet its checksum says it ends at byte ${at}: its length field is damaged`,
        start,
      );
    }
  }
}

/**
 * Reads a record file. It is either whole (header, entries and index frames, a trailer that agrees
 * with the log, nothing after it) or cut short by a crash while recording (no trailer; it ends at
 * a frame boundary or inside a frame that `checkPartialLastFrame` accepts as cut), and then gives
 * everything up to its last whole frame, marked `truncated`. Anything else is damage: a
 * {@link LogFormatError}, and nothing else is thrown.
 */
export function readRecordFile(bytes: Uint8Array): RecordFileContents {
  const decoder = new FrameDecoder();
  const frames = decoder.push(bytes);
  let header: RecordHeader | undefined;
  let trailer: RecordTrailer | undefined;
  const index: IndexPoint[] = [];
  const entries: LogEntry[] = [];
  /** Where each entries frame starts, and its first entry: what index points must name. */
  const entriesFrames = new Map<number, { seq: number; icount: number }>();
  for (const frame of frames) {
    if (header === undefined) {
      if (frame.type !== FrameType.recordHeader) {
        throw new LogFormatError('bad-magic', 'record file does not start with a header', frame.offset);
      }
      header = parseHeader(frame);
      continue;
    }
    if (trailer !== undefined) {
      throw new LogFormatError('malformed-entry', 'data after the trailer', frame.offset);
    }
    switch (frame.type) {
      case FrameType.entries: {
        const last = entries.at(-1);
        if (last?.kind === 'stop') {
          throw new LogFormatError('out-of-order', 'log entries after the power-off', frame.offset);
        }
        const decoded = decodeEntriesPayload(frame.payload, entries.length, last?.icount ?? 0, frame.offset);
        const first = decoded[0] as LogEntry;
        entriesFrames.set(frame.offset, { seq: first.seq, icount: first.icount });
        const stopAt = decoded.findIndex((entry) => entry.kind === 'stop');
        if (stopAt >= 0 && stopAt < decoded.length - 1) {
          throw new LogFormatError('out-of-order', 'log entries after the power-off', frame.offset);
        }
        for (const entry of decoded) entries.push(entry);
        break;
      }
      case FrameType.indexPoint: {
        const point = parseIndexPoint(frame);
        const target = entriesFrames.get(point.offset);
        if (target?.seq !== point.seq || target.icount !== point.icount) {
          throw new LogFormatError(
            'malformed-entry',
            `index point names entry ${point.seq} at byte ${point.offset}, which no entries frame starts with`,
            frame.offset,
          );
        }
        index.push(point);
        break;
      }
      case FrameType.recordTrailer:
        trailer = parseTrailer(frame);
        checkTrailer(trailer, entries, frame.offset);
        break;
      default:
        throw new LogFormatError('malformed-entry', `unexpected frame of type ${frame.type}`, frame.offset);
    }
  }
  if (header === undefined) {
    // The header frame carries the guest image, so it is most of a small recording: say how much
    // of it the file holds.
    const declared = bytes.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + readU32(bytes, 4) : undefined;
    throw new LogFormatError(
      'truncated',
      declared === undefined
        ? `record file ends before its header does (${bytes.length} bytes, not even a frame header)`
        : `record file ends before its header does: the header frame needs ${declared} bytes, the file holds ${bytes.length}`,
      0,
    );
  }
  /** Where the last whole frame ends. */
  const end = decoder.offset;
  if (end < bytes.length) {
    if (trailer !== undefined) throw new LogFormatError('malformed-entry', 'data after the trailer', end);
    checkPartialLastFrame(bytes, end);
  }
  return {
    header,
    entries,
    index,
    trailer,
    truncated: trailer === undefined,
    discardedBytes: bytes.length - end,
  };
}
