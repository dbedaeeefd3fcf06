import type { LogEntry } from '@ftvm/core';
import { LogFormatError } from '@ftvm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logEntries } from './arbitraries.test-support.js';
import { encodeFrame, FRAME_HEADER_BYTES, FRAME_PAYLOAD_BYTES_MAX, FrameType } from './frame.js';
import {
  decodeEntries,
  encodeEntries,
  FRAME_ENTRIES_MAX,
  LogDecoder,
  LogEncoder,
  messagePack,
} from './log-stream.js';

function normalise(entries: readonly LogEntry[]): unknown {
  // Byte arrays compare by content; msgpack hands back Buffers in Node.
  return JSON.parse(
    JSON.stringify(entries, (_key, value) =>
      value instanceof Uint8Array ? { bytes: Array.from(value) } : value,
    ),
  );
}

describe('log stream', () => {
  it('round-trips every entry kind (property)', () => {
    fc.assert(
      fc.property(logEntries(), (entries) => {
        expect(normalise(decodeEntries(encodeEntries(entries)))).toEqual(normalise(entries));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes the same entries whatever the chunking of the stream (property)', () => {
    fc.assert(
      fc.property(logEntries(40), fc.array(fc.nat(200), { maxLength: 30 }), (entries, cuts) => {
        const bytes = encodeEntries(entries);
        const decoder = new LogDecoder();
        const decoded: LogEntry[] = [];
        let position = 0;
        for (const cut of cuts) {
          const end = Math.min(bytes.length, position + cut);
          decoded.push(...decoder.push(bytes.subarray(position, end)));
          position = end;
        }
        decoded.push(...decoder.push(bytes.subarray(position)));
        decoder.finish();
        expect(normalise(decoded)).toEqual(normalise(entries));
      }),
      { numRuns: 200 },
    );
  });

  it('closes a frame by itself when it is full', () => {
    const encoder = new LogEncoder();
    let frames = 0;
    for (let seq = 0; seq < FRAME_ENTRIES_MAX * 2 + 5; seq++) {
      if (encoder.append({ kind: 'progress', seq, icount: seq * 10 })) frames++;
    }
    expect(frames).toBe(2);
    expect(encoder.pendingEntries).toBe(5);
  });

  it('refuses entries appended out of order', () => {
    const encoder = new LogEncoder();
    encoder.append({ kind: 'progress', seq: 0, icount: 10 });
    expect(() => encoder.append({ kind: 'progress', seq: 2, icount: 10 })).toThrow(LogFormatError);
    expect(() => encoder.append({ kind: 'progress', seq: 1, icount: 9 })).toThrow(/backwards/);
  });
});

function reasonOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (LogFormatError.is(error)) return error.reason;
    throw error; // any other kind of exception fails the test
  }
  return undefined;
}

describe('hostile and damaged input', () => {
  const sample: LogEntry[] = [
    {
      kind: 'event',
      seq: 0,
      icount: 5,
      device: 'uart',
      event: { type: 'rx-bytes', data: new Uint8Array([104, 105]) },
    },
    { kind: 'nondet', seq: 1, icount: 90, device: 'clint', key: 'monotonic-ns', value: 123456 },
    { kind: 'checkpoint', seq: 2, icount: 100, stateHash: new Uint8Array(16).fill(3) },
    { kind: 'stop', seq: 3, icount: 120, exitStatus: 0 },
  ];
  const bytes = encodeEntries(sample);

  it('gives a distinct typed error for each kind of damage', () => {
    const badMagic = bytes.slice();
    badMagic[0] = 0;
    expect(reasonOf(() => decodeEntries(badMagic))).toBe('bad-magic');
    const newer = bytes.slice();
    newer[2] = 9;
    expect(reasonOf(() => decodeEntries(newer))).toBe('unsupported-version');
    const flipped = bytes.slice();
    flipped[FRAME_HEADER_BYTES + 3] = (flipped[FRAME_HEADER_BYTES + 3] as number) ^ 1;
    expect(reasonOf(() => decodeEntries(flipped))).toBe('bad-checksum');
    expect(reasonOf(() => decodeEntries(bytes.subarray(0, bytes.length - 1)))).toBe('truncated');
    const huge = bytes.slice(0, FRAME_HEADER_BYTES);
    new DataView(huge.buffer).setUint32(4, FRAME_PAYLOAD_BYTES_MAX + 1, true);
    expect(reasonOf(() => new LogDecoder().push(huge))).toBe('oversized');
    const garbage = encodeFrame(FrameType.entries, new Uint8Array([0xc1, 0xc1]));
    expect(reasonOf(() => decodeEntries(garbage))).toBe('malformed-entry');
    const badKind = encodeFrame(FrameType.entries, messagePack.pack([0, 0, [], [9, 0]]));
    expect(reasonOf(() => decodeEntries(badKind))).toBe('malformed-entry');
    const backwards = encodeFrame(FrameType.entries, messagePack.pack([0, 10, [], [2, -5]]));
    expect(reasonOf(() => decodeEntries(backwards))).toBe('out-of-order');
    const gap = new Uint8Array([...encodeEntries(sample.slice(0, 1)), ...encodeEntries(sample.slice(2))]);
    expect(reasonOf(() => decodeEntries(gap))).toBe('out-of-order');
  });

  it('meets random bytes and mutated frames with typed errors only (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (random) => {
        reasonOf(() => decodeEntries(random));
        reasonOf(() => decodeEntries(new Uint8Array([0x46, 0x54, 1, 1, ...random])));
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (mutations) => {
          const mutated = bytes.slice();
          for (const [position, value] of mutations) mutated[position] = value;
          reasonOf(() => decodeEntries(mutated));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('meets well-checksummed hostile payloads with typed errors only (fuzz)', () => {
    const anything = fc.anything({ maxDepth: 3, withTypedArray: true, withBigInt: false });
    fc.assert(
      fc.property(fc.array(anything, { maxLength: 6 }), (items) => {
        let payload: Uint8Array;
        try {
          payload = messagePack.pack(items);
        } catch {
          return; // not encodable: nothing to test
        }
        reasonOf(() => decodeEntries(encodeFrame(FrameType.entries, payload)));
        reasonOf(() =>
          decodeEntries(encodeFrame(FrameType.entries, messagePack.pack([0, 0, ['uart'], ...items]))),
        );
      }),
      { numRuns: 1000 },
    );
  });
});
