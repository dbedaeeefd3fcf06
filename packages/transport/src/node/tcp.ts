import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { LogChannel } from '@ftvm/core';
import { ChannelError, HostIoError } from '@ftvm/core';
import { type ChannelOptions, HANDSHAKE_TIMEOUT_MS_DEFAULT, openChannel } from '../index.js';
import { createSocketStream, type SocketStreamOptions } from './socket-stream.js';

export interface ListenOptions extends ChannelOptions {
  /** The address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** The port (default 0: any free port; read it from the listener). */
  readonly port?: number;
  /** Called for each connection that failed or was refused (a `ChannelError`), or a throwing `onChannel`. */
  readonly onError?: (error: Error) => void;
}

export interface ConnectOptions extends ChannelOptions {
  readonly host: string;
  readonly port: number;
  /** How long the connection may take to be made, in ms (default: the handshake timeout). */
  readonly connectTimeoutMs?: number;
}

/** A listening logging-channel endpoint. */
export interface ChannelListener {
  /** The port it listens on. */
  readonly port: number;
  readonly host: string;
  /**
   * Stops listening. Connections already accepted finish their handshake (within its timeout) and
   * still reach `onChannel`; open channels stay open (close them yourself).
   */
  close(): Promise<void>;
}

/** How a server turns an accepted connection into a channel (TCP or TLS). */
export interface Acceptor {
  readonly server: Server;
  /** The event with the connection, once it is ready for the channel's handshake. */
  readonly connectionEvent: 'connection' | 'secureConnection';
  readonly streamOptions?: SocketStreamOptions;
}

function connectionError(what: string, error: unknown): ChannelError {
  if (ChannelError.is(error)) return error;
  return new ChannelError('connection', `${what}: ${(error as Error).message}`, { cause: error });
}

/** Serves channels on a listening server: the shared part of {@link listenTcp} and `listenTls`. */
export async function serveChannels(
  acceptor: Acceptor,
  options: ListenOptions,
  onChannel: (channel: LogChannel) => void,
): Promise<ChannelListener> {
  const { server } = acceptor;
  const report = (error: Error): void => options.onError?.(error);
  server.on(acceptor.connectionEvent, (socket: Socket) => {
    openChannel(createSocketStream(socket, acceptor.streamOptions), options).then(
      (channel) => {
        try {
          onChannel(channel);
        } catch (error) {
          channel.close({ flush: false });
          report(error as Error);
        }
      },
      (error: Error) => {
        report(error);
      },
    );
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error): void => {
      reject(
        new HostIoError(`cannot listen on ${host}:${options.port ?? 0}: ${error.message}`, { cause: error }),
      );
    };
    server.once('error', failed);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  // Errors of the listening socket after it started (rare) are reported, never thrown.
  server.on('error', (error) =>
    report(new HostIoError(`listener failed: ${error.message}`, { cause: error })),
  );
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    port,
    host,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close();
        // The listening socket closes at once; accepted connections keep going.
        setImmediate(resolve);
      });
      return closing;
    },
  };
}

/**
 * Connects a socket and opens a channel over it: the shared part of {@link connectTcp} and
 * `connectTls`. `readyEvent` is when the socket is ready for the channel's handshake.
 */
export async function connectChannel(
  socket: Socket,
  readyEvent: 'connect' | 'secureConnect',
  options: ConnectOptions,
  streamOptions?: SocketStreamOptions,
): Promise<LogChannel> {
  const where = `${options.host}:${options.port}`;
  const timeoutMs = options.connectTimeoutMs ?? options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT;
  const mapError = streamOptions?.mapError ?? ((error: Error) => error);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new ChannelError('connection', `cannot connect to ${where}: no connection within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    const failed = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(connectionError(`cannot connect to ${where}`, mapError(error)));
    };
    socket.once('error', failed);
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      socket.off('error', failed);
      resolve();
    });
  });
  return openChannel(createSocketStream(socket, streamOptions), options);
}

/** Listens for logging channels over TCP; `onChannel` gets each one that passed its handshake. */
export function listenTcp(
  options: ListenOptions,
  onChannel: (channel: LogChannel) => void,
): Promise<ChannelListener> {
  return serveChannels(
    { server: createServer({ noDelay: true }), connectionEvent: 'connection' },
    options,
    onChannel,
  );
}

/** Connects to a TCP logging-channel listener and runs the handshake. */
export function connectTcp(options: ConnectOptions): Promise<LogChannel> {
  return connectChannel(
    tcpConnect({ host: options.host, port: options.port, noDelay: true }),
    'connect',
    options,
  );
}
