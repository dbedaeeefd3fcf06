import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket, TlsOptions } from 'node:tls';
import { ConfigError } from '@ftvm/core';
import {
  pskClientTlsOptions,
  pskMismatch,
  pskServerTlsOptions,
  type TlsCredentials,
  type TlsPskCredentials,
} from '@ftvm/transport/node';
import { NAME } from './api.js';
import { type Credentials, loadCredentials } from './certs.js';
import { loadPskCredentials, type PskCredentials } from './psk.js';

/**
 * How every channel of the cluster authenticates, for either kind of credentials: mutual TLS with
 * the cluster CA's certificates, or TLS 1.2 with PSK cipher suites and the cluster's pre-shared key
 * (`psk.ts`). The control API, the gateway links and the logging channels all take their TLS
 * options from here, and a server learns the peer's name here (its certificate's common name, or
 * its PSK identity). The PSK side is `@ftvm/transport/node`'s, which the logging channels use.
 */

export { PSK_CIPHERS } from '@ftvm/transport/node';

/** The PSK identity each server-side socket presented in its handshake. */
const pskIdentities = new WeakMap<TLSSocket, string>();

/** Where a component's credentials are: a certificates directory or a key file, exactly one. */
export interface CredentialSource {
  readonly certs?: string;
  readonly psk?: string;
}

/**
 * The credentials of component `name` from `--certs DIR` or `--psk FILE`; exactly one must be
 * given (a `ConfigError`, the usage status, otherwise).
 */
export function loadClusterCredentials(source: CredentialSource, name: string): Credentials {
  checkCredentialSource(source);
  return source.psk !== undefined
    ? loadPskCredentials(source.psk, name)
    : loadCredentials(source.certs as string, name);
}

/** Throws the usage error of {@link loadClusterCredentials}, reading nothing. */
export function checkCredentialSource(source: CredentialSource): void {
  const { certs, psk } = source;
  if (certs !== undefined && psk !== undefined) {
    throw new ConfigError('--certs and --psk are alternatives: give one of them');
  }
  if (certs === undefined && psk === undefined) {
    throw new ConfigError(
      '--certs DIR (the cluster certificates) or --psk FILE (a pre-shared key, for trials) is required',
    );
  }
  if (psk === '') throw new ConfigError('--psk names no file');
  if (certs === '') throw new ConfigError('--certs names no directory');
}

export function isPsk(credentials: Credentials): credentials is PskCredentials {
  return 'psk' in credentials;
}

/**
 * A server's TLS options: a peer without a certificate of the CA, or without the cluster key, is
 * refused in the handshake.
 */
export function serverTlsOptions(credentials: Credentials): TlsOptions {
  if (!isPsk(credentials)) {
    const { key, cert, ca } = credentials;
    return { key, cert, ca, requestCert: true, rejectUnauthorized: true };
  }
  return pskServerTlsOptions({ identity: credentials.name, secret: credentials.psk }, (socket, identity) => {
    // Not a name any component could have: refused before a key is derived for it.
    if (!NAME.safeParse(identity).success) return false;
    // Recorded now; only a socket whose handshake then succeeds is ever asked for its peer.
    pskIdentities.set(socket, identity);
    return true;
  });
}

/** A client's TLS options towards `host`. */
export function clientTlsOptions(credentials: Credentials, host: string): ConnectionOptions {
  if (!isPsk(credentials)) {
    const { key, cert, ca } = credentials;
    return { key, cert, ca, servername: isIP(host) ? undefined : host };
  }
  return pskClientTlsOptions({ identity: credentials.name, secret: credentials.psk });
}

/** The name of the peer on a server's socket: its PSK identity, or its certificate's common name. */
export function peerName(socket: TLSSocket): string {
  return pskIdentities.get(socket) ?? String(socket.getPeerCertificate()?.subject?.CN ?? '');
}

/**
 * A VM worker's logging-channel credentials, as `@ftvm/transport`'s `listenTls`/`connectTls` take
 * them: the certificates, or the cluster key with this host's name as its identity (transport
 * derives the same per-name keys, see `psk.ts`).
 */
export function channelTls(credentials: Credentials): TlsCredentials | TlsPskCredentials {
  if (!isPsk(credentials)) {
    const { key, cert, ca } = credentials;
    return { key, cert, ca };
  }
  return { psk: { identity: credentials.name, secret: credentials.psk } };
}

/**
 * `message`, or what it means when a PSK handshake failed the way a wrong key makes it fail
 * (OpenSSL says "bad record mac" amid its error codes, which tells an operator nothing).
 */
export function explainTlsFailure(credentials: Credentials, message: string): string {
  if (!isPsk(credentials)) {
    // A server on a pre-shared key offers no suite a certificate can use.
    return /handshake failure|no shared cipher/i.test(message)
      ? `${message.trim()} (does the peer run on a pre-shared key, --psk, instead of certificates?)`
      : message;
  }
  const refused = pskMismatch(message);
  if (refused === undefined) return message;
  return `the TLS handshake failed: the peer holds another pre-shared key than ${credentials.file}, or uses certificates (OpenSSL: ${refused})`;
}
