import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { type ChannelOptions, openChannel } from './channel.js';
import {
  backup,
  describeChannelSuite,
  primary,
  RawPeer,
  waitFor,
  watch,
} from './channel-suite.test-support.js';
import { createMessagePortStream } from './message-port.js';

const ports: MessagePort[] = [];
function messageChannel(): MessageChannel {
  const channel = new MessageChannel();
  ports.push(channel.port1, channel.port2);
  return channel;
}

describeChannelSuite('MessagePort', async () => ({
  async pair(a: ChannelOptions, b: ChannelOptions) {
    const { port1, port2 } = messageChannel();
    return Promise.allSettled([
      openChannel(createMessagePortStream(port1), a),
      openChannel(createMessagePortStream(port2), b),
    ]);
  },
  async raw(options: ChannelOptions) {
    const { port1, port2 } = messageChannel();
    return {
      peer: new RawPeer(createMessagePortStream(port1)),
      channel: openChannel(createMessagePortStream(port2), options),
    };
  },
  async close() {
    for (const port of ports) port.close();
  },
}));

describe('MessagePort streams', () => {
  it('transfers the written buffers instead of copying them', async () => {
    const { port1, port2 } = messageChannel();
    const a = createMessagePortStream(port1);
    const b = createMessagePortStream(port2);
    const received: number[][] = [];
    b.onData((bytes) => received.push(Array.from(bytes)));
    const whole = new Uint8Array([1, 2, 3]);
    a.write(whole);
    expect(whole.byteLength).toBe(0);
    // A view into a larger buffer is copied; the caller's buffer stays usable.
    const backing = new Uint8Array([9, 8, 7, 6]);
    a.write(backing.subarray(1, 3));
    expect(backing.byteLength).toBe(4);
    await waitFor(() => received.length === 2, 'the chunks');
    expect(received).toEqual([
      [1, 2, 3],
      [8, 7],
    ]);
    a.close();
    b.close();
  });

  it('reports a port that carries something else as a protocol error', async () => {
    const { port1, port2 } = messageChannel();
    const b = createMessagePortStream(port2);
    const errors: Error[] = [];
    b.onError((error) => errors.push(error));
    port1.postMessage({ not: 'bytes' });
    await waitFor(() => errors.length === 1, 'the error');
    expect(errors[0]).toMatchObject({ reason: 'protocol' });
    port1.close();
  });

  it('carries a channel between threads, through a worker that relays the ports', async () => {
    // The worker joins two ports: each side's bytes cross two thread boundaries, transferred.
    const relay = new Worker(
      `
      const { parentPort } = require('node:worker_threads');
      parentPort.once('message', ({ left, right }) => {
        const pipe = (from, to) => {
          from.on('message', (data) => {
            if (data instanceof Uint8Array) to.postMessage(data, [data.buffer]);
            else to.postMessage(data);
          });
          from.on('close', () => to.close());
        };
        pipe(left, right);
        pipe(right, left);
        parentPort.postMessage('ready');
      });
      `,
      { eval: true },
    );
    try {
      const first = new MessageChannel();
      const second = new MessageChannel();
      relay.postMessage({ left: first.port2, right: second.port1 }, [first.port2, second.port1]);
      await new Promise((resolve) => relay.once('message', resolve));
      const [a, b] = await Promise.all([
        openChannel(createMessagePortStream(first.port1), { handshake: primary, preSharedKey: 'worker key' }),
        openChannel(createMessagePortStream(second.port2), { handshake: backup, preSharedKey: 'worker key' }),
      ]);
      const atB = watch(b);
      const atA = watch(a);
      const pages = new Uint8Array(2 * 4096).fill(0x5a);
      a.send({ type: 'transfer-pages', pageNumbers: [3, 4], pages });
      for (let seq = 0; seq < 100; seq++)
        a.send({ type: 'log', entries: [{ kind: 'progress', seq, icount: seq }] });
      await waitFor(() => atB.messages.length === 101, 'the messages');
      const [transfer] = atB.messages;
      expect(transfer?.type === 'transfer-pages' && transfer.pages.every((byte) => byte === 0x5a)).toBe(true);
      a.close();
      await waitFor(() => atA.closes.length === 1 && atB.closes.length === 1, 'both closes');
      expect(atB.closes).toEqual([undefined]);
    } finally {
      await relay.terminate();
    }
  });
});
