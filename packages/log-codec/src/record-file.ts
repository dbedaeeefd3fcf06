import type { LogEntry, PlainValue } from '@ftvm/core';
import { isPlainValue, LogFormatError } from '@ftvm/core';
import { encodeFrame, type Frame, FrameType } from './frame.js';
import { LogDecoder, LogEncoder, messagePack } from './log-stream.js';

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
 * still read up to its last whole frame. Index points let a reader start near an icount.
 */

export const RECORD_FILE_FORMAT = 'ftvm-record';
export const RECORD_FILE_VERSION = 1;
/** An index point is written every this many entries frames. */
export const INDEX_INTERVAL_FRAMES = 16;

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

  /** The header frame: the first bytes of the file. */
  start(header: Omit<RecordHeader, 'format' | 'version'>): Uint8Array {
    const full: RecordHeader = { format: RECORD_FILE_FORMAT, version: RECORD_FILE_VERSION, ...header };
    return this.emit(encodeFrame(FrameType.recordHeader, messagePack.pack(full)));
  }

  /** Adds an entry; returns bytes to append when a frame filled up (else an empty array). */
  append(entry: LogEntry): Uint8Array {
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

  /** Flushes and writes the trailer: the last bytes of the file. */
  finish(exitStatus: number | null): Uint8Array {
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
  /** True when the file ends without a trailer or inside a frame (a crash cut it short). */
  readonly truncated: boolean;
  /** Bytes at the end that did not make a whole frame. */
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
    !(trailer?.exitStatus === null || Number.isInteger(trailer?.exitStatus))
  ) {
    throw new LogFormatError('malformed-entry', 'malformed record trailer', frame.offset);
  }
  return trailer as RecordTrailer;
}

/**
 * Reads a record file. Damage inside a whole frame (a bad checksum, a malformed entry) is an
 * error; a file that simply stops (a crash) gives everything up to its last whole frame, marked
 * `truncated`.
 */
export function readRecordFile(bytes: Uint8Array): RecordFileContents {
  let header: RecordHeader | undefined;
  let trailer: RecordTrailer | undefined;
  const index: IndexPoint[] = [];
  const decoder = new LogDecoder((frame) => {
    if (header === undefined) {
      if (frame.type !== FrameType.recordHeader) {
        throw new LogFormatError('bad-magic', 'record file does not start with a header', frame.offset);
      }
      header = parseHeader(frame);
      return;
    }
    if (trailer !== undefined)
      throw new LogFormatError('malformed-entry', 'data after the trailer', frame.offset);
    if (frame.type === FrameType.indexPoint) index.push(parseIndexPoint(frame));
    else if (frame.type === FrameType.recordTrailer) trailer = parseTrailer(frame);
    else throw new LogFormatError('malformed-entry', `unexpected frame of type ${frame.type}`, frame.offset);
  });
  // A cut inside the last frame leaves it pending in the decoder: everything before it is kept.
  const entries = decoder.push(bytes);
  if (header === undefined) {
    throw new LogFormatError('truncated', 'record file is too short to hold its header', 0);
  }
  if (entries.length > 0 && (entries[0] as LogEntry).seq !== 0) {
    throw new LogFormatError('out-of-order', 'record file does not start at entry 0', 0);
  }
  if (trailer && trailer.entryCount !== entries.length) {
    throw new LogFormatError(
      'malformed-entry',
      `trailer counts ${trailer.entryCount} entries, file holds ${entries.length}`,
    );
  }
  const discardedBytes = bytes.length - decoder.offset;
  return { header, entries, index, trailer, truncated: trailer === undefined, discardedBytes };
}
