import type { ChannelErrorReason, FtMessage, Handshake, LogChannel, LogEntry } from '@ftvm/core';
import { ChannelError, FT_PROTOCOL_VERSION } from '@ftvm/core';
import {
  type ChannelControl,
  concatBytes,
  decodeChannelControl,
  encodeChannelControl,
  encodeFrame,
  encodeHandshake,
  encodeMessage,
  type Frame,
  FrameDecoder,
  FrameType,
  messagePack,
} from '@ftvm/log-codec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ByteStream } from './byte-stream.js';
import type { ChannelOptions } from './channel.js';

/**
 * The behaviour every transport must have, run over each of them (memory, MessagePort, TCP, TLS):
 * the handshake and each refusal, order, orderly and disorderly closes, hostile peers.
 */

export const primary: Handshake = {
  vmId: 'vm-1',
  epoch: 4,
  role: 'primary',
  protocolVersion: FT_PROTOCOL_VERSION,
  host: 'host-a',
};
export const backup: Handshake = { ...primary, role: 'backup', host: 'host-b' };

/** Polls until `predicate` holds (or fails the test after `timeoutMs`). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records what a channel delivers. */
export function watch(channel: LogChannel): {
  messages: FtMessage[];
  closes: (Error | undefined)[];
} {
  const messages: FtMessage[] = [];
  const closes: (Error | undefined)[] = [];
  channel.onMessage((message) => messages.push(message));
  channel.onClose((error) => closes.push(error));
  return { messages, closes };
}

export function expectChannelError(error: unknown, reason: ChannelErrorReason): void {
  expect(ChannelError.is(error), `not a ChannelError: ${String(error)}`).toBe(true);
  expect((error as ChannelError).reason, (error as Error).message).toBe(reason);
}

export function expectRefused(result: PromiseSettledResult<LogChannel>, reason: ChannelErrorReason): void {
  expect(result.status).toBe('rejected');
  if (result.status === 'rejected') expectChannelError(result.reason, reason);
}

function fulfilled(result: PromiseSettledResult<LogChannel>): LogChannel {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

/** The far end of a channel as raw bytes: what a hand-written (or hostile) peer sees and sends. */
export class RawPeer {
  private readonly decoder = new FrameDecoder();
  readonly frames: Frame[] = [];
  ended = false;
  error: Error | undefined;
  decodeError: unknown;

  constructor(readonly stream: ByteStream) {
    stream.onData((bytes) => {
      try {
        this.frames.push(...this.decoder.push(bytes));
      } catch (error) {
        this.decodeError = error;
      }
    });
    stream.onEnd(() => {
      this.ended = true;
    });
    stream.onError((error) => {
      this.error = error;
    });
  }

  get gone(): boolean {
    return this.ended || this.error !== undefined;
  }

  controls(): ChannelControl[] {
    return this.frames.filter((frame) => frame.type === FrameType.channelControl).map(decodeChannelControl);
  }

  /** Says `handshake` and accepts the peer, as a channel without a key would. */
  async handshake(handshake: Handshake): Promise<void> {
    this.stream.write(concatBytes([encodeHandshake(handshake), encodeChannelControl({ kind: 'accept' })]));
    await waitFor(() => this.controls().length > 0 || this.gone, 'the verdict of the peer');
    expect(this.controls()[0]).toEqual({ kind: 'accept' });
  }
}

export interface ChannelHarness {
  /** Opens end `a` (the connecting side) and end `b` (the accepting side). */
  pair(
    a: ChannelOptions,
    b: ChannelOptions,
  ): Promise<[PromiseSettledResult<LogChannel>, PromiseSettledResult<LogChannel>]>;
  /** A raw byte stream whose far end is a channel end being opened with `options`. */
  raw(options: ChannelOptions): Promise<{ peer: RawPeer; channel: Promise<LogChannel> }>;
  close(): Promise<void>;
}

const progress = (seq: number): LogEntry => ({ kind: 'progress', seq, icount: seq * 100 });

/** Defines the shared suite for one transport. */
export function describeChannelSuite(name: string, makeHarness: () => Promise<ChannelHarness>): void {
  describe(`${name}: the shared logging-channel suite`, () => {
    let harness: ChannelHarness;
    beforeAll(async () => {
      harness = await makeHarness();
    });
    afterAll(async () => {
      await harness?.close();
    });

    async function open(a: ChannelOptions, b: ChannelOptions): Promise<[LogChannel, LogChannel]> {
      const [first, second] = await harness.pair(a, b);
      return [fulfilled(first), fulfilled(second)];
    }

    async function raw(options: ChannelOptions) {
      const opened = await harness.raw(options);
      opened.channel.catch(() => {});
      return opened;
    }

    it('accepts a matching peer; messages flow both ways', async () => {
      const [a, b] = await open({ handshake: primary }, { handshake: backup });
      expect(a.peer).toEqual(backup);
      expect(b.peer).toEqual(primary);
      expect(a.closed).toBe(false);
      expect(a.bufferedBytes).toBeGreaterThanOrEqual(0);
      const atA = watch(a);
      const atB = watch(b);
      a.send({ type: 'log', entries: [progress(0), progress(1)] });
      b.send({ type: 'ack', receivedSeq: 1, appliedSeq: 0, appliedIcount: 0 });
      await waitFor(() => atA.messages.length === 1 && atB.messages.length === 1, 'the messages');
      expect(atB.messages).toEqual([{ type: 'log', entries: [progress(0), progress(1)] }]);
      expect(atA.messages).toEqual([{ type: 'ack', receivedSeq: 1, appliedSeq: 0, appliedIcount: 0 }]);
      a.close();
      await waitFor(() => atA.closes.length === 1 && atB.closes.length === 1, 'the close');
    });

    it('authenticates both sides with a pre-shared key', async () => {
      const key = 'correct horse battery staple';
      const [a, b] = await open(
        { handshake: primary, preSharedKey: key },
        { handshake: backup, preSharedKey: key },
      );
      const atB = watch(b);
      a.send({ type: 'heartbeat', counter: 1 });
      await waitFor(() => atB.messages.length === 1, 'the heartbeat');
      b.close();
      await waitFor(() => a.closed, 'the close');
    });

    const refusals: {
      what: string;
      a: Omit<Partial<ChannelOptions>, 'handshake'> & { handshake?: Partial<Handshake> };
      b: Omit<Partial<ChannelOptions>, 'handshake'> & { handshake?: Partial<Handshake> };
      reason: ChannelErrorReason;
    }[] = [
      {
        what: 'a wrong key',
        a: { preSharedKey: 'key one' },
        b: { preSharedKey: 'key two' },
        reason: 'authentication',
      },
      { what: 'a key on one side only', a: { preSharedKey: 'key' }, b: {}, reason: 'authentication' },
      {
        what: 'a key on the other side only',
        a: {},
        b: { preSharedKey: new Uint8Array([1, 2, 3]) },
        reason: 'authentication',
      },
      {
        what: 'another protocol version',
        a: { handshake: { protocolVersion: FT_PROTOCOL_VERSION + 1 } },
        b: {},
        reason: 'version',
      },
      { what: 'a stale epoch', a: { handshake: { epoch: 3 } }, b: {}, reason: 'stale-epoch' },
      { what: 'another VM', a: { handshake: { vmId: 'vm-2' } }, b: {}, reason: 'wrong-vm' },
      {
        what: 'a wrong key and another VM (authentication comes first)',
        a: { preSharedKey: 'key one', handshake: { vmId: 'vm-2' } },
        b: { preSharedKey: 'key two' },
        reason: 'authentication',
      },
      {
        what: "verifyPeer's own reason",
        a: {},
        b: { verifyPeer: (peer) => (peer.host === 'host-a' ? 'authentication' : undefined) },
        reason: 'authentication',
      },
    ];
    for (const refusal of refusals) {
      it(`refuses ${refusal.what}: both ends report '${refusal.reason}'`, async () => {
        const [a, b] = await harness.pair(
          { ...refusal.a, handshake: { ...primary, ...refusal.a.handshake } },
          { ...refusal.b, handshake: { ...backup, ...refusal.b.handshake } },
        );
        expectRefused(a, refusal.reason);
        expectRefused(b, refusal.reason);
      });
    }

    it('refuses garbage instead of a handshake (protocol) and says why', async () => {
      const { peer, channel } = await raw({ handshake: backup });
      peer.stream.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: backup\r\n\r\n'));
      await expect(channel).rejects.toSatisfy((error) => {
        expectChannelError(error, 'protocol');
        return true;
      });
      await waitFor(() => peer.controls().length > 0, 'the refusal');
      expect(peer.controls()[0]).toMatchObject({ kind: 'refuse', reason: 'protocol' });
      await waitFor(() => peer.gone, 'the end of the stream');
    });

    it('refuses random bytes instead of a handshake (protocol)', async () => {
      for (const seed of [1, 2, 3]) {
        const { peer, channel } = await raw({ handshake: backup });
        const bytes = new Uint8Array(200).map((_, i) => (i * 37 + seed * 101) & 0xff);
        bytes[0] = 0x17;
        peer.stream.write(bytes);
        await expect(channel).rejects.toSatisfy((error) => {
          expectChannelError(error, 'protocol');
          return true;
        });
        peer.stream.destroy();
      }
    });

    it('refuses an oversized handshake (protocol) without waiting for it', async () => {
      const { peer, channel } = await raw({ handshake: backup });
      const header = encodeFrame(FrameType.handshake, new Uint8Array(0)).subarray(0, 8);
      const claim = new Uint8Array(header);
      new DataView(claim.buffer).setUint32(4, 10_000_000, true);
      peer.stream.write(concatBytes([claim, new Uint8Array(4 + 6000)]));
      await expect(channel).rejects.toSatisfy((error) => {
        expectChannelError(error, 'protocol');
        return true;
      });
      peer.stream.destroy();
    });

    it('refuses a peer without delivering anything it sent', async () => {
      const { peer, channel } = await raw({ handshake: backup });
      // A handshake for another VM, then (without waiting) a verdict and messages.
      peer.stream.write(
        concatBytes([
          encodeHandshake({ ...primary, vmId: 'intruder' }),
          encodeChannelControl({ kind: 'accept' }),
          encodeMessage({ type: 'log', entries: [progress(0)] }),
          encodeMessage({ type: 'goodbye', reason: 'bye' }),
        ]),
      );
      await expect(channel).rejects.toSatisfy((error) => {
        expectChannelError(error, 'wrong-vm');
        return true;
      });
      await waitFor(() => peer.controls().length > 0, 'the refusal');
      expect(peer.controls()[0]).toMatchObject({ kind: 'refuse', reason: 'wrong-vm' });
    });

    it('gives up on a peer that never answers (connection)', async () => {
      const { peer, channel } = await raw({ handshake: backup, handshakeTimeoutMs: 150 });
      const started = Date.now();
      await expect(channel).rejects.toSatisfy((error) => {
        expectChannelError(error, 'connection');
        return true;
      });
      expect(Date.now() - started).toBeLessThan(3000);
      await waitFor(() => peer.gone, 'the stream torn down');
    });

    it('reports a connection closed during the handshake (connection)', async () => {
      const { peer, channel } = await raw({ handshake: backup });
      peer.stream.close();
      await expect(channel).rejects.toSatisfy((error) => {
        expectChannelError(error, 'connection');
        return true;
      });
    });

    it('keeps the order of 10,000 messages each way', async () => {
      const [a, b] = await open({ handshake: primary }, { handshake: backup });
      const atA = watch(a);
      const atB = watch(b);
      const count = 10_000;
      const sent: FtMessage[] = [];
      let seq = 0;
      for (let i = 0; i < count; i++) {
        const message: FtMessage =
          i % 10 === 9 ? { type: 'heartbeat', counter: i } : { type: 'log', entries: [progress(seq++)] };
        sent.push(message);
        a.send(message);
        b.send({ type: 'ack', receivedSeq: i, appliedSeq: i - 1, appliedIcount: i });
      }
      await waitFor(
        () => atB.messages.length === count && atA.messages.length === count,
        'every message',
        20_000,
      );
      expect(atB.messages).toEqual(sent);
      atA.messages.forEach((message, i) => {
        expect(message.type === 'ack' && message.receivedSeq).toBe(i);
      });
      a.close();
      await waitFor(() => atB.closes.length === 1, 'the close');
      expect(atB.closes).toEqual([undefined]);
    });

    for (const closer of ['a', 'b'] as const) {
      it(`closes in order when ${closer} closes: onClose(undefined) once on both, sends then ignored`, async () => {
        const [a, b] = await open({ handshake: primary }, { handshake: backup });
        const ends = { a, b };
        const other = closer === 'a' ? 'b' : 'a';
        const seen = { a: watch(a), b: watch(b) };
        ends[closer].send({ type: 'heartbeat', counter: 7 });
        ends[closer].close();
        expect(ends[closer].closed).toBe(true);
        expect(() => ends[closer].send({ type: 'heartbeat', counter: 8 })).not.toThrow();
        await waitFor(() => seen.a.closes.length === 1 && seen.b.closes.length === 1, 'both closes');
        // The flushed message, then the goodbye close() sends.
        expect(seen[other].messages).toEqual([
          { type: 'heartbeat', counter: 7 },
          { type: 'goodbye', reason: 'closed' },
        ]);
        expect(ends[other].closed).toBe(true);
        expect(() => ends[other].send({ type: 'heartbeat', counter: 9 })).not.toThrow();
        ends[other].close();
        ends[closer].close();
        await sleep(30);
        expect(seen.a.closes).toEqual([undefined]);
        expect(seen.b.closes).toEqual([undefined]);
      });
    }

    it('closes in order on a goodbye sent', async () => {
      const [a, b] = await open({ handshake: primary }, { handshake: backup });
      const atA = watch(a);
      const atB = watch(b);
      a.send({ type: 'goodbye', reason: 'halted' });
      expect(a.closed).toBe(true);
      await waitFor(() => atA.closes.length === 1 && atB.closes.length === 1, 'both closes');
      expect(atB.messages).toEqual([{ type: 'goodbye', reason: 'halted' }]);
      expect(atA.closes).toEqual([undefined]);
      expect(atB.closes).toEqual([undefined]);
    });

    it('delivers what came before the listeners were set, then the close', async () => {
      const [a, b] = await open({ handshake: primary }, { handshake: backup });
      a.send({ type: 'log', entries: [progress(0)] });
      a.send({ type: 'heartbeat', counter: 1 });
      a.close();
      await sleep(50);
      const atB = watch(b);
      await waitFor(() => atB.closes.length === 1, 'the close');
      expect(atB.messages.map((message) => message.type)).toEqual(['log', 'heartbeat', 'goodbye']);
      expect(atB.closes).toEqual([undefined]);
    });

    it('closes with a protocol error on hostile bytes after a valid handshake, once', async () => {
      const { peer, channel } = await raw({ handshake: backup });
      await peer.handshake(primary);
      const opened = await channel;
      const seen = watch(opened);
      peer.stream.write(encodeMessage({ type: 'heartbeat', counter: 1 }));
      await waitFor(() => seen.messages.length === 1, 'the valid message');
      const noise = new Uint8Array(4096).map((_, i) => (i * 7919 + 13) & 0xff);
      // (write takes the array: a MessagePort transfers it.)
      peer.stream.write(noise.slice());
      peer.stream.write(noise.slice());
      await waitFor(() => seen.closes.length === 1, 'the close');
      expectChannelError(seen.closes[0], 'protocol');
      expect(opened.closed).toBe(true);
      await waitFor(() => peer.controls().length > 1, 'the refusal');
      expect(peer.controls()[1]).toMatchObject({ kind: 'refuse', reason: 'protocol' });
      await sleep(30);
      expect(seen.closes.length).toBe(1);
      expect(seen.messages).toEqual([{ type: 'heartbeat', counter: 1 }]);
      peer.stream.destroy();
    });

    const malformed: [string, Uint8Array][] = [
      [
        'a well-checksummed ack of the wrong shape',
        encodeFrame(FrameType.ack, messagePack.pack(['x', 1, 2])),
      ],
      ['a second handshake', encodeHandshake(primary)],
      [
        'a log that skips entries',
        concatBytes([
          encodeMessage({ type: 'log', entries: [progress(0)] }),
          encodeMessage({ type: 'log', entries: [progress(5)] }),
        ]),
      ],
      ['a verdict after the handshake', encodeChannelControl({ kind: 'accept' })],
      ['a frame of an unknown type', encodeFrame(200, new Uint8Array([0x90]))],
    ];
    for (const [what, bytes] of malformed) {
      it(`closes with a protocol error on ${what}`, async () => {
        const { peer, channel } = await raw({ handshake: backup });
        await peer.handshake(primary);
        const seen = watch(await channel);
        peer.stream.write(bytes);
        await waitFor(() => seen.closes.length === 1, 'the close');
        expectChannelError(seen.closes[0], 'protocol');
        peer.stream.destroy();
      });
    }

    it("passes on the peer's refusal after the handshake with its reason", async () => {
      const { peer, channel } = await raw({ handshake: backup });
      await peer.handshake(primary);
      const seen = watch(await channel);
      peer.stream.write(
        encodeChannelControl({ kind: 'refuse', reason: 'stale-epoch', detail: 'a newer primary' }),
      );
      await waitFor(() => seen.closes.length === 1, 'the close');
      expectChannelError(seen.closes[0], 'stale-epoch');
      peer.stream.destroy();
    });

    for (const how of ['ends', 'is destroyed'] as const) {
      it(`reports a peer that ${how} without a goodbye as a connection error`, async () => {
        const { peer, channel } = await raw({ handshake: backup });
        await peer.handshake(primary);
        const seen = watch(await channel);
        if (how === 'ends') peer.stream.close();
        else peer.stream.destroy();
        await waitFor(() => seen.closes.length === 1, 'the close');
        expectChannelError(seen.closes[0], 'connection');
        await sleep(20);
        expect(seen.closes.length).toBe(1);
      });
    }
  });
}
