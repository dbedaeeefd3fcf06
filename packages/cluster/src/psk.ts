import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '@ftvm/core';

/**
 * The cluster's pre-shared key, for trials: one file (`ftvm certs psk --out FILE`) holding 32 random
 * bytes in hex, given to every component instead of a certificates directory. Each channel is then
 * TLS 1.2 with PSK cipher suites: a component names itself in the handshake (its PSK identity: h1,
 * orchestrator, gateway, operator) and both sides use the key derived for that name,
 *
 *     HMAC-SHA256(cluster key, "ftvm-psk-1" ‖ name)
 *
 * so a peer without the cluster key fails the handshake before anything it sends is parsed. With
 * one shared key, any holder can claim any name: certificates are what production needs.
 */

/** A component's credentials when the cluster runs on a pre-shared key. */
export interface PskCredentials {
  /** The cluster key (its bytes, never the hex text). */
  readonly psk: Uint8Array;
  /** The component's name: its PSK identity. */
  readonly name: string;
  /** The key file it came from (for messages). */
  readonly file: string;
}

export const PSK_BYTES = 32;
/** Keys longer than this are not a key file somebody meant. */
const PSK_BYTES_MAX = 512;

/**
 * Writes a new cluster key to `path` (mode 0600), creating its directory; refuses to replace an
 * existing file. Returns the path.
 */
export function createPskFile(path: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    // 'wx': never replaces a key that every component of a cluster may already hold.
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      throw new ConfigError(
        `${path} already exists; remove it to make a new key (every component then needs the new one)`,
      );
    }
    throw new ConfigError(`cannot create ${path}: ${(error as Error).message}`);
  }
  try {
    writeSync(fd, `${randomBytes(PSK_BYTES).toString('hex')}\n`);
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Parses a key file's text: hex, at least 32 bytes, surrounding whitespace allowed. */
export function parsePsk(text: string, path: string): Uint8Array {
  const hex = text.trim();
  if (hex.length === 0) throw new ConfigError(`pre-shared key ${path} is empty`);
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0) {
    throw new ConfigError(
      `pre-shared key ${path} is not hex (expected ${PSK_BYTES * 2} hex digits, as \`ftvm certs psk\` writes)`,
    );
  }
  const bytes = hex.length / 2;
  if (bytes < PSK_BYTES || bytes > PSK_BYTES_MAX) {
    throw new ConfigError(
      `pre-shared key ${path} holds ${bytes} bytes; a key is ${PSK_BYTES} to ${PSK_BYTES_MAX} bytes (\`ftvm certs psk\` makes one)`,
    );
  }
  // A copy in a buffer of its own: it crosses to worker threads, which would clone a whole pool.
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Component `name`'s credentials from the key file at `path`. */
export function loadPskCredentials(path: string, name: string): PskCredentials {
  let text: string;
  try {
    // A device or a huge file is not read whole (`--psk /dev/zero` would never end).
    const stat = statSync(path);
    if (!stat.isFile()) throw new ConfigError(`pre-shared key ${path} is not a regular file`);
    if (stat.size > 4 * PSK_BYTES_MAX) {
      throw new ConfigError(`pre-shared key ${path} is ${stat.size} bytes: not a key file`);
    }
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === 'ENOENT'
        ? `no pre-shared key ${path}: make one with \`ftvm certs psk --out ${path}\` and copy it to every component`
        : `cannot read pre-shared key ${path}: ${(error as Error).message}`,
    );
  }
  return { psk: parsePsk(text, path), name, file: path };
}

/** The key of an identity in a cluster whose key is `psk`: the one transport's TLS-PSK derives. */
export { derivePskKey as derivePsk } from '@ftvm/transport/node';
