import type { Socket } from 'node:net';
import type { ByteStream } from '../byte-stream.js';
import { StreamEvents } from '../byte-stream.js';

/** How long a closed socket waits for the peer's end before it is torn down, by default. */
export const SOCKET_LINGER_MS_DEFAULT = 5000;

export interface SocketStreamOptions {
  /** How long `close()` waits for the peer to end its side before destroying the socket (ms). */
  readonly lingerMs?: number;
  /** Turns a socket error into the error reported (TLS maps certificate errors here). */
  readonly mapError?: (error: Error) => Error;
}

/**
 * A {@link ByteStream} over a connected TCP (or TLS) socket. Sets TCP_NODELAY: outputs wait for
 * the backup's acknowledgements, so small frames must leave at once.
 */
export function createSocketStream(socket: Socket, options: SocketStreamOptions = {}): ByteStream {
  const events = new StreamEvents();
  const mapError = options.mapError ?? ((error: Error) => error);
  let ended = false;
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => {
    events.data(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });
  socket.on('end', () => events.end());
  // Always listened to: an error after the channel closed must not become an uncaught exception.
  socket.on('error', (error) => events.error(mapError(error)));
  socket.on('close', () => events.error(new Error('the connection closed')));

  return {
    write(bytes: Uint8Array): void {
      if (ended || socket.destroyed || !socket.writable) return;
      socket.write(bytes);
    },
    get bufferedBytes(): number {
      return socket.destroyed ? 0 : socket.writableLength;
    },
    onData: (listener) => events.setData(listener),
    onEnd: (listener) => events.setEnd(listener),
    onError: (listener) => events.setError(listener),
    close(): void {
      if (ended) return;
      ended = true;
      events.mute();
      socket.end();
      const linger = setTimeout(() => socket.destroy(), options.lingerMs ?? SOCKET_LINGER_MS_DEFAULT);
      linger.unref();
      socket.once('close', () => clearTimeout(linger));
    },
    destroy(): void {
      ended = true;
      events.mute();
      socket.destroy();
    },
  };
}
