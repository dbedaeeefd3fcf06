import { constants } from 'node:crypto';
import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket, TlsOptions } from 'node:tls';
import { ConfigError } from '@ftvm/core';
import { NAME } from './api.js';
import { type CertificateCredentials, type Credentials, loadCredentials } from './certs.js';
import { derivePsk, loadPskCredentials, type PskCredentials } from './psk.js';

/**
 * How every channel of the cluster authenticates, for either kind of credentials: mutual TLS with
 * the cluster CA's certificates, or TLS 1.2 with PSK cipher suites and the cluster's pre-shared key
 * (`psk.ts`). The control API, the gateway links and the logging channels all take their TLS
 * options from here, and a server learns the peer's name here (its certificate's common name, or
 * its PSK identity).
 */

/**
 * PSK suites: TLS 1.2 only (Node's `pskCallback` does not work with TLS 1.3). ECDHE first, for
 * forward secrecy; no certificate is involved in either.
 */
export const PSK_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305:PSK-AES256-GCM-SHA384';

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
  const { psk } = credentials;
  return {
    ciphers: PSK_CIPHERS,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    pskIdentityHint: credentials.name,
    // A resumed session skips the PSK callback, and with it the peer's name: no tickets.
    secureOptions: constants.SSL_OP_NO_TICKET,
    pskCallback: (socket, identity) => {
      // Not a name any component could have: refused before a key is derived for it.
      if (!NAME.safeParse(identity).success) return null;
      // Recorded now; only a socket whose handshake then succeeds is ever asked for its peer.
      pskIdentities.set(socket, identity);
      return derivePsk(psk, identity);
    },
  };
}

/** A client's TLS options towards `host`. */
export function clientTlsOptions(credentials: Credentials, host: string): ConnectionOptions {
  if (!isPsk(credentials)) {
    const { key, cert, ca } = credentials;
    return { key, cert, ca, servername: isIP(host) ? undefined : host };
  }
  const identity = credentials.name;
  const key = derivePsk(credentials.psk, identity);
  return {
    ciphers: PSK_CIPHERS,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    pskCallback: () => ({ identity, psk: key }),
    // No certificate to check: the server proved it holds the cluster key in the handshake.
    checkServerIdentity: () => undefined,
  };
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
export function channelTls(
  credentials: Credentials,
):
  | Pick<CertificateCredentials, 'key' | 'cert' | 'ca'>
  | { readonly psk: { readonly identity: string; readonly secret: Uint8Array } } {
  if (!isPsk(credentials)) {
    const { key, cert, ca } = credentials;
    return { key, cert, ca };
  }
  return { psk: { identity: credentials.name, secret: credentials.psk } };
}

/** What OpenSSL reports when the two ends' pre-shared keys (or kinds of credentials) differ. */
const PSK_REFUSED =
  /bad record mac|decryption failed|decrypt error|bad decrypt|cipher operation failed|handshake failure|no shared cipher|unknown psk identity/i;

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
  const refused = PSK_REFUSED.exec(message);
  if (!refused) return message;
  return `the TLS handshake failed: the peer holds another pre-shared key than ${credentials.file}, or uses certificates (OpenSSL: ${refused[0].toLowerCase()})`;
}
