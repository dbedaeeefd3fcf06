import { ChannelError } from '@ftvm/core';
import type { ByteStream } from './byte-stream.js';
import { StreamEvents } from './byte-stream.js';

/**
 * The part of a `MessagePort` (the global `MessageChannel` of Node 20, browsers and workers; Node's
 * `worker_threads` ports are the same) that {@link createMessagePortStream} uses.
 */
export interface MessagePortLike {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  addEventListener(type: 'message' | 'messageerror' | 'close', listener: (event: PortEvent) => void): void;
  start?(): void;
  close(): void;
}

/** An event of a port (a `MessageEvent` for 'message'). */
export interface PortEvent {
  readonly type: string;
  readonly data?: unknown;
}

/** What a port carries: byte chunks (Uint8Array), and this marker for an orderly end. */
const END_MARKER = 'ftvm-transport:end';

/**
 * A {@link ByteStream} over a `MessagePort`, for hosts that are worker threads: give each end of a
 * `MessageChannel` to one side (transfer a port to a worker with `postMessage(port, [port])`).
 * Chunks are transferred, not copied: `write` detaches the array's buffer when the array covers it
 * whole. Where the runtime reports a port closed (Node), a peer that closes its port without an
 * orderly end is a connection error.
 */
export function createMessagePortStream(port: MessagePortLike): ByteStream {
  const events = new StreamEvents();
  let ended = false;
  port.addEventListener('message', (event) => {
    const data = event.data;
    if (data instanceof Uint8Array) events.data(data);
    else if (data === END_MARKER) events.end();
    else events.error(new ChannelError('protocol', 'the port carried something other than bytes'));
  });
  port.addEventListener('messageerror', () => {
    events.error(new ChannelError('protocol', 'a message on the port could not be read'));
  });
  port.addEventListener('close', () => events.error(new Error('the port was closed')));
  port.start?.();

  const shut = (): void => {
    ended = true;
    events.mute();
  };
  return {
    write(bytes: Uint8Array): void {
      if (ended || bytes.length === 0) return;
      const buffer = bytes.buffer;
      const whole =
        buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength;
      const chunk = whole ? bytes : bytes.slice();
      port.postMessage(chunk, [chunk.buffer]);
    },
    get bufferedBytes(): number {
      return 0;
    },
    onData: (listener) => events.setData(listener),
    onEnd: (listener) => events.setEnd(listener),
    onError: (listener) => events.setError(listener),
    close(): void {
      if (ended) return;
      shut();
      port.postMessage(END_MARKER);
      port.close();
    },
    destroy(): void {
      if (ended) return;
      shut();
      port.close();
    },
  };
}
