import type { LogChannel } from '@ftvm/core';
import { ChannelError, ConfigError } from '@ftvm/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ChannelOptions, HANDSHAKE_TIMEOUT_MS_DEFAULT, openChannel } from './channel.js';
import {
  backup,
  describeChannelSuite,
  expectChannelError,
  primary,
  RawPeer,
  sleep,
  waitFor,
  watch,
} from './channel-suite.test-support.js';
import type { Scheduler } from './host.js';
import { createMemoryChannelPair, createMemoryStreamPair } from './memory.js';

describeChannelSuite('memory', async () => ({
  async pair(a: ChannelOptions, b: ChannelOptions) {
    const link = createMemoryStreamPair();
    return Promise.allSettled([openChannel(link.a, a), openChannel(link.b, b)]);
  },
  async raw(options: ChannelOptions) {
    const link = createMemoryStreamPair();
    return { peer: new RawPeer(link.a), channel: openChannel(link.b, options) };
  },
  async close() {},
}));

/** A scheduler driven by hand: `advance(ms)` runs what is due, in time order. */
function manualScheduler(): Scheduler & { advance(ms: number): void; readonly now: number } {
  let now = 0;
  let order = 0;
  const tasks: { at: number; order: number; fn: () => void; cancelled: boolean }[] = [];
  const scheduler = ((delayMs: number, fn: () => void) => {
    const task = { at: now + delayMs, order: order++, fn, cancelled: false };
    tasks.push(task);
    return () => {
      task.cancelled = true;
    };
  }) as Scheduler & { advance(ms: number): void; readonly now: number };
  scheduler.advance = (ms: number) => {
    const end = now + ms;
    for (;;) {
      const due = tasks
        .filter((task) => !task.cancelled && task.at <= end)
        .sort((x, y) => x.at - y.at || x.order - y.order)[0];
      if (!due) break;
      tasks.splice(tasks.indexOf(due), 1);
      now = due.at;
      due.fn();
    }
    now = end;
  };
  Object.defineProperty(scheduler, 'now', { get: () => now });
  return scheduler;
}

const options = { a: { handshake: primary }, b: { handshake: backup } };

describe('memory link: fault injection', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('opens a channel pair', async () => {
    const { a, b, link } = await createMemoryChannelPair(options);
    expect(a.peer.role).toBe('backup');
    expect(b.peer.role).toBe('primary');
    expect(link.delayMs).toBe(0);
    a.close();
  });

  it('rejects the pair with the error of a refused end', async () => {
    await expect(
      createMemoryChannelPair({ a: { handshake: primary }, b: { handshake: { ...backup, vmId: 'other' } } }),
    ).rejects.toSatisfy((error) => {
      expectChannelError(error, 'wrong-vm');
      return true;
    });
  });

  it('delays bytes by delayMs, with an injected scheduler', async () => {
    const scheduler = manualScheduler();
    const link = createMemoryStreamPair({ delayMs: 1000, scheduler });
    const received: number[] = [];
    link.b.onData((bytes) => received.push(...bytes));
    link.a.write(new Uint8Array([1, 2]));
    link.a.write(new Uint8Array([3]));
    expect(link.a.bufferedBytes).toBe(3);
    scheduler.advance(999);
    expect(received).toEqual([]);
    scheduler.advance(1);
    expect(received).toEqual([1, 2, 3]);
    expect(link.a.bufferedBytes).toBe(0);
    link.delayMs = 10;
    link.a.write(new Uint8Array([4]));
    scheduler.advance(10);
    expect(received).toEqual([1, 2, 3, 4]);
  });

  it('keeps the order of delayed bytes whatever order their timers run in', async () => {
    // A scheduler that runs callbacks in reverse: the link still delivers in order.
    const pending: (() => void)[] = [];
    const link = createMemoryStreamPair({
      scheduler: (_delay, fn) => {
        pending.unshift(fn);
        return () => {};
      },
    });
    const received: number[] = [];
    link.b.onData((bytes) => received.push(...bytes));
    for (let i = 0; i < 5; i++) link.a.write(new Uint8Array([i]));
    for (const fn of pending.splice(0)) fn();
    expect(received).toEqual([0, 1, 2, 3, 4]);
  });

  it('pause holds bytes (counted as buffered); resume delivers them in order', async () => {
    const { a, b, link } = await createMemoryChannelPair(options);
    const atB = watch(b);
    link.pause('b');
    for (let i = 0; i < 3; i++) a.send({ type: 'heartbeat', counter: i });
    await sleep(30);
    expect(atB.messages).toEqual([]);
    expect(a.bufferedBytes).toBeGreaterThan(0);
    link.resume('b');
    await waitFor(() => atB.messages.length === 3, 'the held messages');
    expect(atB.messages.map((message) => message.type === 'heartbeat' && message.counter)).toEqual([0, 1, 2]);
    expect(a.bufferedBytes).toBe(0);
    // Pausing both ways holds acknowledgements too.
    const atA = watch(a);
    link.pause();
    b.send({ type: 'ack', receivedSeq: 0, appliedSeq: 0, appliedIcount: 0 });
    await sleep(20);
    expect(atA.messages).toEqual([]);
    link.resume();
    await waitFor(() => atA.messages.length === 1, 'the ack');
    a.close();
  });

  it('disconnect loses the bytes in flight and reports a connection error once on each end', async () => {
    const { a, b, link } = await createMemoryChannelPair(options);
    const atA = watch(a);
    const atB = watch(b);
    link.delayMs = 50;
    for (let i = 0; i < 5; i++) a.send({ type: 'heartbeat', counter: i });
    link.disconnect();
    await waitFor(() => atA.closes.length === 1 && atB.closes.length === 1, 'both closes');
    expectChannelError(atA.closes[0], 'connection');
    expectChannelError(atB.closes[0], 'connection');
    await sleep(100);
    expect(atB.messages).toEqual([]);
    expect(atA.closes.length).toBe(1);
    expect(atB.closes.length).toBe(1);
    a.send({ type: 'heartbeat', counter: 99 });
    link.disconnect();
    await sleep(10);
    expect(atA.closes.length).toBe(1);
  });

  it('a corrupted write closes the receiver with a protocol error; the sender learns why', async () => {
    const { a, b, link } = await createMemoryChannelPair(options);
    const atA = watch(a);
    const atB = watch(b);
    a.send({ type: 'heartbeat', counter: 1 });
    link.corruptNextWrite('a');
    a.send({ type: 'heartbeat', counter: 2 });
    a.send({ type: 'heartbeat', counter: 3 });
    await waitFor(() => atA.closes.length === 1 && atB.closes.length === 1, 'both closes');
    expectChannelError(atB.closes[0], 'protocol');
    expect((atB.closes[0] as Error).message).toMatch(/checksum/);
    expectChannelError(atA.closes[0], 'protocol');
    expect(atB.messages).toEqual([{ type: 'heartbeat', counter: 1 }]);
  });

  it('times out a silent peer after 5 s by default', async () => {
    vi.useFakeTimers();
    const link = createMemoryStreamPair();
    let outcome: unknown;
    openChannel(link.b, { handshake: backup }).then(
      () => {
        outcome = 'open';
      },
      (error) => {
        outcome = error;
      },
    );
    await vi.advanceTimersByTimeAsync(HANDSHAKE_TIMEOUT_MS_DEFAULT - 1);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expectChannelError(outcome, 'connection');
  });

  it('refuses to open with a malformed handshake or key of its own (ConfigError)', async () => {
    const link = createMemoryStreamPair();
    await expect(openChannel(link.a, { handshake: { ...primary, vmId: '' } })).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(openChannel(link.b, { handshake: primary, preSharedKey: '' })).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(
      openChannel(createMemoryStreamPair().a, { handshake: primary, handshakeTimeoutMs: 0 }),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it('refuses a peer that reflects our own handshake and challenge (pre-shared key)', async () => {
    const link = createMemoryStreamPair();
    // The far end echoes every byte back: a reflection attack on the challenge–response.
    link.a.onData((bytes) => link.a.write(bytes.slice()));
    await expect(openChannel(link.b, { handshake: backup, preSharedKey: 'key' })).rejects.toSatisfy(
      (error) => {
        expectChannelError(error, 'authentication');
        return true;
      },
    );
  });

  it('a message listener that throws closes the channel with its error', async () => {
    const { a, b } = await createMemoryChannelPair(options);
    const closes: (Error | undefined)[] = [];
    const boom = new Error('listener bug');
    b.onMessage(() => {
      throw boom;
    });
    b.onClose((error) => closes.push(error));
    const atA = watch(a);
    a.send({ type: 'heartbeat', counter: 1 });
    a.send({ type: 'heartbeat', counter: 2 });
    await waitFor(() => closes.length === 1 && atA.closes.length === 1, 'the closes');
    expect(closes[0]).toBe(boom);
    expectChannelError(atA.closes[0], 'connection');
  });

  it('a later onMessage replaces the listener; onClose set after the close still fires once', async () => {
    const { a, b } = await createMemoryChannelPair(options);
    const first: number[] = [];
    const second: number[] = [];
    b.onMessage((message) => first.push(message.type === 'heartbeat' ? message.counter : -1));
    a.send({ type: 'heartbeat', counter: 1 });
    await waitFor(() => first.length === 1, 'the first message');
    b.onMessage((message) => second.push(message.type === 'heartbeat' ? message.counter : -1));
    a.send({ type: 'heartbeat', counter: 2 });
    a.close();
    await waitFor(() => b.closed, 'the close');
    const closes: (Error | undefined)[] = [];
    b.onClose((error) => closes.push(error));
    await sleep(10);
    expect(first).toEqual([1]);
    expect(second).toEqual([2, -1]);
    expect(closes).toEqual([undefined]);
  });

  it('close({ flush: false }) drops what is queued; the peer sees a connection error', async () => {
    const { a, b, link } = await createMemoryChannelPair(options);
    const atA = watch(a);
    const atB = watch(b);
    link.pause('b');
    a.send({ type: 'heartbeat', counter: 1 });
    a.close({ flush: false });
    link.resume('b');
    await waitFor(() => atA.closes.length === 1 && atB.closes.length === 1, 'both closes');
    expect(atA.closes).toEqual([undefined]);
    expectChannelError(atB.closes[0], 'connection');
    expect(atB.messages).toEqual([]);
  });

  it('refuses to send a malformed message (LogFormatError) and stays open', async () => {
    const { a, b } = await createMemoryChannelPair(options);
    const atB = watch(b);
    expect(() => a.send({ type: 'heartbeat', counter: -1 })).toThrow(/counter/);
    expect(() => a.send({ type: 'log', entries: [{ kind: 'progress', seq: 0, icount: 0 }] })).not.toThrow();
    expect(() => a.send({ type: 'log', entries: [{ kind: 'progress', seq: 5, icount: 0 }] })).toThrow(
      /out|after/,
    );
    a.send({ type: 'log', entries: [{ kind: 'progress', seq: 1, icount: 1 }] });
    await waitFor(() => atB.messages.length === 2, 'the log');
    expect(a.closed).toBe(false);
    a.close();
  });

  it('a refusal reaches the refused side even when it is slow', async () => {
    const link = createMemoryStreamPair({ delayMs: 20 });
    const results = await Promise.allSettled([
      openChannel(link.a, { handshake: { ...primary, epoch: 1 } }),
      openChannel(link.b, { handshake: backup }),
    ]);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expectChannelError((result as PromiseRejectedResult).reason, 'stale-epoch');
    }
    expect(ChannelError.is((results[0] as PromiseRejectedResult).reason)).toBe(true);
  });

  it('survives messages arriving right behind the verdict, and a peer that leaves right after them', async () => {
    const link = createMemoryStreamPair();
    const peer = new RawPeer(link.a);
    const opening = openChannel(link.b, { handshake: backup });
    // Everything in one write: the handshake, the verdict, two messages and an orderly goodbye.
    const { concatBytes, encodeChannelControl, encodeHandshake, encodeMessage } = await import(
      '@ftvm/log-codec'
    );
    peer.stream.write(
      concatBytes([
        encodeHandshake(primary),
        encodeChannelControl({ kind: 'accept' }),
        encodeMessage({ type: 'heartbeat', counter: 1 }),
        encodeMessage({ type: 'goodbye', reason: 'done' }),
      ]),
    );
    peer.stream.close();
    const channel: LogChannel = await opening;
    const seen = watch(channel);
    await waitFor(() => seen.closes.length === 1, 'the close');
    expect(seen.messages).toEqual([
      { type: 'heartbeat', counter: 1 },
      { type: 'goodbye', reason: 'done' },
    ]);
    expect(seen.closes).toEqual([undefined]);
  });
});
