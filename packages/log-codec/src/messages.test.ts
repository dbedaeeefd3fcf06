import type { FtMessage, Handshake, LogEntry, StateSection } from '@ftvm/core';
import { FT_PROTOCOL_VERSION, LogFormatError } from '@ftvm/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { logEntries, plainValue } from './arbitraries.test-support.js';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX,
  FrameDecoder,
  FrameType,
} from './frame.js';
import { concatBytes, FRAME_ENTRIES_MAX, messagePack } from './log-stream.js';
import {
  AUTH_MAC_BYTES,
  AUTH_NONCE_BYTES,
  CHANNEL_ERROR_REASONS,
  decodeAuthChallenge,
  decodeAuthResponse,
  decodeChannelControl,
  decodeHandshake,
  encodeAuthChallenge,
  encodeAuthResponse,
  encodeChannelControl,
  encodeHandshake,
  encodeMessage,
  GOODBYE_REASON_LENGTH_MAX,
  LOG_FRAME_BYTES_TARGET,
  MessageDecoder,
  MessageEncoder,
  PAGE_NUMBER_MAX,
  TRANSFER_PAGE_BYTES,
  TRANSFER_PAGES_PER_MESSAGE_MAX,
  TRANSFER_STATE_DEVICES_MAX,
} from './messages.js';

/** Byte arrays (Buffers too) compared by content. */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, normalise(item)]));
  }
  return value;
}

const shortName = fc.string({ minLength: 1, maxLength: 12 });
const seqOrNone = fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER });

const section: fc.Arbitrary<StateSection> = fc.record({
  kind: shortName,
  version: fc.nat(1000),
  state: plainValue,
});

/** Every message type but log (whose entries depend on the messages before). */
const otherMessage: fc.Arbitrary<FtMessage> = fc.oneof(
  fc.record({
    type: fc.constant('ack' as const),
    receivedSeq: seqOrNone,
    appliedSeq: seqOrNone,
    appliedIcount: seqOrNone,
  }),
  fc.record({ type: fc.constant('heartbeat' as const), counter: fc.maxSafeNat() }),
  fc
    .tuple(fc.array(fc.integer({ min: 0, max: PAGE_NUMBER_MAX }), { maxLength: 4 }), fc.nat(255))
    .map(([pageNumbers, seed]) => {
      const pages = new Uint8Array(pageNumbers.length * TRANSFER_PAGE_BYTES);
      for (let i = 0; i < pages.length; i++) pages[i] = (i * (seed + 1) + seed) & 0xff;
      return { type: 'transfer-pages' as const, pageNumbers, pages };
    }),
  fc
    .tuple(
      fc.constantFrom('virtio7', 'virtio0'),
      fc.nat(1 << 20),
      fc.integer({ min: 1, max: 4 }),
      fc.nat(255),
    )
    .map(([device, sector, sectors, seed]) => {
      const data = new Uint8Array(sectors * 512);
      for (let i = 0; i < data.length; i++) data[i] = (i * (seed + 3)) & 0xff;
      return { type: 'transfer-disk' as const, device, offset: sector * 512, data };
    }),
  fc.record({
    type: fc.constant('transfer-state' as const),
    icount: fc.maxSafeNat(),
    nextSeq: fc.maxSafeNat(),
    cpu: section,
    devices: fc.dictionary(shortName, section, { maxKeys: 4 }),
    machine: plainValue,
    config: plainValue,
  }),
  fc.record({ type: fc.constant('goodbye' as const), reason: fc.string({ maxLength: 40 }) }),
);

type Draft = { log: LogEntry[] } | { other: FtMessage };

/** A channel's worth of messages: the log messages continue one another. */
const channelMessages: fc.Arbitrary<FtMessage[]> = fc
  .tuple(
    fc.array(
      fc.oneof(
        logEntries(12).map((log): Draft => ({ log })),
        otherMessage.map((other): Draft => ({ other })),
      ),
      { maxLength: 12 },
    ),
    fc.nat(1_000_000),
  )
  .map(([drafts, firstSeq]) => {
    let seq = firstSeq;
    let icount = 0;
    return drafts.map((draft): FtMessage => {
      if ('other' in draft) return draft.other;
      const base = icount;
      const entries = draft.log.map((entry) => ({ ...entry, seq: seq++, icount: base + entry.icount }));
      icount = entries.length > 0 ? (entries[entries.length - 1] as LogEntry).icount : icount;
      return { type: 'log', entries };
    });
  });

const handshake: Handshake = {
  vmId: 'vm-7',
  epoch: 3,
  role: 'primary',
  protocolVersion: FT_PROTOCOL_VERSION,
  host: 'host-a',
};

/** Runs `step`; passes when it returns or throws a LogFormatError, fails on any other exception. */
function onlyLogFormatErrors(step: () => unknown): LogFormatError | undefined {
  try {
    step();
    return undefined;
  } catch (error) {
    expect(LogFormatError.is(error), `not a LogFormatError: ${String(error)}`).toBe(true);
    return error as LogFormatError;
  }
}

function expectLogFormatError(step: () => unknown, reason?: LogFormatError['reason']): void {
  const error = onlyLogFormatErrors(step);
  expect(error, 'expected a LogFormatError').toBeInstanceOf(LogFormatError);
  if (reason) expect(error?.reason).toBe(reason);
}

function decodeAll(bytes: Uint8Array): FtMessage[] {
  const decoder = new MessageDecoder();
  const messages = decoder.push(bytes);
  decoder.finish();
  return messages;
}

const entry = (seq: number, icount = seq * 10): LogEntry => ({ kind: 'progress', seq, icount });
const range = (from: number, count: number): LogEntry[] =>
  Array.from({ length: count }, (_, index) => entry(from + index));

describe('protocol messages', () => {
  it('round-trips every message type in any chunking (property)', () => {
    fc.assert(
      fc.property(channelMessages, fc.array(fc.nat(300), { maxLength: 20 }), (messages, cuts) => {
        const encoder = new MessageEncoder();
        const bytes = concatBytes(messages.map((message) => encoder.encode(message)));
        const decoder = new MessageDecoder();
        const decoded: FtMessage[] = [];
        let position = 0;
        for (const cut of cuts) {
          const end = Math.min(bytes.length, position + cut);
          decoded.push(...decoder.push(bytes.subarray(position, end)));
          position = end;
        }
        decoded.push(...decoder.push(bytes.subarray(position)));
        decoder.finish();
        // A log message without entries takes no bytes at all.
        const expected = messages.filter((message) => message.type !== 'log' || message.entries.length > 0);
        expect(normalise(decoded)).toEqual(normalise(expected));
      }),
      { numRuns: 150 },
    );
  });

  it('round-trips each type on its own with encodeMessage', () => {
    const messages: FtMessage[] = [
      { type: 'log', entries: range(5, 3) },
      { type: 'ack', receivedSeq: -1, appliedSeq: -1, appliedIcount: -1 },
      { type: 'ack', receivedSeq: 10, appliedSeq: 8, appliedIcount: Number.MAX_SAFE_INTEGER },
      { type: 'heartbeat', counter: 0 },
      { type: 'transfer-pages', pageNumbers: [], pages: new Uint8Array(0) },
      { type: 'transfer-pages', pageNumbers: [PAGE_NUMBER_MAX, 0], pages: new Uint8Array(8192).fill(9) },
      { type: 'transfer-disk', device: 'virtio7', offset: 0, data: new Uint8Array(512).fill(1) },
      { type: 'transfer-disk', device: 'virtio7', offset: 2 ** 40, data: new Uint8Array(1 << 20).fill(2) },
      {
        type: 'transfer-state',
        icount: 123,
        nextSeq: 6,
        cpu: { kind: 'riscv-cpu', version: 1, state: { pc: 0x8000_0000, regs: [1, 2, 3] } },
        devices: { uart: { kind: 'ns16550a', version: 2, state: new Uint8Array([1, 2]) } },
        machine: { time: 5, power: 'on' },
        config: null,
      },
      { type: 'goodbye', reason: '' },
      { type: 'goodbye', reason: 'x'.repeat(GOODBYE_REASON_LENGTH_MAX) },
    ];
    for (const message of messages) {
      const decoded = decodeAll(encodeMessage(message));
      expect(normalise(decoded)).toEqual(normalise([message]));
    }
    const pages = decodeAll(encodeMessage(messages[5] as FtMessage))[0];
    expect(pages?.type === 'transfer-pages' && pages.pages.constructor).toBe(Uint8Array);
  });

  it('cuts a log message of many entries into several frames', () => {
    const entries = range(0, FRAME_ENTRIES_MAX * 2 + 1);
    const decoded = decodeAll(encodeMessage({ type: 'log', entries }));
    expect(decoded.map((message) => message.type === 'log' && message.entries.length)).toEqual([
      FRAME_ENTRIES_MAX,
      FRAME_ENTRIES_MAX,
      1,
    ]);
    expect(decoded.flatMap((message) => (message.type === 'log' ? message.entries : []))).toEqual(entries);
  });

  it('cuts a log message of large entries into frames of bounded size', () => {
    const data = new Uint8Array(100_000).fill(7);
    const entries: LogEntry[] = Array.from({ length: 40 }, (_, seq) => ({
      kind: 'output',
      seq,
      icount: seq,
      device: 'net0',
      stream: 'tx',
      data,
    }));
    const bytes = encodeMessage({ type: 'log', entries });
    const frames = new FrameDecoder().push(bytes);
    expect(frames.length).toBeGreaterThan(3);
    for (const frame of frames) expect(frame.payload.length).toBeLessThanOrEqual(LOG_FRAME_BYTES_TARGET);
    const decoded = decodeAll(bytes).flatMap((message) => (message.type === 'log' ? message.entries : []));
    expect(decoded.map((item) => item.seq)).toEqual(entries.map((item) => item.seq));
    for (const item of decoded) {
      expect(
        item.kind === 'output' && item.data.length === data.length && item.data.every((b) => b === 7),
      ).toBe(true);
    }
  });

  it('keeps the log consecutive across the messages of a channel', () => {
    const encoder = new MessageEncoder();
    encoder.encode({ type: 'log', entries: range(0, 3) });
    expectLogFormatError(() => encoder.encode({ type: 'log', entries: range(4, 1) }), 'out-of-order');
    expectLogFormatError(() => encoder.encode({ type: 'log', entries: [entry(3, 5)] }), 'out-of-order');
    // A refused message changed nothing: the log continues where it was.
    expect(encoder.expectedSeq).toBe(3);
    encoder.encode({ type: 'heartbeat', counter: 1 });
    encoder.encode({ type: 'log', entries: range(3, 2) });
    expect(encoder.expectedSeq).toBe(5);

    // Two encoders that do not continue each other: the decoder refuses the gap.
    const bytes = concatBytes([
      encodeMessage({ type: 'log', entries: range(0, 3) }),
      encodeMessage({ type: 'ack', receivedSeq: 2, appliedSeq: 1, appliedIcount: 10 }),
      encodeMessage({ type: 'log', entries: range(5, 1) }),
    ]);
    const decoder = new MessageDecoder();
    expectLogFormatError(() => decoder.push(bytes), 'out-of-order');
    // The decoder stays failed.
    expectLogFormatError(() => decoder.push(new Uint8Array(0)), 'out-of-order');
    expectLogFormatError(() => decoder.finish(), 'out-of-order');
  });

  it('carries the most pages a transfer may hold in one frame, and refuses more', () => {
    expect(TRANSFER_PAGES_PER_MESSAGE_MAX * TRANSFER_PAGE_BYTES + 4096).toBeLessThan(FRAME_PAYLOAD_BYTES_MAX);
    const count = TRANSFER_PAGES_PER_MESSAGE_MAX;
    const pageNumbers = Array.from({ length: count }, (_, index) => index * 3);
    const pages = new Uint8Array(count * TRANSFER_PAGE_BYTES).fill(0xa5);
    const [decoded] = decodeAll(encodeMessage({ type: 'transfer-pages', pageNumbers, pages }));
    expect(decoded?.type === 'transfer-pages' && decoded.pageNumbers).toEqual(pageNumbers);
    expectLogFormatError(
      () =>
        encodeMessage({
          type: 'transfer-pages',
          pageNumbers: [...pageNumbers, 1],
          pages: new Uint8Array((count + 1) * TRANSFER_PAGE_BYTES),
        }),
      'oversized',
    );
  });

  it('refuses to encode malformed messages, with a LogFormatError', () => {
    const state = (patch: Record<string, unknown>): FtMessage =>
      ({
        type: 'transfer-state',
        icount: 1,
        nextSeq: 0,
        cpu: { kind: 'cpu', version: 1, state: null },
        devices: {},
        machine: null,
        config: null,
        ...patch,
      }) as FtMessage;
    const bad: unknown[] = [
      null,
      { type: 'nope' },
      { type: 'ack', receivedSeq: -2, appliedSeq: 0, appliedIcount: 0 },
      { type: 'ack', receivedSeq: 1.5, appliedSeq: 0, appliedIcount: 0 },
      { type: 'ack', receivedSeq: 0, appliedSeq: Number.NaN, appliedIcount: 0 },
      { type: 'ack', receivedSeq: 0, appliedSeq: 0, appliedIcount: 2 ** 53 },
      { type: 'ack', receivedSeq: '1', appliedSeq: 0, appliedIcount: 0 },
      { type: 'heartbeat', counter: -1 },
      { type: 'heartbeat' },
      { type: 'transfer-disk', device: 'virtio7', offset: 0, data: new Uint8Array(0) },
      { type: 'transfer-disk', device: 'virtio7', offset: 100, data: new Uint8Array(512) },
      { type: 'transfer-disk', device: 'virtio7', offset: 0, data: new Uint8Array(513) },
      { type: 'transfer-disk', device: 'virtio7', offset: 0, data: new Uint8Array((1 << 20) + 512) },
      { type: 'transfer-disk', device: '', offset: 0, data: new Uint8Array(512) },
      { type: 'transfer-disk', device: 'virtio7', offset: -512, data: new Uint8Array(512) },
      { type: 'transfer-pages', pageNumbers: [1], pages: new Uint8Array(4095) },
      { type: 'transfer-pages', pageNumbers: [-1], pages: new Uint8Array(4096) },
      { type: 'transfer-pages', pageNumbers: [2 ** 32], pages: new Uint8Array(4096) },
      { type: 'transfer-pages', pageNumbers: [1], pages: [0] },
      { type: 'transfer-pages', pageNumbers: 1, pages: new Uint8Array(4096) },
      state({ icount: -1 }),
      state({ nextSeq: 0.5 }),
      state({ cpu: { kind: '', version: 1, state: null } }),
      state({ cpu: { kind: 'cpu', version: -1, state: null } }),
      state({ cpu: { kind: 'cpu', version: 1, state: undefined } }),
      state({ cpu: null }),
      state({ devices: { uart: { kind: 'u', version: 1, state: new Date() } } }),
      state({ devices: { '': { kind: 'u', version: 1, state: null } } }),
      state({ devices: [] }),
      state({ machine: () => 1 }),
      state({ config: { a: 1n } }),
      {
        ...state({}),
        devices: Object.fromEntries(
          Array.from({ length: TRANSFER_STATE_DEVICES_MAX + 1 }, (_, index) => [
            `d${index}`,
            { kind: 'k', version: 0, state: null },
          ]),
        ),
      },
      { type: 'goodbye', reason: 'x'.repeat(GOODBYE_REASON_LENGTH_MAX + 1) },
      { type: 'goodbye', reason: 7 },
      { type: 'log', entries: 'no' },
      { type: 'log', entries: [entry(0, 10), entry(1, 5)] },
      { type: 'log', entries: [entry(0), entry(2)] },
      { type: 'log', entries: [{ kind: 'event', seq: 0, icount: 0, device: '', event: { type: 'x' } }] },
      {
        type: 'log',
        entries: [{ kind: 'nondet', seq: 0, icount: 0, device: 'd', key: 'k', value: undefined }],
      },
      { type: 'log', entries: [{ kind: 'output', seq: 0, icount: 0, device: 'd', stream: 's', data: 'x' }] },
      { type: 'log', entries: [{ kind: 'checkpoint', seq: 0, icount: 0, stateHash: new Uint8Array(2000) }] },
      { type: 'log', entries: [{ kind: 'teleport', seq: 0, icount: 0 }] },
      { type: 'log', entries: [{ kind: 'progress', seq: -1, icount: 0 }] },
    ];
    for (const message of bad) expectLogFormatError(() => encodeMessage(message as FtMessage));
  });

  it('finish() reports a stream cut inside a frame', () => {
    const bytes = encodeMessage({ type: 'heartbeat', counter: 5 });
    const decoder = new MessageDecoder();
    expect(decoder.push(bytes.subarray(0, bytes.length - 1))).toEqual([]);
    expectLogFormatError(() => decoder.finish(), 'truncated');
  });
});

describe('hostile input', () => {
  const craft = (type: number, value: unknown) => encodeFrame(type, messagePack.pack(value));

  it('meets random bytes with LogFormatError only (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        onlyLogFormatErrors(() => decodeAll(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('meets mutated frames with LogFormatError only (property)', () => {
    fc.assert(
      fc.property(
        channelMessages,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 }),
        (messages, flips) => {
          const encoder = new MessageEncoder();
          const bytes = concatBytes(messages.map((message) => encoder.encode(message)));
          if (bytes.length === 0) return;
          const mutated = new Uint8Array(bytes);
          const positions = new Map(flips.map(([position, mask]) => [position % mutated.length, mask]));
          for (const [position, mask] of positions) mutated[position] = (mutated[position] as number) ^ mask;
          const error = onlyLogFormatErrors(() => decodeAll(mutated));
          // A changed byte is always seen (the checksum covers header and payload).
          expect(error).toBeDefined();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('meets well-checksummed frames of wrong shapes with LogFormatError only (property)', () => {
    const types = [
      FrameType.entries,
      FrameType.ack,
      FrameType.heartbeat,
      FrameType.transferPages,
      FrameType.transferState,
      FrameType.goodbye,
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.oneof(
          plainValue,
          fc.array(plainValue, { maxLength: 7 }),
          fc.array(fc.oneof(fc.integer({ min: -3, max: 3 }), fc.double(), fc.constant(null)), {
            maxLength: 7,
          }),
        ),
        (type, value) => {
          const messages: FtMessage[] = [];
          const error = onlyLogFormatErrors(() => messages.push(...decodeAll(craft(type, value))));
          // Whatever was accepted is a well-formed message: it encodes again.
          if (!error) for (const message of messages) encodeMessage(message);
        },
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 64 }), (type, payload) => {
        onlyLogFormatErrors(() => decodeAll(encodeFrame(type, payload)));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses each wrong field of each message type', () => {
    const state = (patch: Partial<Record<number, unknown>>): unknown[] => {
      const items: unknown[] = [1, 0, ['cpu', 1, null], [], null, null];
      for (const [index, value] of Object.entries(patch)) items[Number(index)] = value;
      return items;
    };
    const cases: [number, unknown][] = [
      [FrameType.ack, [0, 0]],
      [FrameType.ack, [0, 0, 0, 0]],
      [FrameType.ack, [-2, 0, 0]],
      [FrameType.ack, [0, 0.5, 0]],
      [FrameType.ack, [0, 0, 2 ** 60]],
      [FrameType.ack, { receivedSeq: 1 }],
      [FrameType.heartbeat, [-1]],
      [FrameType.heartbeat, ['1']],
      [FrameType.heartbeat, 1],
      [FrameType.transferPages, [[1], new Uint8Array(4097)]],
      [FrameType.transferPages, [[1, 2], new Uint8Array(4096)]],
      [FrameType.transferPages, [[-1], new Uint8Array(4096)]],
      [FrameType.transferPages, [[2 ** 32], new Uint8Array(4096)]],
      [FrameType.transferPages, [[1.5], new Uint8Array(4096)]],
      [FrameType.transferPages, [[1], 'pages']],
      [FrameType.transferPages, [{ 0: 1 }, new Uint8Array(4096)]],
      [FrameType.transferPages, [Array(TRANSFER_PAGES_PER_MESSAGE_MAX + 1).fill(0), new Uint8Array(0)]],
      [FrameType.transferState, state({ 0: -1 })],
      [FrameType.transferState, state({ 1: 'x' })],
      [FrameType.transferState, state({ 2: ['cpu', 1] })],
      [FrameType.transferState, state({ 2: ['', 1, null] })],
      [FrameType.transferState, state({ 2: ['cpu', -1, null] })],
      [FrameType.transferState, state({ 3: {} })],
      [FrameType.transferState, state({ 3: [['uart', 'u', 1]] })],
      [FrameType.transferState, state({ 3: [['', 'u', 1, null]] })],
      [
        FrameType.transferState,
        state({
          3: [
            ['a', 'u', 1, null],
            ['a', 'u', 1, null],
          ],
        }),
      ],
      [
        FrameType.transferState,
        state({
          3: Array.from({ length: TRANSFER_STATE_DEVICES_MAX + 1 }, (_, i) => [`d${i}`, 'k', 0, null]),
        }),
      ],
      [FrameType.transferState, [...state({}), 'extra']],
      [FrameType.goodbye, ['x'.repeat(GOODBYE_REASON_LENGTH_MAX + 1)]],
      [FrameType.goodbye, [null]],
      [FrameType.goodbye, []],
      [FrameType.entries, [0, 0, []]],
      [FrameType.entries, [-1, 0, [], [2, 0]]],
      // Frames of the handshake or of record files have no place among messages.
      [FrameType.handshake, [1, 'vm', 0, 'primary', 'h']],
      [FrameType.authChallenge, [new Uint8Array(32)]],
      [FrameType.channelControl, ['accept']],
      [FrameType.recordHeader, {}],
      [99, []],
    ];
    for (const [type, value] of cases) expectLogFormatError(() => decodeAll(craft(type, value)));
    // Deeply nested state is refused, not a stack overflow.
    let deep: unknown = null;
    for (let i = 0; i < 100; i++) deep = [deep];
    expectLogFormatError(() => decodeAll(craft(FrameType.transferState, state({ 4: deep }))));
    // Trailing bytes after the MessagePack value.
    const heartbeat = messagePack.pack([1]);
    expectLogFormatError(
      () => decodeAll(encodeFrame(FrameType.heartbeat, concatBytes([heartbeat, new Uint8Array([0])]))),
      'malformed-entry',
    );
    // MessagePack extensions (a timestamp) are not plain data.
    const timestamp = new Uint8Array([0x91, 0xd6, 0xff, 0, 0, 0, 1]);
    expectLogFormatError(() => decodeAll(encodeFrame(FrameType.goodbye, timestamp)));
  });

  it('is unaffected by a __proto__ key in a hostile map', () => {
    // {"__proto__": {"polluted": 1}} inside the machine state.
    const key = new TextEncoder().encode('__proto__');
    const map = concatBytes([
      new Uint8Array([0x81, 0xa0 | key.length]),
      key,
      new Uint8Array([0x81, 0xa8]),
      new TextEncoder().encode('polluted'),
      new Uint8Array([0x01]),
    ]);
    const payload = concatBytes([
      new Uint8Array([0x96, 0x01, 0x00, 0x93, 0xa3]),
      new TextEncoder().encode('cpu'),
      new Uint8Array([0x01, 0xc0, 0x90]),
      map,
      new Uint8Array([0xc0]),
    ]);
    const [message] = decodeAll(encodeFrame(FrameType.transferState, payload));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(message?.type).toBe('transfer-state');
    if (message?.type === 'transfer-state') {
      expect(Object.getPrototypeOf(message.machine)).toBe(Object.prototype);
      expect((message.machine as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});

describe('handshake frames', () => {
  it('round-trips a handshake, from bytes or from a Frame', () => {
    const bytes = encodeHandshake(handshake);
    expect(decodeHandshake(bytes)).toEqual(handshake);
    const [frame] = new FrameDecoder().push(bytes);
    expect(decodeHandshake(frame!)).toEqual(handshake);
    expect(decodeHandshake(encodeHandshake({ ...handshake, role: 'backup', epoch: 0 })).role).toBe('backup');
  });

  it('reads the common fields of another version, extra fields and all', () => {
    const bytes = encodeFrame(
      FrameType.handshake,
      messagePack.pack([FT_PROTOCOL_VERSION + 1, 'vm-7', 3, 'backup', 'h', { future: true }]),
    );
    expect(decodeHandshake(bytes).protocolVersion).toBe(FT_PROTOCOL_VERSION + 1);
    const same = encodeFrame(
      FrameType.handshake,
      messagePack.pack([FT_PROTOCOL_VERSION, 'vm-7', 3, 'backup', 'h', { future: true }]),
    );
    expectLogFormatError(() => decodeHandshake(same), 'malformed-entry');
  });

  it('refuses malformed handshakes', () => {
    const bad: Handshake[] = [
      { ...handshake, vmId: '' },
      { ...handshake, vmId: 'v'.repeat(257) },
      { ...handshake, epoch: -1 },
      { ...handshake, epoch: 1.5 },
      { ...handshake, role: 'arbiter' as never },
      { ...handshake, protocolVersion: -1 },
      { ...handshake, host: '' },
      { ...handshake, host: 5 as never },
    ];
    for (const value of bad) expectLogFormatError(() => encodeHandshake(value));
    const payloads: unknown[] = [
      [1, 'vm', 0, 'primary'],
      [1, 'vm', 0, 'primary', ''],
      { vmId: 'vm' },
      'hello',
      [1, 'vm', 2 ** 60, 'primary', 'h'],
    ];
    for (const payload of payloads) {
      expectLogFormatError(() =>
        decodeHandshake(encodeFrame(FrameType.handshake, messagePack.pack(payload))),
      );
    }
    const good = encodeHandshake(handshake);
    expectLogFormatError(() => decodeHandshake(concatBytes([good, good])));
    expectLogFormatError(() => decodeHandshake(good.subarray(0, good.length - 1)), 'truncated');
    expectLogFormatError(() => decodeHandshake(encodeMessage({ type: 'heartbeat', counter: 1 })));
    expectLogFormatError(() => decodeHandshake(new Uint8Array([1, 2, 3])), 'bad-magic');
    const corrupt = new Uint8Array(good);
    corrupt[FRAME_HEADER_BYTES + 2] = (corrupt[FRAME_HEADER_BYTES + 2] as number) ^ 1;
    expectLogFormatError(() => decodeHandshake(corrupt), 'bad-checksum');
  });

  it('round-trips authentication tokens and channel controls, and refuses bad ones', () => {
    const nonce = new Uint8Array(AUTH_NONCE_BYTES).fill(3);
    const mac = new Uint8Array(AUTH_MAC_BYTES).fill(4);
    expect(decodeAuthChallenge(encodeAuthChallenge(nonce))).toEqual(nonce);
    expect(decodeAuthResponse(encodeAuthResponse(mac))).toEqual(mac);
    expectLogFormatError(() => encodeAuthChallenge(new Uint8Array(31)));
    expectLogFormatError(() => decodeAuthResponse(encodeAuthChallenge(nonce)));
    expectLogFormatError(() =>
      decodeAuthChallenge(encodeFrame(FrameType.authChallenge, messagePack.pack([new Uint8Array(33)]))),
    );
    expectLogFormatError(() =>
      decodeAuthChallenge(encodeFrame(FrameType.authChallenge, messagePack.pack(['x']))),
    );

    expect(decodeChannelControl(encodeChannelControl({ kind: 'accept' }))).toEqual({ kind: 'accept' });
    for (const reason of CHANNEL_ERROR_REASONS) {
      const control = { kind: 'refuse' as const, reason, detail: `because ${reason}` };
      expect(decodeChannelControl(encodeChannelControl(control))).toEqual(control);
    }
    expectLogFormatError(() =>
      encodeChannelControl({ kind: 'refuse', reason: 'bored' as never, detail: '' }),
    );
    for (const payload of [
      ['accept', 1],
      ['refuse', 'bored', ''],
      ['refuse', 'version'],
      ['maybe'],
      [],
      'accept',
    ]) {
      expectLogFormatError(() =>
        decodeChannelControl(encodeFrame(FrameType.channelControl, messagePack.pack(payload))),
      );
    }
  });
});
