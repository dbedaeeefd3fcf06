import type { LogEntry, PlainValue } from '@ftvm/core';
import { LogFormatError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX,
  FrameDecoder,
  FrameType,
} from './frame.js';
import { concatBytes, encodeEntries, FRAME_ENTRIES_MAX, messagePack } from './log-stream.js';
import {
  INDEX_INTERVAL_FRAMES,
  RECORD_DISKS_MAX,
  RECORD_FILE_FORMAT,
  RECORD_FILE_VERSION,
  RecordFileWriter,
  readRecordFile,
} from './record-file.js';

const header = {
  machine: { ramSizeBytes: 64 * 2 ** 20, clock: 'host' },
  image: { name: 'hello.elf', digest: 'sha256:00' },
  disks: [],
  writer: 'test',
};

function entry(seq: number): LogEntry {
  return seq % 3 === 0
    ? { kind: 'nondet', seq, icount: seq * 7, device: 'clint', key: 'monotonic-ns', value: seq * 1000 }
    : {
        kind: 'event',
        seq,
        icount: seq * 7,
        device: 'uart',
        event: { type: 'rx-bytes', data: new Uint8Array([seq & 255]) },
      };
}

/**
 * Writes a file, flushing every `flushEvery` entries as the recorder does at slice ends. A finished
 * file ends with the guest's power-off (exit status 0), as a recording of a guest that stopped does.
 */
function writeFile(
  count: number,
  flushEvery: number,
  finish = true,
): { bytes: Uint8Array; entries: LogEntry[] } {
  const writer = new RecordFileWriter();
  const parts = [writer.start(header)];
  const entries: LogEntry[] = [];
  for (let seq = 0; seq < count; seq++) {
    entries.push(
      finish && seq === count - 1 ? { kind: 'stop', seq, icount: seq * 7, exitStatus: 0 } : entry(seq),
    );
    parts.push(writer.append(entries[seq] as LogEntry));
    if ((seq + 1) % flushEvery === 0) parts.push(writer.flush());
  }
  if (finish) parts.push(writer.finish(0));
  return { bytes: concatBytes(parts), entries };
}

/** The frames of a file, each as its own bytes. */
function framesOf(bytes: Uint8Array): Uint8Array[] {
  return new FrameDecoder()
    .push(bytes)
    .map((frame) => bytes.slice(frame.offset, frame.offset + frame.length));
}

function frameOf(type: number, value: unknown): Uint8Array {
  return encodeFrame(type, messagePack.pack(value));
}

function headerFrame(disks: readonly PlainValue[] = []): Uint8Array {
  return frameOf(FrameType.recordHeader, {
    ...header,
    disks,
    format: RECORD_FILE_FORMAT,
    version: RECORD_FILE_VERSION,
  });
}

function trailerFrame(entryCount: number, lastIcount: number, exitStatus: number | null): Uint8Array {
  return frameOf(FrameType.recordTrailer, { entryCount, lastIcount, exitStatus });
}

/** A copy of `bytes` with the length field of the frame at `offset` set to `length`. */
function withLength(bytes: Uint8Array, offset: number, length: number): Uint8Array {
  const damaged = bytes.slice();
  new DataView(damaged.buffer).setUint32(offset + 4, length, true);
  return damaged;
}

function reasonOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (LogFormatError.is(error)) return error.reason;
    throw error;
  }
  return undefined;
}

describe('record file', () => {
  it('reads back its header, entries, index points and trailer', () => {
    const { bytes, entries } = writeFile(FRAME_ENTRIES_MAX * 2 + 100, 1000);
    const contents = readRecordFile(bytes);
    expect(contents.header.image.name).toBe('hello.elf');
    expect(contents.header.format).toBe('ftvm-record');
    expect(contents.entries).toHaveLength(entries.length);
    expect(contents.entries.at(-1)?.icount).toBe((entries.length - 1) * 7);
    expect(contents.trailer).toEqual({
      entryCount: entries.length,
      lastIcount: (entries.length - 1) * 7,
      exitStatus: 0,
    });
    expect(contents.truncated).toBe(false);
    expect(contents.discardedBytes).toBe(0);
    expect(contents.index.length).toBeGreaterThanOrEqual(1);
    for (const point of contents.index) {
      // Each index point names the first entry of a frame at that offset: decoding from there works.
      expect(contents.entries[point.seq]?.icount).toBe(point.icount);
      expect(bytes[point.offset]).toBe(0x46);
    }
  });

  it('writes an index point after the first frame and every INDEX_INTERVAL_FRAMES frames after it', () => {
    const frames = INDEX_INTERVAL_FRAMES * 3;
    const { bytes } = writeFile(frames * 4, 4);
    expect(readRecordFile(bytes).index.map((point) => point.seq)).toEqual(
      [0, 1, 2].map((n) => n * INDEX_INTERVAL_FRAMES * 4),
    );
  });

  it('reads a file cut at every byte offset up to its last whole frame', () => {
    const { bytes, entries } = writeFile(40, 5, true);
    const headerOnly = new RecordFileWriter().start(header).length;
    let previousCount = 0;
    for (let length = 0; length <= bytes.length; length++) {
      const cut = bytes.subarray(0, length);
      if (length < headerOnly) {
        // Says how much of the header there is, where it can tell.
        expect(() => readRecordFile(cut)).toThrow(
          length < FRAME_HEADER_BYTES
            ? `record file ends before its header does (${length} bytes, not even a frame header)`
            : `the header frame needs ${headerOnly} bytes, the file holds ${length}`,
        );
        continue;
      }
      const contents = readRecordFile(cut);
      expect(contents.entries.length).toBeGreaterThanOrEqual(previousCount);
      expect(contents.entries).toEqual(
        entries
          .slice(0, contents.entries.length)
          .map((item) => expect.objectContaining({ seq: item.seq, icount: item.icount })),
      );
      expect(contents.entries.length % 5 === 0 || contents.entries.length === entries.length).toBe(true);
      expect(contents.truncated).toBe(length < bytes.length);
      previousCount = contents.entries.length;
    }
    expect(previousCount).toBe(entries.length);
  });

  it('refuses a file that is not a record file, or is damaged inside a frame', () => {
    expect(() => readRecordFile(new TextEncoder().encode('hello world, not a recording'))).toThrow(
      LogFormatError,
    );
    const { bytes } = writeFile(20, 5);
    const damaged = bytes.slice();
    damaged[damaged.length - 40] = (damaged[damaged.length - 40] as number) ^ 0xff;
    expect(() => readRecordFile(damaged)).toThrow(LogFormatError);
  });
});

describe('a damaged recording is refused, never read as cut short', () => {
  it('refuses a whole recording with one damaged length field, whichever frame it is in', () => {
    const { bytes } = writeFile(40, 5);
    const frames = new FrameDecoder().push(bytes);
    expect(frames.length).toBeGreaterThan(5);
    for (const frame of frames) {
      const pastTheEnd = bytes.length - frame.offset - FRAME_HEADER_BYTES + 1;
      for (const length of [pastTheEnd, pastTheEnd + 1000, FRAME_PAYLOAD_BYTES_MAX, frame.length * 256]) {
        if (length <= frame.length - FRAME_HEADER_BYTES) continue;
        const damaged = withLength(bytes, frame.offset, length);
        expect(
          reasonOf(() => readRecordFile(damaged)),
          `frame at ${frame.offset}, length ${length}`,
        ).toEqual(expect.any(String));
      }
    }
  });

  it('refuses a file without a trailer whose last whole frame has a damaged length field', () => {
    // A recording cut at a frame boundary (a crash between slices) and then damaged: its last frame
    // is whole, yet its length says it runs past the end.
    const { bytes } = writeFile(40, 5, false);
    const last = new FrameDecoder().push(bytes).at(-1);
    expect(last?.type).toBe(FrameType.entries);
    const damaged = withLength(bytes, last?.offset ?? 0, (last?.length ?? 0) + 100);
    expect(reasonOf(() => readRecordFile(damaged))).toBe('bad-checksum');
  });

  it('refuses a file that ends with a whole trailer after a frame that runs past the end', () => {
    // Two faults in one frame (its length and a payload byte): its checksum no longer tells where
    // it ends, but the trailer at the end says the file was finished.
    const { bytes } = writeFile(40, 5);
    const frames = new FrameDecoder().push(bytes);
    const victim = frames[3] as { offset: number; length: number };
    const damaged = withLength(bytes, victim.offset, bytes.length);
    const payloadByte = victim.offset + FRAME_HEADER_BYTES + 2;
    damaged[payloadByte] = (damaged[payloadByte] as number) ^ 0x10;
    expect(() => readRecordFile(damaged)).toThrow(/record trailer follows it/);
  });

  it('refuses bytes after the trailer, a whole frame or not', () => {
    const frames = [headerFrame(), encodeEntries([entry(0), entry(1)])];
    const whole = concatBytes([...frames, trailerFrame(2, 7, null)]);
    expect(readRecordFile(whole).truncated).toBe(false);
    const more = encodeEntries([{ kind: 'progress', seq: 2, icount: 14 }]);
    expect(() => readRecordFile(concatBytes([whole, more]))).toThrow(/after the trailer/);
    expect(() => readRecordFile(concatBytes([whole, more.subarray(0, 9)]))).toThrow(/after the trailer/);
    // A trailer that counts the entries after it too: only their place gives the file away.
    const countsThem = concatBytes([...frames, trailerFrame(3, 14, null), more]);
    expect(() => readRecordFile(countsThem)).toThrow(LogFormatError);
  });

  it('refuses log entries before the header', () => {
    const bytes = concatBytes([encodeEntries([entry(0)]), headerFrame(), trailerFrame(1, 0, null)]);
    expect(reasonOf(() => readRecordFile(bytes))).toBe('bad-magic');
  });

  it("refuses a trailer whose exit status or last icount is not the log's", () => {
    const log = [entry(0), { kind: 'stop', seq: 1, icount: 40, exitStatus: 3 } as LogEntry];
    const file = (trailer: Uint8Array, entries = log) =>
      concatBytes([headerFrame(), encodeEntries(entries), trailer]);
    expect(readRecordFile(file(trailerFrame(2, 40, 3))).trailer?.exitStatus).toBe(3);
    expect(() => readRecordFile(file(trailerFrame(2, 40, 0)))).toThrow(
      /exit status 0 is not the log's \(3\)/,
    );
    expect(() => readRecordFile(file(trailerFrame(2, 40, null)))).toThrow(/exit status/);
    expect(() => readRecordFile(file(trailerFrame(2, 41, 3)))).toThrow(/last icount 41/);
    // No power-off in the log (the user quit): the trailer has no exit status either.
    const quit = [entry(0), { kind: 'progress', seq: 1, icount: 40 } as LogEntry];
    expect(readRecordFile(file(trailerFrame(2, 40, null), quit)).trailer?.exitStatus).toBeNull();
    expect(() => readRecordFile(file(trailerFrame(2, 40, 0), quit))).toThrow(/exit status 0/);
  });

  it('refuses log entries after the power-off', () => {
    const stop: LogEntry = { kind: 'stop', seq: 1, icount: 10, exitStatus: 0 };
    const inOneFrame = concatBytes([headerFrame(), encodeEntries([entry(0), stop, entry(2)])]);
    expect(reasonOf(() => readRecordFile(inOneFrame))).toBe('out-of-order');
    const inNextFrame = concatBytes([
      headerFrame(),
      encodeEntries([entry(0), stop]),
      encodeEntries([entry(2)]),
    ]);
    expect(reasonOf(() => readRecordFile(inNextFrame))).toBe('out-of-order');
  });

  it('refuses a recording with more disks than the machine has slots for', () => {
    const disk = (n: number) => ({ name: `d${n}.img`, digest: 'sha256:00', sizeBytes: 512, readOnly: false });
    const disks = (count: number) => Array.from({ length: count }, (_, n) => disk(n));
    const file = (count: number) => concatBytes([headerFrame(disks(count)), trailerFrame(0, 0, null)]);
    expect(readRecordFile(file(RECORD_DISKS_MAX)).header.disks).toHaveLength(RECORD_DISKS_MAX);
    expect(() => readRecordFile(file(RECORD_DISKS_MAX + 1))).toThrow(/9 disks/);
    expect(() => new RecordFileWriter().start({ ...header, disks: disks(RECORD_DISKS_MAX + 1) })).toThrow(
      LogFormatError,
    );
    const nameless = concatBytes([headerFrame([{ digest: 'sha256:00' }]), trailerFrame(0, 0, null)]);
    expect(() => readRecordFile(nameless)).toThrow(/disk without a name/);
  });

  it('refuses an index point that names no entries frame', () => {
    const { bytes } = writeFile(40, 5);
    const frames = framesOf(bytes);
    const at = frames.findIndex((frame) => frame[3] === FrameType.indexPoint);
    const [icount, seq, offset] = messagePack.unpack((frames[at] as Uint8Array).subarray(12)) as number[];
    const lying = [...frames];
    lying[at] = frameOf(FrameType.indexPoint, [icount, seq, (offset as number) + 1, null]);
    expect(() => readRecordFile(concatBytes(lying))).toThrow(/index point names entry/);
  });

  it('refuses a cut frame full of frame-like bytes in bounded time, and reads a cut frame of plain bytes', () => {
    const start = concatBytes([headerFrame(), encodeEntries([entry(0)])]);
    const runsPastEnd = (payload: Uint8Array) => {
      const frameHead = new Uint8Array(FRAME_HEADER_BYTES);
      frameHead.set([0x46, 0x54, 1, FrameType.entries]);
      new DataView(frameHead.buffer).setUint32(4, payload.length + 1, true);
      return concatBytes([start, frameHead, payload]);
    };
    const hostile = new Uint8Array(FRAME_PAYLOAD_BYTES_MAX - 1);
    for (let at = 0; at + 4 <= hostile.length; at += 4) hostile.set([0x46, 0x54, 1, FrameType.entries], at);
    expect(() => readRecordFile(runsPastEnd(hostile))).toThrow(/too many frame-like bytes/);
    const plain = readRecordFile(runsPastEnd(new Uint8Array(FRAME_PAYLOAD_BYTES_MAX - 1)));
    expect(plain.truncated).toBe(true);
    expect(plain.entries).toHaveLength(1);
  });

  it('reads a frame cut by a crash as cut short even when its payload holds frame-like bytes', () => {
    // The guest printed a frame header (say, it sent a recording over its console).
    const framed = encodeFrame(FrameType.recordTrailer, messagePack.pack({ entryCount: 1 }));
    const output: LogEntry = {
      kind: 'output',
      seq: 1,
      icount: 9,
      device: 'uart',
      stream: 'console',
      data: framed,
    };
    const whole = concatBytes([headerFrame(), encodeEntries([entry(0)]), encodeEntries([output])]);
    const lastFrame = new FrameDecoder().push(whole).at(-1) as { offset: number };
    for (let cut = lastFrame.offset + 1; cut < whole.length; cut++) {
      const contents = readRecordFile(whole.subarray(0, cut));
      expect(contents.truncated).toBe(true);
      expect(contents.entries).toHaveLength(1);
    }
  });
});

describe('record file writer', () => {
  it("refuses a trailer that disagrees with the log's power-off, and entries after it", () => {
    const stopped = new RecordFileWriter();
    const parts = [stopped.start(header), stopped.append({ kind: 'stop', seq: 0, icount: 5, exitStatus: 2 })];
    expect(() => stopped.append(entry(1))).toThrow(/after the power-off/);
    expect(() => stopped.finish(0)).toThrow(LogFormatError);
    expect(() => stopped.finish(null)).toThrow(LogFormatError);
    parts.push(stopped.finish(2));
    expect(readRecordFile(concatBytes(parts)).trailer).toEqual({
      entryCount: 1,
      lastIcount: 5,
      exitStatus: 2,
    });
    const running = new RecordFileWriter();
    running.start(header);
    running.append(entry(0));
    expect(() => running.finish(0)).toThrow(LogFormatError);
  });
});
