import { LogFormatError } from '@ftvm/core';
import { crc32c } from './checksum.js';

/**
 * A frame: a 12-byte header and a payload.
 *
 *     offset  size  field
 *     0       2     magic 0x46 0x54 ("FT")
 *     2       1     format version (FRAME_FORMAT_VERSION)
 *     3       1     frame type (FrameType)
 *     4       4     payload length in bytes, u32 little-endian, at most FRAME_PAYLOAD_BYTES_MAX
 *     8       4     CRC-32C of bytes 0..7 and the payload, u32 little-endian
 *     12      n     payload (MessagePack; its shape depends on the type)
 *
 * The length is checked against the limit before anything is allocated, and the checksum before
 * the payload is parsed, so a hostile or damaged stream costs at most one bounded buffer.
 */

export const FRAME_MAGIC_0 = 0x46;
export const FRAME_MAGIC_1 = 0x54;
export const FRAME_FORMAT_VERSION = 1;
export const FRAME_HEADER_BYTES = 12;
/** The largest payload accepted (a frame of this size is far beyond what the encoder writes). */
export const FRAME_PAYLOAD_BYTES_MAX = 16 * 1024 * 1024;

/** What a frame carries. Numbers are part of the format: never reuse one. */
export const FrameType = {
  /** A batch of log entries. */
  entries: 1,
  /** The header of a record file. */
  recordHeader: 2,
  /** An index point of a record file (icount → offset). */
  indexPoint: 3,
  /** The trailer of a record file. */
  recordTrailer: 4,
  /** Logging channel: what each side says first (vmId, epoch, role, protocol version, host). */
  handshake: 5,
  /** Logging channel: an acknowledgement of the log (backup → primary). */
  ack: 6,
  /** Logging channel: "I am alive". */
  heartbeat: 7,
  /** Logging channel: RAM pages of a live state transfer. */
  transferPages: 8,
  /** Logging channel: the rest of the state at the end of a live state transfer. */
  transferState: 9,
  /** Logging channel: the sender is closing the channel on purpose. */
  goodbye: 10,
  /** Logging channel handshake: a random nonce the peer must answer (pre-shared key). */
  authChallenge: 11,
  /** Logging channel handshake: the answer to the peer's nonce (an HMAC). */
  authResponse: 12,
  /** Logging channel: the handshake's verdict (accept or refuse) or a refusal of a later frame. */
  channelControl: 13,
  /** Logging channel: a run of a disk's bytes in a live state transfer (non-shared disks). */
  transferDisk: 14,
} as const;
export type FrameType = number;

export interface Frame {
  readonly type: FrameType;
  readonly payload: Uint8Array;
  /** Offset of the frame's first byte in the stream. */
  readonly offset: number;
  /** Whole frame length, header included. */
  readonly length: number;
}

/** Builds one frame around a payload. */
export function encodeFrame(type: FrameType, payload: Uint8Array): Uint8Array {
  if (payload.length > FRAME_PAYLOAD_BYTES_MAX) {
    throw new LogFormatError(
      'oversized',
      `frame payload of ${payload.length} bytes exceeds ${FRAME_PAYLOAD_BYTES_MAX}`,
    );
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  const view = new DataView(frame.buffer);
  frame[0] = FRAME_MAGIC_0;
  frame[1] = FRAME_MAGIC_1;
  frame[2] = FRAME_FORMAT_VERSION;
  frame[3] = type;
  view.setUint32(4, payload.length, true);
  frame.set(payload, FRAME_HEADER_BYTES);
  view.setUint32(8, crc32c(payload, crc32c(frame.subarray(0, 8))), true);
  return frame;
}

/**
 * Splits a byte stream that arrives in arbitrary chunks into verified frames. After an error the
 * decoder is unusable: a stream that failed once cannot be trusted to resynchronise.
 */
export class FrameDecoder {
  private buffer = new Uint8Array(0);
  private start = 0;
  private end = 0;
  private streamOffset = 0;
  private failed: LogFormatError | undefined;

  /** Adds bytes and returns every frame they complete. */
  push(chunk: Uint8Array): Frame[] {
    if (this.failed) throw this.failed;
    this.append(chunk);
    const frames: Frame[] = [];
    for (;;) {
      const frame = this.nextFrame();
      if (!frame) break;
      frames.push(frame);
    }
    return frames;
  }

  /** Bytes held that do not make a whole frame yet. */
  get pendingBytes(): number {
    return this.end - this.start;
  }

  /** Offset in the stream of the first byte not yet part of a returned frame. */
  get offset(): number {
    return this.streamOffset;
  }

  /** Declares the end of the stream: leftover bytes are a truncated frame. */
  finish(): void {
    if (this.failed) throw this.failed;
    if (this.pendingBytes > 0) {
      this.fail(
        'truncated',
        `stream ends inside a frame (${this.pendingBytes} bytes left)`,
        this.streamOffset,
      );
    }
  }

  private fail(
    reason: ConstructorParameters<typeof LogFormatError>[0],
    message: string,
    offset: number,
  ): never {
    this.failed = new LogFormatError(reason, message, offset);
    throw this.failed;
  }

  private append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buffer.length) {
      const held = this.end - this.start;
      const capacity = Math.max(
        held + chunk.length,
        Math.min(this.buffer.length * 2, FRAME_PAYLOAD_BYTES_MAX * 2),
      );
      const grown = capacity > this.buffer.length ? new Uint8Array(capacity) : this.buffer;
      grown.set(this.buffer.subarray(this.start, this.end), 0);
      this.buffer = grown;
      this.start = 0;
      this.end = held;
    }
    this.buffer.set(chunk, this.end);
    this.end += chunk.length;
  }

  private nextFrame(): Frame | undefined {
    const available = this.end - this.start;
    if (available < 1) return undefined;
    const offset = this.streamOffset;
    const buffer = this.buffer;
    const start = this.start;
    if (buffer[start] !== FRAME_MAGIC_0 || (available >= 2 && buffer[start + 1] !== FRAME_MAGIC_1)) {
      this.fail('bad-magic', 'not an ftvm log frame (bad magic)', offset);
    }
    if (available >= 3 && buffer[start + 2] !== FRAME_FORMAT_VERSION) {
      this.fail('unsupported-version', `unsupported log format version ${buffer[start + 2]}`, offset);
    }
    if (available < FRAME_HEADER_BYTES) return undefined;
    const view = new DataView(buffer.buffer, buffer.byteOffset + start, FRAME_HEADER_BYTES);
    const payloadLength = view.getUint32(4, true);
    if (payloadLength > FRAME_PAYLOAD_BYTES_MAX) {
      this.fail(
        'oversized',
        `frame payload of ${payloadLength} bytes exceeds ${FRAME_PAYLOAD_BYTES_MAX}`,
        offset,
      );
    }
    const length = FRAME_HEADER_BYTES + payloadLength;
    if (available < length) return undefined;
    const payload = buffer.slice(start + FRAME_HEADER_BYTES, start + length);
    const expected = view.getUint32(8, true);
    const actual = crc32c(payload, crc32c(buffer.subarray(start, start + 8)));
    if (actual !== expected) this.fail('bad-checksum', 'frame checksum mismatch', offset);
    const type = buffer[start + 3] as number;
    this.start += length;
    this.streamOffset += length;
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
    }
    return { type, payload, offset, length };
  }
}
