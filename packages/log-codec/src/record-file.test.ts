import type { LogEntry } from '@ftvm/core';
import { LogFormatError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { concatBytes, FRAME_ENTRIES_MAX } from './log-stream.js';
import { INDEX_INTERVAL_FRAMES, RecordFileWriter, readRecordFile } from './record-file.js';

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

/** Writes a file, flushing every `flushEvery` entries as the recorder does at slice ends. */
function writeFile(
  count: number,
  flushEvery: number,
  finish = true,
): { bytes: Uint8Array; entries: LogEntry[] } {
  const writer = new RecordFileWriter();
  const parts = [writer.start(header)];
  const entries: LogEntry[] = [];
  for (let seq = 0; seq < count; seq++) {
    entries.push(entry(seq));
    parts.push(writer.append(entries[seq] as LogEntry));
    if ((seq + 1) % flushEvery === 0) parts.push(writer.flush());
  }
  if (finish) parts.push(writer.finish(0));
  return { bytes: concatBytes(parts), entries };
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
        expect(() => readRecordFile(cut)).toThrow(LogFormatError);
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
