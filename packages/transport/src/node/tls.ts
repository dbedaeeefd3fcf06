import { constants, createHmac } from 'node:crypto';
import {
  type ConnectionOptions,
  createServer as createTlsServer,
  type TLSSocket,
  type TlsOptions,
  connect as tlsConnect,
} from 'node:tls';
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

/**
 * Or a pre-shared key instead of certificates (trials): TLS 1.2 with PSK cipher suites. A client
 * sends `identity`; both sides use the key derived for it from `secret`,
 * HMAC-SHA256(secret, "ftvm-psk-1" ‖ identity), so a peer without the secret fails the handshake.
 * Every holder of the secret can claim any identity.
 */
export interface TlsPsk {
  /** This side's name, sent in the clear when it connects. */
  readonly identity: string;
  /** The shared secret (at least 16 bytes) every identity's key is derived from. */
  readonly secret: Uint8Array;
}

/** TLS authenticated by a pre-shared key: see {@link TlsPsk}. */
export interface TlsPskCredentials {
  readonly psk: TlsPsk;
}

export type TlsListenOptions = ListenOptions & (TlsCredentials | TlsPskCredentials);

export type TlsConnectOptions = ConnectOptions &
  (TlsCredentials | TlsPskCredentials) & {
    /** The name the server's certificate must hold (default: `host`, when it is a name). */
    readonly servername?: string;
  };

/** PSK suites (TLS 1.2 only: Node's `pskCallback` does not work with TLS 1.3); ECDHE first, for forward secrecy. */
export const PSK_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305:PSK-AES256-GCM-SHA384';
const PSK_LABEL = 'ftvm-psk-1';
const PSK_IDENTITY_BYTES_MAX = 128;

/** The key both sides use for `identity`: HMAC-SHA256(secret, "ftvm-psk-1" ‖ identity). */
export function derivePskKey(secret: Uint8Array, identity: string): Buffer {
  return createHmac('sha256', secret).update(PSK_LABEL).update(identity, 'utf8').digest();
}

function pskSecret(psk: TlsPsk): Uint8Array {
  if (!(psk.secret instanceof Uint8Array) || psk.secret.length < 16) {
    throw new ChannelError('authentication', 'TLS-PSK: the pre-shared secret must be at least 16 bytes');
  }
  return psk.secret;
}

/**
 * A TLS-PSK server's options (any TLS server: the logging channels here, HTTPS elsewhere). A
 * client's identity that `accept` refuses (and an empty or overlong one) gets no key: the
 * handshake fails before anything it sends is read. `accept` also lets the server remember who
 * each socket's peer is. Sessions are never resumed: a resumed session skips the PSK callback,
 * and with it the peer's name.
 */
export function pskServerTlsOptions(
  psk: TlsPsk,
  accept: (socket: TLSSocket, identity: string) => boolean = () => true,
): TlsOptions {
  const secret = pskSecret(psk);
  return {
    ciphers: PSK_CIPHERS,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    pskIdentityHint: psk.identity,
    secureOptions: constants.SSL_OP_NO_TICKET,
    pskCallback: (socket, identity) =>
      identity.length === 0 ||
      Buffer.byteLength(identity) > PSK_IDENTITY_BYTES_MAX ||
      !accept(socket, identity)
        ? null
        : derivePskKey(secret, identity),
  };
}

/** A TLS-PSK client's options: it names itself `psk.identity` and proves the derived key. */
export function pskClientTlsOptions(psk: TlsPsk): ConnectionOptions {
  const key = derivePskKey(pskSecret(psk), psk.identity);
  return {
    ciphers: PSK_CIPHERS,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    pskCallback: () => ({ identity: psk.identity, psk: key }),
    // No certificate: the server proved the key in the handshake, there is no name to check.
    checkServerIdentity: () => undefined,
  };
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

/**
 * What OpenSSL says, as an error code or in words, when the two sides' pre-shared keys differ (the
 * Finished messages do not verify) or one side has no PSK suite (it uses certificates).
 */
const PSK_MISMATCH =
  /bad[ _]record[ _]mac|decryption[ _]failed|decrypt[ _]error|bad[ _]decrypt|cipher[ _]operation[ _]failed|unknown[ _]psk[ _]identity|psk[ _]identity[ _]not[ _]found|no[ _]shared[ _]cipher|handshake[ _]failure/i;

/**
 * The words of OpenSSL's in `text` (an error's code and message) that say a TLS-PSK handshake
 * failed because the keys differ, lower case; undefined when it failed otherwise.
 */
export function pskMismatch(text: string): string | undefined {
  return PSK_MISMATCH.exec(text)?.[0].toLowerCase().replace(/_/g, ' ');
}

/** A handshake refused for its pre-shared key is an 'authentication' failure, else 'connection'. */
function tlsPskError(error: Error): Error {
  if (ChannelError.is(error)) return error;
  const code = (error as { code?: unknown }).code;
  if (pskMismatch(`${typeof code === 'string' ? code : ''} ${error.message}`) !== undefined) {
    return new ChannelError(
      'authentication',
      `TLS-PSK: the handshake failed, the peer's pre-shared key differs: ${error.message}`,
      { cause: error },
    );
  }
  return new ChannelError('connection', `TLS: ${error.message}`, { cause: error });
}

const streamOptions: SocketStreamOptions = { mapError: tlsError };
const pskStreamOptions: SocketStreamOptions = { mapError: tlsPskError };

type TlsPem = string | Buffer | (string | Buffer)[];

function pem(value: Pem): TlsPem {
  const one = (item: string | Uint8Array): string | Buffer =>
    typeof item === 'string' ? item : Buffer.from(item.buffer, item.byteOffset, item.byteLength);
  return Array.isArray(value) ? value.map(one) : one(value as string | Uint8Array);
}

/**
 * Listens for logging channels over TLS with mutual certificates: a client without a certificate
 * signed by `ca` is refused during the TLS handshake (`onError` gets a `ChannelError`
 * 'authentication'). With `psk` instead, a client without the secret is refused in the handshake
 * the same way. A channel pre-shared key (`preSharedKey`), when given, is checked on top.
 */
export async function listenTls(
  options: TlsListenOptions,
  onChannel: (channel: LogChannel) => void,
): Promise<ChannelListener> {
  if ('psk' in options) {
    const server = createTlsServer({
      ...pskServerTlsOptions(options.psk),
      handshakeTimeout: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT,
    });
    server.on('tlsClientError', (error) => options.onError?.(tlsPskError(error)));
    return serveChannels(
      { server, connectionEvent: 'secureConnection', streamOptions: pskStreamOptions },
      options,
      onChannel,
    );
  }
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

/**
 * Connects to a TLS logging-channel listener with this side's certificate (or pre-shared key),
 * then runs the handshake.
 */
export async function connectTls(options: TlsConnectOptions): Promise<LogChannel> {
  if ('psk' in options) {
    const socket = tlsConnect({
      host: options.host,
      port: options.port,
      ...pskClientTlsOptions(options.psk),
    });
    socket.setNoDelay(true);
    return connectChannel(socket, 'secureConnect', options, pskStreamOptions);
  }
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
