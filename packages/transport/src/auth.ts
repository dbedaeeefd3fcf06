import { AUTH_NONCE_BYTES } from '@ftvm/log-codec';
import { webCrypto } from './host.js';

/**
 * Mutual challenge–response with a pre-shared key. Each side sends a random nonce; each answers
 * the other's with
 *
 *     HMAC-SHA256(key, "ftvm-channel-auth-1" ‖ len ‖ own handshake ‖ len ‖ peer's handshake ‖
 *                      peer's nonce ‖ own nonce)
 *
 * (handshakes as the payload bytes of their frames, lengths as u32 big-endian). Both handshakes are
 * bound, so a man in the middle cannot change what either side claims; the answerer's own
 * handshake comes first, so an answer cannot be reflected back to its sender unless the two
 * handshakes are identical — which the channel refuses.
 */

const LABEL = new TextEncoder().encode('ftvm-channel-auth-1');

/** A fresh random nonce. */
export function randomNonce(): Uint8Array {
  return webCrypto().getRandomValues(new Uint8Array(AUTH_NONCE_BYTES));
}

/** The key as bytes: a string is taken as UTF-8. */
export function keyBytes(key: Uint8Array | string): Uint8Array {
  return typeof key === 'string' ? new TextEncoder().encode(key) : key;
}

function transcript(
  answererHandshake: Uint8Array,
  challengerHandshake: Uint8Array,
  challengerNonce: Uint8Array,
  answererNonce: Uint8Array,
): Uint8Array {
  const parts = [
    LABEL,
    lengthPrefix(answererHandshake.length),
    answererHandshake,
    lengthPrefix(challengerHandshake.length),
    challengerHandshake,
    challengerNonce,
    answererNonce,
  ];
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}

function lengthPrefix(length: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, length);
  return bytes;
}

/** The answer of `answerer` to the challenge of `challenger`. */
export async function authAnswer(
  key: Uint8Array,
  answererHandshake: Uint8Array,
  challengerHandshake: Uint8Array,
  challengerNonce: Uint8Array,
  answererNonce: Uint8Array,
): Promise<Uint8Array> {
  const { subtle } = webCrypto();
  const hmacKey = await subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = await subtle.sign(
    'HMAC',
    hmacKey,
    transcript(answererHandshake, challengerHandshake, challengerNonce, answererNonce),
  );
  return new Uint8Array(mac);
}

/** Compares two byte strings in time that depends on their length only. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= (a[i] as number) ^ (b[i] as number);
  return difference === 0;
}
