import { connect, Socket } from 'node:net';
import type { LogChannel } from '@ftvm/core';
import { ChannelError, HostIoError } from '@ftvm/core';
import { encodeFrame, FrameType } from '@ftvm/log-codec';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ChannelOptions } from '../channel.js';
import {
  backup,
  describeChannelSuite,
  expectChannelError,
  primary,
  RawPeer,
  sleep,
  waitFor,
  watch,
} from '../channel-suite.test-support.js';
import { createSocketStream } from './socket-stream.js';
import { type ChannelListener, connectTcp, listenTcp } from './tcp.js';

const listeners: ChannelListener[] = [];

/** Listens with `b`, connects with `a`; both outcomes settle. */
async function tcpPair(a: ChannelOptions, b: ChannelOptions) {
  let settle!: (result: Promise<LogChannel>) => void;
  const accepted = new Promise<Promise<LogChannel>>((resolve) => {
    settle = resolve;
  });
  const listener = await listenTcp(
    { ...b, port: 0, onError: (error) => settle(Promise.reject(error)) },
    (channel) => settle(Promise.resolve(channel)),
  );
  listeners.push(listener);
  const connected = connectTcp({ ...a, host: '127.0.0.1', port: listener.port });
  const results = await Promise.allSettled([connected, accepted.then((result) => result)]);
  await listener.close();
  return results;
}

function connectedSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describeChannelSuite('TCP', async () => ({
  pair: tcpPair,
  async raw(options: ChannelOptions) {
    let settle!: (result: Promise<LogChannel>) => void;
    const channel = new Promise<LogChannel>((resolve, reject) => {
      settle = (result) => result.then(resolve, reject);
    });
    const listener = await listenTcp(
      { ...options, onError: (error) => settle(Promise.reject(error)) },
      (opened) => settle(Promise.resolve(opened)),
    );
    listeners.push(listener);
    const socket = await connectedSocket(listener.port);
    return { peer: new RawPeer(createSocketStream(socket, { lingerMs: 200 })), channel };
  },
  async close() {
    await Promise.all(listeners.map((listener) => listener.close()));
  },
}));

describe('TCP transport', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('sets TCP_NODELAY on both ends', async () => {
    const spy = vi.spyOn(Socket.prototype, 'setNoDelay');
    const [a, b] = await tcpPair({ handshake: primary }, { handshake: backup });
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('fulfilled');
    expect(spy.mock.calls.filter(([value]) => value === true).length).toBeGreaterThanOrEqual(2);
    if (a.status === 'fulfilled') a.value.close();
  });

  it('reports a refused connection as a connection error', async () => {
    const listener = await listenTcp({ handshake: backup }, () => {});
    const port = listener.port;
    await listener.close();
    await sleep(10);
    await expect(connectTcp({ handshake: primary, host: '127.0.0.1', port })).rejects.toSatisfy((error) => {
      expectChannelError(error, 'connection');
      return true;
    });
  });

  it('reports a port already in use as a HostIoError', async () => {
    const listener = await listenTcp({ handshake: backup }, () => {});
    await expect(listenTcp({ handshake: backup, port: listener.port }, () => {})).rejects.toBeInstanceOf(
      HostIoError,
    );
    await listener.close();
  });

  it('survives a hostile peer that sends random bytes after a valid handshake', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    try {
      for (let round = 0; round < 5; round++) {
        let opened!: LogChannel;
        const listener = await listenTcp({ handshake: backup }, (channel) => {
          opened = channel;
        });
        const socket = await connectedSocket(listener.port);
        const peer = new RawPeer(createSocketStream(socket, { lingerMs: 100 }));
        await peer.handshake(primary);
        await waitFor(() => opened !== undefined, 'the channel');
        const seen = watch(opened);
        // Random bytes, in several writes; some rounds start with a valid frame header.
        const noise = new Uint8Array(64 * 1024);
        for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(Math.random() * 256);
        if (round % 2 === 1) noise.set(encodeFrame(FrameType.heartbeat, new Uint8Array(40)).subarray(0, 8));
        for (let offset = 0; offset < noise.length; offset += 5000)
          socket.write(noise.subarray(offset, offset + 5000));
        await waitFor(() => seen.closes.length === 1, 'the close');
        expect(ChannelError.is(seen.closes[0])).toBe(true);
        expect((seen.closes[0] as ChannelError).reason).toBe('protocol');
        expect(opened.closed).toBe(true);
        // Still writing to a closed channel's connection is harmless.
        socket.write(noise);
        await sleep(20);
        expect(seen.closes.length).toBe(1);
        socket.destroy();
        await listener.close();
      }
      await sleep(50);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
  });

  it('carries a large transfer and a long log across TCP segments', async () => {
    const [a, b] = await tcpPair({ handshake: primary }, { handshake: backup });
    if (a.status !== 'fulfilled' || b.status !== 'fulfilled') throw new Error('not opened');
    const seen = watch(b.value);
    const pages = new Uint8Array(256 * 4096);
    for (let i = 0; i < pages.length; i++) pages[i] = i & 0xff;
    a.value.send({ type: 'transfer-pages', pageNumbers: Array.from({ length: 256 }, (_, i) => i), pages });
    a.value.send({
      type: 'log',
      entries: Array.from({ length: 20_000 }, (_, seq) => ({ kind: 'progress' as const, seq, icount: seq })),
    });
    expect(a.value.bufferedBytes).toBeGreaterThanOrEqual(0);
    await waitFor(
      () => seen.messages.filter((message) => message.type === 'log').length >= 5,
      'the log',
      10_000,
    );
    const [transfer] = seen.messages;
    expect(
      transfer?.type === 'transfer-pages' && transfer.pages.every((byte, i) => byte === (i & 0xff)),
    ).toBe(true);
    const entries = seen.messages.flatMap((message) => (message.type === 'log' ? message.entries : []));
    expect(entries.length).toBe(20_000);
    expect(entries.every((entry, i) => entry.seq === i)).toBe(true);
    a.value.close();
    await waitFor(() => b.value.closed, 'the close');
  });

  it('a connection accepted before the listener closed still completes its handshake', async () => {
    let accepted: LogChannel | undefined;
    const listener = await listenTcp({ handshake: backup }, (channel) => {
      accepted = channel;
    });
    const socket = await connectedSocket(listener.port);
    await listener.close();
    await expect(
      connectTcp({ handshake: primary, host: '127.0.0.1', port: listener.port }),
    ).rejects.toSatisfy((error) => {
      expectChannelError(error, 'connection');
      return true;
    });
    const peer = new RawPeer(createSocketStream(socket));
    await peer.handshake(primary);
    await waitFor(() => accepted !== undefined, 'the channel');
    expect(accepted?.peer).toEqual(primary);
    accepted?.close();
    await waitFor(() => peer.gone, 'the close');
  });
});
