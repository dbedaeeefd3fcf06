import type { LogEntry } from '@ftvm/core';
import { LogFormatError } from '@ftvm/core';
import { Packr } from 'msgpackr';
import { type CompactEntry, checkNames, compactEntry, expandEntry, NameTable } from './entries.js';
import { encodeFrame, type Frame, FrameDecoder, FrameType } from './frame.js';

/** Plain MessagePack: no msgpackr records or extensions, so other implementations can read it. */
export const messagePack = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'number',
});

/** Entries per frame before the encoder closes it on its own. */
export const FRAME_ENTRIES_MAX = 4096;
/** The most entries a decoder accepts in one frame (hostile input bound). */
export const DECODE_FRAME_ENTRIES_MAX = 65_536;

/**
 * Batches log entries into frames. Entries must come in order: `seq` consecutive from the first,
 * icount never decreasing. `flush()` closes the current frame and returns it; a frame also closes
 * by itself at FRAME_ENTRIES_MAX entries (then `append` returns it).
 *
 * The payload of an entries frame is `[firstSeq, baseIcount, names, ...compactEntries]`.
 */
export class LogEncoder {
  private pending: CompactEntry[] = [];
  private names = new NameTable();
  private firstSeq = 0;
  private baseIcount = 0;
  private previousIcount = 0;
  private nextSeq: number | undefined;

  /** Adds an entry; returns a finished frame when this entry filled one. */
  append(entry: LogEntry): Uint8Array | undefined {
    if (this.nextSeq !== undefined && entry.seq !== this.nextSeq) {
      throw new LogFormatError('out-of-order', `log entry ${entry.seq} appended after ${this.nextSeq - 1}`);
    }
    if (this.pending.length > 0 && entry.icount < this.previousIcount) {
      throw new LogFormatError(
        'out-of-order',
        `log entry ${entry.seq}: icount ${entry.icount} goes backwards`,
      );
    }
    if (this.pending.length === 0) {
      this.firstSeq = entry.seq;
      this.baseIcount = entry.icount;
      this.previousIcount = entry.icount;
    }
    this.pending.push(compactEntry(entry, this.previousIcount, this.names));
    this.previousIcount = entry.icount;
    this.nextSeq = entry.seq + 1;
    return this.pending.length >= FRAME_ENTRIES_MAX ? this.flush() : undefined;
  }

  /** Entries waiting in the open frame. */
  get pendingEntries(): number {
    return this.pending.length;
  }

  /** Closes the open frame; undefined when it is empty. */
  flush(): Uint8Array | undefined {
    if (this.pending.length === 0) return undefined;
    const payload = messagePack.pack([this.firstSeq, this.baseIcount, this.names.names, ...this.pending]);
    this.pending = [];
    this.names = new NameTable();
    return encodeFrame(FrameType.entries, payload);
  }
}

/** Encodes a whole list of entries into one byte string of frames. */
export function encodeEntries(entries: readonly LogEntry[]): Uint8Array {
  const encoder = new LogEncoder();
  const frames: Uint8Array[] = [];
  for (const entry of entries) {
    const frame = encoder.append(entry);
    if (frame) frames.push(frame);
  }
  const last = encoder.flush();
  if (last) frames.push(last);
  return concatBytes(frames);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

/** Decodes the payload of an entries frame, checking continuity with what came before. */
export function decodeEntriesPayload(
  payload: Uint8Array,
  expectedSeq: number | undefined,
  previousIcount: number,
  offset?: number,
): LogEntry[] {
  let decoded: unknown;
  try {
    decoded = messagePack.unpack(payload);
  } catch (error) {
    throw new LogFormatError('malformed-entry', 'entries frame is not valid MessagePack', offset, {
      cause: error,
    });
  }
  if (!Array.isArray(decoded) || decoded.length < 4) {
    throw new LogFormatError('malformed-entry', 'entries frame has no entries', offset);
  }
  if (decoded.length - 3 > DECODE_FRAME_ENTRIES_MAX) {
    throw new LogFormatError('oversized', `entries frame holds ${decoded.length - 3} entries`, offset);
  }
  const [firstSeq, baseIcount] = decoded as unknown[];
  if (
    !Number.isSafeInteger(firstSeq) ||
    (firstSeq as number) < 0 ||
    !Number.isSafeInteger(baseIcount) ||
    (baseIcount as number) < 0
  ) {
    throw new LogFormatError('malformed-entry', 'entries frame has a bad sequence number or icount', offset);
  }
  if (expectedSeq !== undefined && firstSeq !== expectedSeq) {
    throw new LogFormatError(
      'out-of-order',
      `entries frame starts at entry ${firstSeq}, expected ${expectedSeq}`,
      offset,
    );
  }
  if ((baseIcount as number) < previousIcount) {
    throw new LogFormatError('out-of-order', `entries frame goes back to icount ${baseIcount}`, offset);
  }
  const names = checkNames(decoded[2]);
  const entries: LogEntry[] = [];
  let icount = baseIcount as number;
  for (let index = 3; index < decoded.length; index++) {
    const entry = expandEntry(decoded[index], (firstSeq as number) + index - 3, icount, names);
    icount = entry.icount;
    entries.push(entry);
  }
  return entries;
}

/**
 * Turns a byte stream (in arbitrary chunks) back into log entries, checking frames and continuity.
 * Frames of other types are handed to `onOtherFrame` (record files use them for their header,
 * index points and trailer).
 */
export class LogDecoder {
  private readonly frames = new FrameDecoder();
  private expectedSeq: number | undefined;
  private previousIcount = 0;

  constructor(private readonly onOtherFrame?: (frame: Frame) => void) {}

  push(chunk: Uint8Array): LogEntry[] {
    const entries: LogEntry[] = [];
    for (const frame of this.frames.push(chunk)) {
      if (frame.type !== FrameType.entries) {
        if (!this.onOtherFrame) {
          throw new LogFormatError('malformed-entry', `unexpected frame of type ${frame.type}`, frame.offset);
        }
        this.onOtherFrame(frame);
        continue;
      }
      const decoded = decodeEntriesPayload(
        frame.payload,
        this.expectedSeq,
        this.previousIcount,
        frame.offset,
      );
      const last = decoded[decoded.length - 1] as LogEntry;
      this.expectedSeq = last.seq + 1;
      this.previousIcount = last.icount;
      for (const entry of decoded) entries.push(entry);
    }
    return entries;
  }

  /** The end of the stream: a partial frame left over is a truncation error. */
  finish(): void {
    this.frames.finish();
  }

  /** Offset of the first byte not yet decoded into a whole frame. */
  get offset(): number {
    return this.frames.offset;
  }
}

/** Decodes a complete byte string of frames. */
export function decodeEntries(bytes: Uint8Array): LogEntry[] {
  const decoder = new LogDecoder();
  const entries = decoder.push(bytes);
  decoder.finish();
  return entries;
}
