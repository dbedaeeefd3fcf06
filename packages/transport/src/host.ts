/**
 * The few host facilities the portable part uses, typed here so that it needs neither DOM nor Node
 * types: timers, Web Crypto (Node 20, browsers, workers).
 */

/** Runs `fn` after `delayMs`; returns a function that cancels it. */
export type Scheduler = (delayMs: number, fn: () => void) => () => void;

interface TimerHost {
  setTimeout(fn: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The host's `setTimeout`. */
export const timerScheduler: Scheduler = (delayMs, fn) => {
  const host = globalThis as unknown as TimerHost;
  const handle = host.setTimeout(fn, delayMs);
  return () => host.clearTimeout(handle);
};

export interface CryptoKeyLike {
  readonly type: string;
}

export interface SubtleCryptoLike {
  importKey(
    format: 'raw',
    keyData: Uint8Array,
    algorithm: { name: 'HMAC'; hash: 'SHA-256' },
    extractable: boolean,
    usages: readonly 'sign'[],
  ): Promise<CryptoKeyLike>;
  sign(algorithm: 'HMAC', key: CryptoKeyLike, data: Uint8Array): Promise<ArrayBuffer>;
}

export interface WebCryptoLike {
  getRandomValues<T extends Uint8Array>(array: T): T;
  readonly subtle: SubtleCryptoLike;
}

/** The host's Web Crypto; throws when there is none. */
export function webCrypto(): WebCryptoLike {
  const crypto = (globalThis as { crypto?: WebCryptoLike }).crypto;
  if (crypto?.subtle === undefined) throw new Error('globalThis.crypto.subtle is not available');
  return crypto;
}
