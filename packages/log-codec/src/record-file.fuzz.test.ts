import type { LogEntry, PlainValue } from '@ftvm/core';
import { LogFormatError } from '@ftvm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logEntries, plainValue } from './arbitraries.test-support.js';
import { crc32c } from './checksum.js';
import { FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, FrameDecoder, FrameType } from './frame.js';
import { concatBytes, messagePack } from './log-stream.js';
import {
  RECORD_DISKS_MAX,
  type RecordFileContents,
  RecordFileWriter,
  readRecordFile,
} from './record-file.js';

/**
 * Fuzzing of `readRecordFile` with damaged and hostile recordings. Mutations are made to whole
 * recordings and the frames' checksums recomputed after them, so that they reach what the
 * checksums guard (lengths, payloads, the order of frames) instead of stopping at the checksum.
 * The reader must give a result that holds together or throw a `LogFormatError`, nothing else.
 */

interface Recording {
  readonly bytes: Uint8Array;
  readonly entries: readonly LogEntry[];
  readonly finished: boolean;
}

/** A recording as `ftvm record` writes one: frames closed at slice ends, at most one power-off, last. */
const recording: fc.Arbitrary<Recording> = fc
  .record({
    entries: logEntries(40),
    powerOff: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
    flushEvery: fc.integer({ min: 1, max: 6 }),
    disks: fc.nat(RECORD_DISKS_MAX),
    finished: fc.boolean(),
  })
  .map(({ entries, powerOff, flushEvery, disks, finished }) => {
    const log: LogEntry[] = entries.map((entry) =>
      entry.kind === 'stop' ? { kind: 'progress', seq: entry.seq, icount: entry.icount } : entry,
    );
    if (powerOff !== undefined) {
      log.push({ kind: 'stop', seq: log.length, icount: log.at(-1)?.icount ?? 0, exitStatus: powerOff });
    }
    const writer = new RecordFileWriter();
    const parts = [
      writer.start({
        machine: { ramSizeBytes: 2 ** 20, clock: 'icount' },
        image: { name: 'guest.elf', digest: 'sha256:00', bytes: new Uint8Array([1, 2, 3]) },
        disks: Array.from({ length: disks }, (_, n) => ({
          name: `d${n}`,
          digest: 'sha256:00',
          sizeBytes: 512,
        })),
        writer: 'fuzz',
      }),
    ];
    log.forEach((entry, index) => {
      parts.push(writer.append(entry));
      if ((index + 1) % flushEvery === 0) parts.push(writer.flush());
    });
    parts.push(finished ? writer.finish(powerOff ?? null) : writer.flush());
    return { bytes: concatBytes(parts), entries: log, finished };
  });

/**
 * The frames of a recording, each as its own bytes, and the bytes after them that make no frame.
 * Frames are found by their length fields alone, so a recording damaged already can be damaged more.
 */
function splitFrames(bytes: Uint8Array): { frames: Uint8Array[]; tail: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const frames: Uint8Array[] = [];
  let offset = 0;
  while (offset + FRAME_HEADER_BYTES <= bytes.length) {
    const end = offset + FRAME_HEADER_BYTES + view.getUint32(offset + 4, true);
    if (end > bytes.length) break;
    frames.push(bytes.slice(offset, end));
    offset = end;
  }
  return { frames, tail: bytes.slice(offset) };
}

/** Sets the checksum of the frame at `offset` to what its (possibly changed) length covers, if it fits. */
function fixChecksum(bytes: Uint8Array, offset: number): void {
  if (offset + FRAME_HEADER_BYTES > bytes.length) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const end = offset + FRAME_HEADER_BYTES + view.getUint32(offset + 4, true);
  if (end > bytes.length) return;
  const checksum = crc32c(
    bytes.subarray(offset + FRAME_HEADER_BYTES, end),
    crc32c(bytes.subarray(offset, offset + 8)),
  );
  view.setUint32(offset + 8, checksum, true);
}

/** A frame with `payload`, of `type`, with a right checksum. */
function reframe(type: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  frame.set([0x46, 0x54, 1, type]);
  new DataView(frame.buffer).setUint32(4, payload.length, true);
  frame.set(payload, FRAME_HEADER_BYTES);
  fixChecksum(frame, 0);
  return frame;
}

/** Replaces the value at a path of nested arrays and objects chosen by `choices` (a new copy). */
function replaceSomewhere(value: unknown, choices: readonly number[], replacement: unknown): unknown {
  const [choice, ...rest] = choices;
  if (choice === undefined || value === null || typeof value !== 'object' || value instanceof Uint8Array) {
    return replacement;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return replacement;
    const copy = [...value];
    const at = choice % (copy.length + 1);
    // One past the end: drop an element instead (shorter arrays, missing fields).
    if (at === copy.length) copy.pop();
    else copy[at] = replaceSomewhere(copy[at], rest, replacement);
    return copy;
  }
  const record = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(record);
  if (keys.length === 0) return replacement;
  const key = keys[choice % keys.length] as string;
  if (choice % 7 === 6) delete record[key];
  else record[key] = replaceSomewhere(record[key], rest, replacement);
  return record;
}

/** Ways to damage a recording; checksums are made right again wherever a frame still holds together. */
const mutation = fc.oneof(
  // One byte anywhere in one frame (its header or payload).
  fc.record({ kind: fc.constant('byte' as const), frame: fc.nat(), at: fc.nat(), value: fc.nat(255) }),
  // A frame's length field: a little off, or anything up to past the limit.
  fc.record({
    kind: fc.constant('length' as const),
    frame: fc.nat(),
    length: fc.oneof(fc.integer({ min: -20, max: 20 }), fc.nat(FRAME_PAYLOAD_BYTES_MAX + 16)),
    relative: fc.boolean(),
  }),
  // A value inside a frame's MessagePack payload (trailer fields, index points, disks, entries).
  fc.record({
    kind: fc.constant('value' as const),
    frame: fc.nat(),
    path: fc.array(fc.nat(), { maxLength: 4 }),
    value: fc.oneof(plainValue, fc.integer(), fc.maxSafeNat()),
  }),
  fc.record({ kind: fc.constant('type' as const), frame: fc.nat(), type: fc.nat(16) }),
  fc.record({ kind: fc.constant('drop' as const), frame: fc.nat() }),
  fc.record({ kind: fc.constant('copy' as const), frame: fc.nat(), to: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), frame: fc.nat(), with: fc.nat() }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(bytes: Uint8Array, change: Mutation): Uint8Array {
  const { frames, tail } = splitFrames(bytes);
  if (change.kind === 'cut') return bytes.slice(0, change.at % (bytes.length + 1));
  if (change.kind === 'append') return concatBytes([bytes, change.bytes]);
  if (frames.length === 0) return bytes;
  const index = change.frame % frames.length;
  const frame = frames[index] as Uint8Array;
  switch (change.kind) {
    case 'byte': {
      const copy = frame.slice();
      copy[change.at % copy.length] = change.value;
      frames[index] = copy;
      break;
    }
    case 'length': {
      const copy = frame.slice();
      const view = new DataView(copy.buffer);
      const length = change.relative ? view.getUint32(4, true) + change.length : Math.abs(change.length);
      view.setUint32(4, Math.max(0, length) >>> 0, true);
      frames[index] = copy;
      break;
    }
    case 'value': {
      let value: unknown;
      try {
        value = messagePack.unpack(frame.subarray(FRAME_HEADER_BYTES));
      } catch {
        return bytes;
      }
      frames[index] = reframe(
        frame[3] as number,
        messagePack.pack(replaceSomewhere(value, change.path, change.value)),
      );
      break;
    }
    case 'type': {
      const copy = frame.slice();
      copy[3] = change.type;
      frames[index] = copy;
      break;
    }
    case 'drop':
      frames.splice(index, 1);
      break;
    case 'copy':
      frames.splice(change.to % (frames.length + 1), 0, frame);
      break;
    case 'swap': {
      const other = change.with % frames.length;
      frames[index] = frames[other] as Uint8Array;
      frames[other] = frame;
      break;
    }
  }
  const result = concatBytes([...frames, tail]);
  // The changed frame's checksum is made right again (over what its length now covers).
  let offset = 0;
  for (let i = 0; i < index && i < frames.length; i++) offset += (frames[i] as Uint8Array).length;
  if (change.kind !== 'drop' && change.kind !== 'swap' && change.kind !== 'copy') fixChecksum(result, offset);
  return result;
}

/** What a result of `readRecordFile` must hold to, whatever file it came from. */
function expectConsistent(contents: RecordFileContents, size: number): void {
  const { entries, trailer } = contents;
  entries.forEach((entry, seq) => {
    expect(entry.seq).toBe(seq);
    if (seq > 0) expect(entry.icount).toBeGreaterThanOrEqual((entries[seq - 1] as LogEntry).icount);
    if (entry.kind === 'stop') expect(seq).toBe(entries.length - 1);
  });
  expect(contents.truncated).toBe(trailer === undefined);
  expect(contents.header.disks.length).toBeLessThanOrEqual(RECORD_DISKS_MAX);
  expect(contents.discardedBytes).toBeGreaterThanOrEqual(0);
  expect(contents.discardedBytes).toBeLessThan(size);
  for (const point of contents.index) expect(entries[point.seq]?.icount).toBe(point.icount);
  if (trailer) {
    const last = entries.at(-1);
    expect(contents.discardedBytes).toBe(0);
    expect(trailer.entryCount).toBe(entries.length);
    expect(trailer.lastIcount).toBe(last?.icount ?? 0);
    expect(trailer.exitStatus).toBe(last?.kind === 'stop' ? last.exitStatus : null);
  }
}

/** Reads `bytes`: the contents, or the typed error; any other exception fails the test. */
function read(bytes: Uint8Array): RecordFileContents | LogFormatError {
  try {
    const contents = readRecordFile(bytes);
    expectConsistent(contents, bytes.length);
    return contents;
  } catch (error) {
    if (LogFormatError.is(error)) return error;
    throw error;
  }
}

function plain(entries: readonly LogEntry[]): PlainValue {
  // Byte arrays compare by content; msgpack hands back Buffers in Node.
  return JSON.parse(
    JSON.stringify(entries, (_key, value) => (value instanceof Uint8Array ? Array.from(value) : value)),
  );
}

describe('record file reader (fuzz)', () => {
  it('reads a whole recording whole, and every prefix of one as cut short', () => {
    fc.assert(
      fc.property(recording, fc.nat(), ({ bytes, entries, finished }, cutAt) => {
        const whole = readRecordFile(bytes);
        expect(plain(whole.entries)).toEqual(plain(entries));
        expect(whole.truncated).toBe(!finished);
        const headerLength = (splitFrames(bytes).frames[0] as Uint8Array).length;
        if (bytes.length === headerLength) return;
        const cut = headerLength + (cutAt % (bytes.length - headerLength));
        const prefix = readRecordFile(bytes.subarray(0, cut));
        expect(prefix.truncated).toBe(true);
        expect(plain(prefix.entries)).toEqual(plain(entries.slice(0, prefix.entries.length)));
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a whole recording whose one length field is damaged, never reading it as cut short', () => {
    fc.assert(
      fc.property(
        recording.filter(({ finished }) => finished),
        fc.nat(),
        fc.integer({ min: 1, max: FRAME_PAYLOAD_BYTES_MAX }),
        ({ bytes }, frameChoice, delta) => {
          const frames = new FrameDecoder().push(bytes);
          const frame = frames[frameChoice % frames.length] as { offset: number; length: number };
          const damaged = bytes.slice();
          const view = new DataView(damaged.buffer);
          view.setUint32(frame.offset + 4, (frame.length - FRAME_HEADER_BYTES + delta) >>> 0, true);
          expect(read(damaged)).toBeInstanceOf(LogFormatError);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses a whole recording whose trailer was rewritten to say anything else', () => {
    fc.assert(
      fc.property(
        recording.filter(({ finished }) => finished),
        fc.constantFrom('entryCount', 'lastIcount', 'exitStatus'),
        fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constant(null)),
        ({ bytes }, field, change) => {
          const { frames } = splitFrames(bytes);
          const trailer = messagePack.unpack(
            (frames.at(-1) as Uint8Array).subarray(FRAME_HEADER_BYTES),
          ) as Record<string, number | null>;
          const was = trailer[field] ?? null;
          const now = change === null ? (was === null ? 0 : null) : (was ?? 0) + change;
          if (now === was || change === 0) return;
          frames[frames.length - 1] = reframe(
            FrameType.recordTrailer,
            messagePack.pack({ ...trailer, [field]: now }),
          );
          expect(read(concatBytes(frames))).toBeInstanceOf(LogFormatError);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('meets damaged recordings, checksums made right, with a consistent result or a LogFormatError only', () => {
    fc.assert(
      fc.property(recording, fc.array(mutation, { minLength: 1, maxLength: 3 }), ({ bytes }, changes) => {
        let damaged = bytes;
        for (const change of changes) damaged = mutate(damaged, change);
        read(damaged);
      }),
      { numRuns: 1500 },
    );
  });
});
