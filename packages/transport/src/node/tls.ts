import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import type { LogChannel } from '@ftvm/core';
import { ChannelError } from '@ftvm/core';
import { HANDSHAKE_TIMEOUT_MS_DEFAULT } from '../index.js';
import type { SocketStreamOptions } from './socket-stream.js';
import {
  type ChannelListener,
  type ConnectOptions,
  connectChannel,
  type ListenOptions,
  serveChannels,
} from './tcp.js';

/** PEM text or bytes, one or several (a CA list). */
export type Pem = string | Uint8Array | readonly (string | Uint8Array)[];

/** Mutual TLS: this side's key and certificate, and the CA(s) the peer's certificate must chain to. */
export interface TlsCredentials {
  /** This side's private key (PEM). */
  readonly key: Pem;
  /** This side's certificate (PEM), signed by a CA the peer trusts. */
  readonly cert: Pem;
  /** The CA certificate(s) (PEM) that sign the certificates of the peers accepted. */
  readonly ca: Pem;
}

export interface TlsListenOptions extends ListenOptions, TlsCredentials {}

export interface TlsConnectOptions extends ConnectOptions, TlsCredentials {
  /** The name the server's certificate must hold (default: `host`, when it is a name). */
  readonly servername?: string;
}

const CERTIFICATE_ERROR =
  /CERT|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED|ALERT_UNKNOWN_CA|ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE|ALERT_HANDSHAKE_FAILURE|ERR_TLS_CERT_ALTNAME|PEER_DID_NOT_RETURN_A_CERTIFICATE|NO_CERTIFICATE/;

/** A certificate that was refused (either side) is an 'authentication' failure, else 'connection'. */
export function tlsError(error: Error): Error {
  if (ChannelError.is(error)) return error;
  const code = (error as { code?: unknown }).code;
  const text = `${typeof code === 'string' ? code : ''} ${error.message}`;
  if (CERTIFICATE_ERROR.test(text.toUpperCase().replace(/ /g, '_'))) {
    return new ChannelError('authentication', `TLS: the peer's certificate was refused: ${error.message}`, {
      cause: error,
    });
  }
  return new ChannelError('connection', `TLS: ${error.message}`, { cause: error });
}

const streamOptions: SocketStreamOptions = { mapError: tlsError };

type TlsPem = string | Buffer | (string | Buffer)[];

function pem(value: Pem): TlsPem {
  const one = (item: string | Uint8Array): string | Buffer =>
    typeof item === 'string' ? item : Buffer.from(item.buffer, item.byteOffset, item.byteLength);
  return Array.isArray(value) ? value.map(one) : one(value as string | Uint8Array);
}

/**
 * Listens for logging channels over TLS with mutual certificates: a client without a certificate
 * signed by `ca` is refused during the TLS handshake (`onError` gets a `ChannelError`
 * 'authentication'). A pre-shared key, when given, is checked on top.
 */
export function listenTls(
  options: TlsListenOptions,
  onChannel: (channel: LogChannel) => void,
): Promise<ChannelListener> {
  const server = createTlsServer({
    key: pem(options.key),
    cert: pem(options.cert),
    ca: pem(options.ca),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT,
  });
  server.on('tlsClientError', (error, socket) => {
    // Node verifies the client's certificate after the TLS handshake and then drops the socket:
    // the error is a hang-up, the reason is on the socket.
    const refused = socket.authorizationError;
    options.onError?.(
      refused
        ? new ChannelError(
            'authentication',
            `TLS: the client's certificate was refused: ${String(refused)}`,
            {
              cause: error,
            },
          )
        : tlsError(error),
    );
  });
  return serveChannels({ server, connectionEvent: 'secureConnection', streamOptions }, options, onChannel);
}

/** Connects to a TLS logging-channel listener with this side's certificate, then runs the handshake. */
export async function connectTls(options: TlsConnectOptions): Promise<LogChannel> {
  const socket = tlsConnect({
    host: options.host,
    port: options.port,
    key: pem(options.key),
    cert: pem(options.cert),
    ca: pem(options.ca),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ...(options.servername === undefined ? {} : { servername: options.servername }),
  });
  socket.setNoDelay(true);
  try {
    return await connectChannel(socket, 'secureConnect', options, streamOptions);
  } catch (error) {
    // A server refuses a client's certificate after the TLS handshake, without a word (Node does
    // not send an alert): the client sees only the connection closing during the handshake.
    if (ChannelError.is(error) && error.reason === 'connection' && socket.authorized) {
      throw new ChannelError(
        'connection',
        `${error.message} (a TLS server closes the connection so when it refuses this side's certificate)`,
        { cause: error },
      );
    }
    throw error;
  }
}
