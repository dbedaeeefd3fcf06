import type {
  ChannelErrorReason,
  FtMessage,
  FtRole,
  Handshake,
  LogEntry,
  LogFormatReason,
  PlainValue,
  StateSection,
} from '@ftvm/core';
import { FT_PROTOCOL_VERSION, isPlainValue, LogFormatError, PAGE_SIZE_BYTES } from '@ftvm/core';
import { NAME_BYTES_MAX, STATE_HASH_BYTES_MAX } from './entries.js';
import { encodeFrame, type Frame, FrameDecoder, FrameType } from './frame.js';
import { concatBytes, decodeEntriesPayload, LogEncoder, messagePack } from './log-stream.js';

/**
 * The frames of a logging channel (`@ftvm/transport`): the protocol messages of `@ftvm/core`
 * (`FtMessage`), the handshake and its authentication, each in one checksummed frame (see
 * frame.ts) whose MessagePack payload is an array of fixed shape:
 *
 *     type              frame  payload
 *     log               1      an entries frame, as in a record file (log-stream.ts)
 *     handshake         5      [protocolVersion, vmId, epoch, role, host]
 *     ack               6      [receivedSeq, appliedSeq, appliedIcount]
 *     heartbeat         7      [counter]
 *     transfer-pages    8      [[pageNumber, ...], pages (bin, pageNumbers.length * 4096 bytes)]
 *     transfer-state    9      [icount, nextSeq, [kind, version, state], [[name, kind, version, state], ...], machine, config]
 *     goodbye           10     [reason]
 *     auth challenge    11     [nonce (bin, 32 bytes)]
 *     auth response     12     [mac (bin, 32 bytes)]
 *     channel control   13     ['accept']  or  ['refuse', reason, detail]
 *     transfer-disk     14     [device, offset, data (bin, a multiple of 512 bytes, at most 1 MiB)]
 *
 * Decoding checks every field's type and range; anything else is a {@link LogFormatError}, never
 * another exception. Log entries are consecutive in `seq` (and never go back in icount) across the
 * messages of one channel: {@link MessageEncoder} and {@link MessageDecoder} keep that state.
 */

/** Bytes of one RAM page in a transfer-pages message. */
export const TRANSFER_PAGE_BYTES = PAGE_SIZE_BYTES;
/** The most pages one transfer-pages message carries (1 MiB of page contents). */
export const TRANSFER_PAGES_PER_MESSAGE_MAX = 256;
/** The most bytes one transfer-disk message carries. */
export const TRANSFER_DISK_BYTES_MAX = 1 << 20;
/** Disk runs start and end on sector boundaries. */
export const TRANSFER_DISK_SECTOR_BYTES = 512;
/** The highest disk offset accepted (disks of at most 2^52 bytes). */
export const TRANSFER_DISK_OFFSET_MAX = 2 ** 52;
/** The highest page number accepted (pages of a RAM of at most 16 TiB). */
export const PAGE_NUMBER_MAX = 2 ** 32 - 1;
/** The most device sections in one transfer-state message. */
export const TRANSFER_STATE_DEVICES_MAX = 1024;
/** The longest goodbye reason, in UTF-16 code units. */
export const GOODBYE_REASON_LENGTH_MAX = 1024;
/** The longest vmId or host name of a handshake, in UTF-16 code units. */
export const HANDSHAKE_STRING_LENGTH_MAX = 256;
/** The longest detail of a refusal (channel control frame), in UTF-16 code units. */
export const CONTROL_DETAIL_LENGTH_MAX = 1024;
/** Bytes of an authentication nonce. */
export const AUTH_NONCE_BYTES = 32;
/** Bytes of an authentication answer (HMAC-SHA256). */
export const AUTH_MAC_BYTES = 32;
/**
 * A log message is cut into entries frames of about this many payload bytes at most (and at most
 * FRAME_ENTRIES_MAX entries), so that one message never exceeds FRAME_PAYLOAD_BYTES_MAX unless one
 * entry alone does.
 */
export const LOG_FRAME_BYTES_TARGET = 1024 * 1024;
/** The largest frame a handshake step may take (handshake, challenge, response, control). */
export const HANDSHAKE_FRAME_BYTES_MAX = 4096;
/** How deep plain values (device state, machine state, configuration) may nest. */
export const PLAIN_VALUE_DEPTH_MAX = 64;

/** Every reason a channel can be refused or closed for (`ChannelErrorReason` of `@ftvm/core`). */
export const CHANNEL_ERROR_REASONS: readonly ChannelErrorReason[] = [
  'authentication',
  'version',
  'stale-epoch',
  'wrong-vm',
  'protocol',
  'connection',
];

/** Channel control: the verdict of a handshake, or a refusal of the channel later on. */
export type ChannelControl =
  | { readonly kind: 'accept' }
  | { readonly kind: 'refuse'; readonly reason: ChannelErrorReason; readonly detail: string };

const ROLES: readonly FtRole[] = ['primary', 'backup'];

// ---------------------------------------------------------------------------------------------
// Checks shared by the encoder (a caller's bug) and the decoder (a damaged or hostile peer).

function fail(reason: LogFormatReason, why: string, offset?: number): never {
  throw new LogFormatError(reason, why, offset);
}

function malformed(why: string, offset?: number): never {
  return fail('malformed-entry', `malformed message: ${why}`, offset);
}

/** A disk run: sector-aligned, not empty, at most TRANSFER_DISK_BYTES_MAX. */
function checkDiskRun(device: string, diskOffset: number, length: number, offset?: number): void {
  if (length > TRANSFER_DISK_BYTES_MAX) {
    fail('oversized', `a disk run of ${length} bytes exceeds ${TRANSFER_DISK_BYTES_MAX}`, offset);
  }
  if (
    length === 0 ||
    length % TRANSFER_DISK_SECTOR_BYTES !== 0 ||
    diskOffset % TRANSFER_DISK_SECTOR_BYTES !== 0
  ) {
    malformed(`a disk run of ${device} at ${diskOffset} of ${length} bytes is not whole sectors`, offset);
  }
}

function integer(value: unknown, min: number, max: number, what: string, offset?: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    malformed(`${what} is not an integer in ${min}..${max}`, offset);
  }
  return value as number;
}

function text(value: unknown, minLength: number, maxLength: number, what: string, offset?: number): string {
  if (typeof value !== 'string' || value.length < minLength || value.length > maxLength) {
    malformed(`${what} is not a string of ${minLength}..${maxLength} characters`, offset);
  }
  return value as string;
}

function bytes(value: unknown, what: string, offset?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) malformed(`${what} is not bytes`, offset);
  // msgpackr hands back Buffers in Node; give a plain view of the same bytes.
  const array = value as Uint8Array;
  return array.constructor === Uint8Array
    ? array
    : new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function plain(value: unknown, what: string, offset?: number): PlainValue {
  if (!isPlainValue(value, PLAIN_VALUE_DEPTH_MAX)) malformed(`${what} is not plain data`, offset);
  return value as PlainValue;
}

function tuple(value: unknown, length: number, what: string, offset?: number): unknown[] {
  if (!Array.isArray(value) || value.length !== length) {
    malformed(`${what} is not an array of ${length} items`, offset);
  }
  return value as unknown[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

const SEQ_MAX = Number.MAX_SAFE_INTEGER;

/** Unpacks one MessagePack value that must fill the whole payload. */
function unpack(payload: Uint8Array, what: string, offset?: number): unknown {
  try {
    return messagePack.unpack(payload);
  } catch (error) {
    throw new LogFormatError('malformed-entry', `${what} is not valid MessagePack`, offset, { cause: error });
  }
}

function pack(type: number, value: unknown): Uint8Array {
  let payload: Uint8Array;
  try {
    payload = messagePack.pack(value);
  } catch (error) {
    throw new LogFormatError('malformed-entry', 'message cannot be encoded', undefined, { cause: error });
  }
  return encodeFrame(type, payload);
}

/** Runs a decoding step; anything but a LogFormatError that escapes it becomes one. */
function typed<T>(offset: number | undefined, step: () => T): T {
  try {
    return step();
  } catch (error) {
    if (LogFormatError.is(error)) throw error;
    throw new LogFormatError('malformed-entry', 'malformed message', offset, { cause: error });
  }
}

/** Estimates (from above) the MessagePack bytes of a plain value; -1 when it is not plain. */
function plainBytes(value: unknown, depth: number): number {
  if (depth < 0) return -1;
  if (value === null) return 1;
  switch (typeof value) {
    case 'boolean':
      return 1;
    case 'number':
      return 9;
    case 'string':
      return 5 + value.length * 3;
    case 'object': {
      if (value instanceof Uint8Array) return 5 + value.length;
      let total = 5;
      if (Array.isArray(value)) {
        for (const item of value) {
          const size = plainBytes(item, depth - 1);
          if (size < 0) return -1;
          total += size;
        }
        return total;
      }
      if (!isRecord(value)) return -1;
      for (const key of Object.keys(value)) {
        const size = plainBytes(value[key], depth - 1);
        if (size < 0) return -1;
        total += 5 + key.length * 3 + size;
      }
      return total;
    }
    default:
      return -1;
  }
}

function outgoingName(value: unknown, what: string): number {
  text(value, 1, NAME_BYTES_MAX, what);
  return 5 + (value as string).length * 3;
}

function outgoingPlain(value: unknown, what: string): number {
  const size = plainBytes(value, PLAIN_VALUE_DEPTH_MAX);
  if (size < 0) malformed(`${what} is not plain data`);
  return size;
}

function checkedPlain(value: PlainValue, what: string): PlainValue {
  outgoingPlain(value, what);
  return value;
}

/** Checks an entry about to be sent; returns an upper bound of its encoded size. */
function checkOutgoingEntry(entry: LogEntry): number {
  if (typeof entry !== 'object' || entry === null) malformed('a log entry is not an object');
  integer(entry.seq, 0, SEQ_MAX, 'log entry seq');
  integer(entry.icount, 0, Number.MAX_SAFE_INTEGER, 'log entry icount');
  const base = 20;
  switch (entry.kind) {
    case 'event': {
      if (typeof entry.event !== 'object' || entry.event === null) malformed('event has no payload');
      const data = entry.event.data === undefined ? 0 : outgoingPlain(entry.event.data, 'event data');
      return (
        base + outgoingName(entry.device, 'device') + outgoingName(entry.event.type, 'event type') + data
      );
    }
    case 'nondet':
      return (
        base +
        outgoingName(entry.device, 'device') +
        outgoingName(entry.key, 'key') +
        outgoingPlain(entry.value, 'read value')
      );
    case 'progress':
      return base;
    case 'checkpoint':
      if (!(entry.stateHash instanceof Uint8Array) || entry.stateHash.length > STATE_HASH_BYTES_MAX) {
        malformed('checkpoint has no state hash');
      }
      return base + 5 + entry.stateHash.length;
    case 'stop':
      if (typeof entry.exitStatus !== 'number' || !Number.isSafeInteger(entry.exitStatus)) {
        malformed('stop has no exit status');
      }
      return base;
    case 'output':
      if (!(entry.data instanceof Uint8Array)) malformed('output has no data');
      return (
        base + outgoingName(entry.device, 'device') + outgoingName(entry.stream, 'stream') + entry.data.length
      );
    default:
      return malformed(`unknown log entry kind ${String((entry as { kind: unknown }).kind)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Sections of a transfer-state message.

function sectionToWire(section: StateSection, what: string): unknown[] {
  if (typeof section !== 'object' || section === null) malformed(`${what} is not a state section`);
  text(section.kind, 1, NAME_BYTES_MAX, `${what} kind`);
  integer(section.version, 0, Number.MAX_SAFE_INTEGER, `${what} version`);
  outgoingPlain(section.state, `${what} state`);
  return [section.kind, section.version, section.state];
}

function sectionFromWire(items: readonly unknown[], what: string, offset: number | undefined): StateSection {
  return {
    kind: text(items[0], 1, NAME_BYTES_MAX, `${what} kind`, offset),
    version: integer(items[1], 0, Number.MAX_SAFE_INTEGER, `${what} version`, offset),
    state: plain(items[2], `${what} state`, offset),
  };
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/**
 * Turns protocol messages into frames, one channel's worth: log entries must continue, message
 * after message, from the last entry sent (consecutive `seq`, icount never going back). A message
 * that is malformed or does not continue the log is refused with a {@link LogFormatError} and
 * changes nothing.
 */
export class MessageEncoder {
  private nextSeq: number | undefined;
  private previousIcount = 0;

  /** The sequence number the next log entry must have; undefined before the first one. */
  get expectedSeq(): number | undefined {
    return this.nextSeq;
  }

  /**
   * Encodes one message: one frame, or for a log message as many entries frames as its size needs
   * (none at all for a log message without entries).
   */
  encode(message: FtMessage): Uint8Array {
    if (typeof message !== 'object' || message === null) malformed('a message is not an object');
    switch (message.type) {
      case 'log':
        return this.encodeLog(message.entries);
      case 'ack':
        return pack(FrameType.ack, [
          integer(message.receivedSeq, -1, SEQ_MAX, 'receivedSeq'),
          integer(message.appliedSeq, -1, SEQ_MAX, 'appliedSeq'),
          integer(message.appliedIcount, -1, Number.MAX_SAFE_INTEGER, 'appliedIcount'),
        ]);
      case 'heartbeat':
        return pack(FrameType.heartbeat, [integer(message.counter, 0, Number.MAX_SAFE_INTEGER, 'counter')]);
      case 'transfer-pages': {
        const numbers = message.pageNumbers;
        if (!Array.isArray(numbers)) malformed('pageNumbers is not an array');
        if (numbers.length > TRANSFER_PAGES_PER_MESSAGE_MAX) {
          fail('oversized', `transfer of ${numbers.length} pages exceeds ${TRANSFER_PAGES_PER_MESSAGE_MAX}`);
        }
        const list = numbers.map((page) => integer(page, 0, PAGE_NUMBER_MAX, 'a page number'));
        const pages = bytes(message.pages, 'pages');
        if (pages.length !== list.length * TRANSFER_PAGE_BYTES) {
          malformed(`${pages.length} bytes of pages for ${list.length} page numbers`);
        }
        return pack(FrameType.transferPages, [list, pages]);
      }
      case 'transfer-state': {
        const devices = message.devices;
        if (!isRecord(devices)) malformed('devices is not a record');
        const names = Object.keys(devices);
        if (names.length > TRANSFER_STATE_DEVICES_MAX) {
          fail('oversized', `${names.length} device sections exceed ${TRANSFER_STATE_DEVICES_MAX}`);
        }
        return pack(FrameType.transferState, [
          integer(message.icount, 0, Number.MAX_SAFE_INTEGER, 'icount'),
          integer(message.nextSeq, 0, SEQ_MAX, 'nextSeq'),
          sectionToWire(message.cpu, 'cpu section'),
          names.map((name) => {
            text(name, 1, NAME_BYTES_MAX, 'a device name');
            return [name, ...sectionToWire(devices[name] as StateSection, `device ${name} section`)];
          }),
          checkedPlain(message.machine, 'machine'),
          checkedPlain(message.config, 'config'),
        ]);
      }
      case 'transfer-disk': {
        const data = bytes(message.data, 'data');
        checkDiskRun(
          text(message.device, 1, NAME_BYTES_MAX, 'a device name'),
          integer(message.offset, 0, TRANSFER_DISK_OFFSET_MAX, 'offset'),
          data.length,
        );
        return pack(FrameType.transferDisk, [message.device, message.offset, data]);
      }
      case 'goodbye':
        return pack(FrameType.goodbye, [
          text(message.reason, 0, GOODBYE_REASON_LENGTH_MAX, 'goodbye reason'),
        ]);
      default:
        return malformed(`unknown message type ${String((message as { type: unknown }).type)}`);
    }
  }

  private encodeLog(entries: readonly LogEntry[]): Uint8Array {
    if (!Array.isArray(entries)) malformed('log entries are not an array');
    const sizes: number[] = [];
    let expected = this.nextSeq;
    let previousIcount = this.previousIcount;
    for (const entry of entries) {
      sizes.push(checkOutgoingEntry(entry));
      if (expected !== undefined && entry.seq !== expected) {
        fail('out-of-order', `log entry ${entry.seq} sent after ${expected - 1}`);
      }
      if (entry.icount < previousIcount) {
        fail('out-of-order', `log entry ${entry.seq}: icount ${entry.icount} goes backwards`);
      }
      expected = entry.seq + 1;
      previousIcount = entry.icount;
    }
    const frames: Uint8Array[] = [];
    const encoder = new LogEncoder();
    let pendingBytes = 0;
    entries.forEach((entry, index) => {
      const size = sizes[index] as number;
      if (encoder.pendingEntries > 0 && pendingBytes + size > LOG_FRAME_BYTES_TARGET) {
        frames.push(encoder.flush() as Uint8Array);
        pendingBytes = 0;
      }
      pendingBytes += size;
      const frame = encoder.append(entry);
      if (frame) {
        frames.push(frame);
        pendingBytes = 0;
      }
    });
    const last = encoder.flush();
    if (last) frames.push(last);
    this.nextSeq = expected;
    this.previousIcount = previousIcount;
    return frames.length === 1 ? (frames[0] as Uint8Array) : concatBytes(frames);
  }
}

/**
 * Encodes one message on its own (a log message's entries are checked among themselves only; use a
 * {@link MessageEncoder} to check continuity across the messages of a channel).
 */
export function encodeMessage(message: FtMessage): Uint8Array {
  return new MessageEncoder().encode(message);
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/**
 * Turns a channel's byte stream (in any chunking) back into messages, checking every frame and
 * the continuity of the log. After an error the decoder stays failed. Frames of the handshake
 * (types 5, 11, 12, 13) and of record files are refused: a channel uses {@link decodeFrame} for
 * the frames after its handshake.
 */
export class MessageDecoder {
  private readonly frames = new FrameDecoder();
  private expectedSeq: number | undefined;
  private previousIcount = 0;
  private failed: LogFormatError | undefined;

  /**
   * Adds bytes and returns every message they complete. When a frame is bad this throws, and the
   * messages of the same chunk before it are not returned (decode frame by frame with
   * {@link decodeFrame} to keep them).
   */
  push(chunk: Uint8Array): FtMessage[] {
    if (this.failed) throw this.failed;
    const messages: FtMessage[] = [];
    try {
      for (const frame of this.frames.push(chunk)) messages.push(this.decodeFrame(frame));
    } catch (error) {
      this.failed = LogFormatError.is(error)
        ? error
        : new LogFormatError('malformed-entry', 'malformed message', this.frames.offset, { cause: error });
      throw this.failed;
    }
    return messages;
  }

  /** Declares the end of the stream: leftover bytes are a truncated frame. */
  finish(): void {
    if (this.failed) throw this.failed;
    this.frames.finish();
  }

  /** Offset in the stream of the first byte not yet part of a whole frame. */
  get offset(): number {
    return this.frames.offset;
  }

  /** The sequence number the next log entry must have; undefined before the first one. */
  get nextSeq(): number | undefined {
    return this.expectedSeq;
  }

  /** Decodes one verified frame (from a {@link FrameDecoder}) into a message. */
  decodeFrame(frame: Frame): FtMessage {
    if (this.failed) throw this.failed;
    try {
      return typed(frame.offset, () => this.decode(frame));
    } catch (error) {
      this.failed = error as LogFormatError;
      throw error;
    }
  }

  private decode(frame: Frame): FtMessage {
    const offset = frame.offset;
    switch (frame.type) {
      case FrameType.entries: {
        const entries = decodeEntriesPayload(frame.payload, this.expectedSeq, this.previousIcount, offset);
        const last = entries[entries.length - 1] as LogEntry;
        this.expectedSeq = last.seq + 1;
        this.previousIcount = last.icount;
        return { type: 'log', entries };
      }
      case FrameType.ack: {
        const items = tuple(unpack(frame.payload, 'ack', offset), 3, 'ack', offset);
        return {
          type: 'ack',
          receivedSeq: integer(items[0], -1, SEQ_MAX, 'receivedSeq', offset),
          appliedSeq: integer(items[1], -1, SEQ_MAX, 'appliedSeq', offset),
          appliedIcount: integer(items[2], -1, Number.MAX_SAFE_INTEGER, 'appliedIcount', offset),
        };
      }
      case FrameType.heartbeat: {
        const items = tuple(unpack(frame.payload, 'heartbeat', offset), 1, 'heartbeat', offset);
        return {
          type: 'heartbeat',
          counter: integer(items[0], 0, Number.MAX_SAFE_INTEGER, 'counter', offset),
        };
      }
      case FrameType.transferPages: {
        const items = tuple(unpack(frame.payload, 'transfer-pages', offset), 2, 'transfer-pages', offset);
        const list = items[0];
        if (!Array.isArray(list)) malformed('pageNumbers is not an array', offset);
        if (list.length > TRANSFER_PAGES_PER_MESSAGE_MAX) {
          fail(
            'oversized',
            `transfer of ${list.length} pages exceeds ${TRANSFER_PAGES_PER_MESSAGE_MAX}`,
            offset,
          );
        }
        const pageNumbers = (list as unknown[]).map((page) =>
          integer(page, 0, PAGE_NUMBER_MAX, 'a page number', offset),
        );
        const pages = bytes(items[1], 'pages', offset);
        if (pages.length !== pageNumbers.length * TRANSFER_PAGE_BYTES) {
          malformed(`${pages.length} bytes of pages for ${pageNumbers.length} page numbers`, offset);
        }
        return { type: 'transfer-pages', pageNumbers, pages };
      }
      case FrameType.transferState: {
        const items = tuple(unpack(frame.payload, 'transfer-state', offset), 6, 'transfer-state', offset);
        const icount = integer(items[0], 0, Number.MAX_SAFE_INTEGER, 'icount', offset);
        const nextSeq = integer(items[1], 0, SEQ_MAX, 'nextSeq', offset);
        const cpu = sectionFromWire(tuple(items[2], 3, 'cpu section', offset), 'cpu section', offset);
        const list = items[3];
        if (!Array.isArray(list)) malformed('devices is not an array', offset);
        if (list.length > TRANSFER_STATE_DEVICES_MAX) {
          fail('oversized', `${list.length} device sections exceed ${TRANSFER_STATE_DEVICES_MAX}`, offset);
        }
        const devices: [string, StateSection][] = [];
        const seen = new Set<string>();
        for (const item of list as unknown[]) {
          const fields = tuple(item, 4, 'a device section', offset);
          const name = text(fields[0], 1, NAME_BYTES_MAX, 'a device name', offset);
          if (seen.has(name)) malformed(`device ${name} appears twice`, offset);
          seen.add(name);
          devices.push([name, sectionFromWire(fields.slice(1), `device ${name} section`, offset)]);
        }
        return {
          type: 'transfer-state',
          icount,
          nextSeq,
          cpu,
          devices: Object.fromEntries(devices),
          machine: plain(items[4], 'machine', offset),
          config: plain(items[5], 'config', offset),
        };
      }
      case FrameType.transferDisk: {
        const items = tuple(unpack(frame.payload, 'transfer-disk', offset), 3, 'transfer-disk', offset);
        const device = text(items[0], 1, NAME_BYTES_MAX, 'a device name', offset);
        const diskOffset = integer(items[1], 0, TRANSFER_DISK_OFFSET_MAX, 'offset', offset);
        const data = bytes(items[2], 'data', offset);
        checkDiskRun(device, diskOffset, data.length, offset);
        return { type: 'transfer-disk', device, offset: diskOffset, data };
      }
      case FrameType.goodbye: {
        const items = tuple(unpack(frame.payload, 'goodbye', offset), 1, 'goodbye', offset);
        return {
          type: 'goodbye',
          reason: text(items[0], 0, GOODBYE_REASON_LENGTH_MAX, 'goodbye reason', offset),
        };
      }
      default:
        return malformed(`unexpected frame of type ${frame.type} on a channel`, offset);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The handshake and its authentication.

/** Reads the one frame of a given type from a Frame or from the bytes of exactly one frame. */
function frameOfType(input: Uint8Array | Frame, type: number, what: string): Frame {
  return typed(undefined, () => {
    let frame: Frame;
    if (input instanceof Uint8Array) {
      const decoder = new FrameDecoder();
      const frames = decoder.push(input);
      decoder.finish();
      if (frames.length !== 1) malformed(`${frames.length} frames where one ${what} was expected`);
      frame = frames[0] as Frame;
    } else {
      frame = input;
    }
    if (frame.type !== type)
      malformed(`a frame of type ${frame.type} where a ${what} was expected`, frame.offset);
    return frame;
  });
}

function checkHandshake(items: readonly unknown[], offset?: number): Handshake {
  const protocolVersion = integer(items[0], 0, Number.MAX_SAFE_INTEGER, 'protocolVersion', offset);
  const vmId = text(items[1], 1, HANDSHAKE_STRING_LENGTH_MAX, 'vmId', offset);
  const epoch = integer(items[2], 0, Number.MAX_SAFE_INTEGER, 'epoch', offset);
  const role = items[3];
  if (!ROLES.includes(role as FtRole)) malformed('role is neither primary nor backup', offset);
  const host = text(items[4], 1, HANDSHAKE_STRING_LENGTH_MAX, 'host', offset);
  return { vmId, epoch, role: role as FtRole, protocolVersion, host };
}

/** The frame of a handshake. Throws a {@link LogFormatError} for a malformed one. */
export function encodeHandshake(handshake: Handshake): Uint8Array {
  if (typeof handshake !== 'object' || handshake === null) malformed('a handshake is not an object');
  const items = [handshake.protocolVersion, handshake.vmId, handshake.epoch, handshake.role, handshake.host];
  checkHandshake(items);
  return pack(FrameType.handshake, items);
}

/**
 * Reads a handshake from its frame (a Frame, or the bytes of exactly one frame). A handshake of
 * this protocol version has exactly its five fields; one of another version may carry more after
 * them (ignored), so that the receiver can still read the version and refuse it as such.
 */
export function decodeHandshake(input: Uint8Array | Frame): Handshake {
  const frame = frameOfType(input, FrameType.handshake, 'handshake');
  const offset = frame.offset;
  return typed(offset, () => {
    const items = unpack(frame.payload, 'handshake', offset);
    if (!Array.isArray(items) || items.length < 5) malformed('handshake is not an array of 5 items', offset);
    const handshake = checkHandshake(items as unknown[], offset);
    if (handshake.protocolVersion === FT_PROTOCOL_VERSION && (items as unknown[]).length !== 5) {
      malformed('handshake has extra fields', offset);
    }
    return handshake;
  });
}

function encodeToken(type: number, token: Uint8Array, length: number, what: string): Uint8Array {
  const value = bytes(token, what);
  if (value.length !== length) malformed(`${what} is not ${length} bytes`);
  return pack(type, [value]);
}

function decodeToken(input: Uint8Array | Frame, type: number, length: number, what: string): Uint8Array {
  const frame = frameOfType(input, type, what);
  return typed(frame.offset, () => {
    const items = tuple(unpack(frame.payload, what, frame.offset), 1, what, frame.offset);
    const value = bytes(items[0], what, frame.offset);
    if (value.length !== length) malformed(`${what} is not ${length} bytes`, frame.offset);
    return new Uint8Array(value);
  });
}

/** The frame of an authentication challenge: a random nonce of {@link AUTH_NONCE_BYTES}. */
export function encodeAuthChallenge(nonce: Uint8Array): Uint8Array {
  return encodeToken(FrameType.authChallenge, nonce, AUTH_NONCE_BYTES, 'auth challenge');
}

export function decodeAuthChallenge(input: Uint8Array | Frame): Uint8Array {
  return decodeToken(input, FrameType.authChallenge, AUTH_NONCE_BYTES, 'auth challenge');
}

/** The frame of an authentication answer: an HMAC-SHA256 of {@link AUTH_MAC_BYTES}. */
export function encodeAuthResponse(mac: Uint8Array): Uint8Array {
  return encodeToken(FrameType.authResponse, mac, AUTH_MAC_BYTES, 'auth response');
}

export function decodeAuthResponse(input: Uint8Array | Frame): Uint8Array {
  return decodeToken(input, FrameType.authResponse, AUTH_MAC_BYTES, 'auth response');
}

/** The frame of a channel control: a handshake's verdict, or a refusal. */
export function encodeChannelControl(control: ChannelControl): Uint8Array {
  if (typeof control !== 'object' || control === null) malformed('a channel control is not an object');
  if (control.kind === 'accept') return pack(FrameType.channelControl, ['accept']);
  if (control.kind !== 'refuse') malformed('a channel control is neither accept nor refuse');
  if (!CHANNEL_ERROR_REASONS.includes(control.reason)) malformed('a refusal has an unknown reason');
  text(control.detail, 0, CONTROL_DETAIL_LENGTH_MAX, 'refusal detail');
  return pack(FrameType.channelControl, ['refuse', control.reason, control.detail]);
}

export function decodeChannelControl(input: Uint8Array | Frame): ChannelControl {
  const frame = frameOfType(input, FrameType.channelControl, 'channel control');
  const offset = frame.offset;
  return typed(offset, () => {
    const items = unpack(frame.payload, 'channel control', offset);
    if (!Array.isArray(items) || items.length === 0) malformed('channel control is not an array', offset);
    if (items[0] === 'accept') {
      tuple(items, 1, 'accept', offset);
      return { kind: 'accept' };
    }
    if (items[0] !== 'refuse') malformed('channel control is neither accept nor refuse', offset);
    tuple(items, 3, 'refusal', offset);
    const reason = items[1] as ChannelErrorReason;
    if (!CHANNEL_ERROR_REASONS.includes(reason)) malformed('refusal has an unknown reason', offset);
    return {
      kind: 'refuse',
      reason,
      detail: text(items[2], 0, CONTROL_DETAIL_LENGTH_MAX, 'refusal detail', offset),
    };
  });
}
