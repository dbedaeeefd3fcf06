import { type AddressInfo, connect, createServer } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { LinkProxy } from './link-proxy.js';

describe('LinkProxy', () => {
  it('passes bytes both ways, and holds them for the length of a partition, in order', async () => {
    const echo = createServer((socket) => socket.on('data', (data) => socket.write(data)));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address() as AddressInfo;
    const proxy = await LinkProxy.open({ host: '127.0.0.1', port: address.port });
    const client = connect({ host: '127.0.0.1', port: proxy.port });
    const received: { text: string; atMs: number }[] = [];
    client.on('data', (data: Buffer) => received.push({ text: data.toString(), atMs: performance.now() }));
    try {
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      client.write('a');
      await vi.waitFor(() => expect(received.map((item) => item.text).join('')).toBe('a'));
      const heldAt = performance.now();
      proxy.hold(300);
      client.write('b');
      client.write('c');
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(received.map((item) => item.text).join('')).toBe('a');
      await vi.waitFor(() => expect(received.map((item) => item.text).join('')).toBe('abc'), {
        timeout: 2000,
      });
      expect((received.at(-1)?.atMs ?? 0) - heldAt).toBeGreaterThanOrEqual(290);
    } finally {
      client.destroy();
      proxy.close();
      echo.close();
    }
  });

  it('holds until released when no length is given', async () => {
    const echo = createServer((socket) => socket.on('data', (data) => socket.write(data)));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const proxy = await LinkProxy.open({ host: '127.0.0.1', port: (echo.address() as AddressInfo).port });
    proxy.hold();
    // A connection made during the hold starts held.
    const client = connect({ host: '127.0.0.1', port: proxy.port });
    let received = '';
    client.on('data', (data: Buffer) => {
      received += data.toString();
    });
    try {
      await new Promise<void>((resolve) => client.once('connect', () => resolve()));
      client.write('x');
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(received).toBe('');
      proxy.release();
      await vi.waitFor(() => expect(received).toBe('x'));
    } finally {
      client.destroy();
      proxy.close();
      echo.close();
    }
  });
});
