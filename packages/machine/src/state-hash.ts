import type { RamRegion } from '@ftvm/core';
import { PAGE_SHIFT } from '@ftvm/core';

/**
 * An incremental digest of guest RAM: a 64-bit hash per 4 KiB page, kept up to date by rehashing
 * only the pages written since the last digest, folded into one digest of all pages. Not
 * cryptographic: it finds divergence between two honest replicas, not tampering by an adversary.
 */

const WORDS_PER_PAGE = 1 << (PAGE_SHIFT - 2);

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/** Two independent 32-bit lanes (murmur3-style mixing) over 32-bit words. */
export function hashWords(
  words: Int32Array | Uint32Array,
  start: number,
  count: number,
  seed: number,
): [number, number] {
  let first = seed ^ 0x9e3779b9;
  let second = Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35;
  for (let index = start; index < start + count; index++) {
    let word = words[index] as number;
    word = Math.imul(word, 0xcc9e2d51);
    word = rotateLeft(word, 15);
    word = Math.imul(word, 0x1b873593);
    first ^= word;
    first = (Math.imul(rotateLeft(first, 13), 5) + 0xe6546b64) | 0;
    second = (Math.imul(second ^ word, 0x27d4eb2d) + index) | 0;
    second = rotateLeft(second, 11);
  }
  return [finalMix(first ^ count), finalMix(second ^ (count * 3))];
}

function finalMix(value: number): number {
  value ^= value >>> 16;
  value = Math.imul(value, 0x85ebca6b);
  value ^= value >>> 13;
  value = Math.imul(value, 0xc2b2ae35);
  value ^= value >>> 16;
  return value >>> 0;
}

/** Hash of arbitrary bytes (device and CPU state encodings), padded to whole words. */
export function hashBytes(bytes: Uint8Array, seed = 0): [number, number] {
  const words = new Uint32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  return hashWords(words, 0, words.length, seed ^ bytes.length);
}

/**
 * Keeps per-page hashes of one RAM region. `update(pages)` rehashes the listed pages; `digest()`
 * folds all page hashes. The first `update` must cover every page (`updateAll`).
 */
export class RamHasher {
  private readonly words: Int32Array;
  private readonly pageHashes: Uint32Array;

  /** `deferred`: hash nothing yet; the caller hashes every page with `updatePage` before `digest`. */
  constructor(
    private readonly ram: RamRegion,
    deferred = false,
  ) {
    this.words = new Int32Array(ram.bytes.buffer, ram.bytes.byteOffset, ram.size >>> 2);
    this.pageHashes = new Uint32Array((ram.size >>> PAGE_SHIFT) * 2);
    if (!deferred) this.updateAll();
  }

  get pageCount(): number {
    return this.ram.size >>> PAGE_SHIFT;
  }

  updateAll(): void {
    const pageCount = this.ram.size >>> PAGE_SHIFT;
    for (let page = 0; page < pageCount; page++) this.updatePage(page);
  }

  /** Rehashes every page whose flag is set in `changedPages` (one byte per page). */
  updateChanged(changedPages: Uint8Array): void {
    for (let page = changedPages.indexOf(1); page !== -1; page = changedPages.indexOf(1, page + 1)) {
      this.updatePage(page);
    }
  }

  updatePage(page: number): void {
    const [first, second] = hashWords(this.words, page * WORDS_PER_PAGE, WORDS_PER_PAGE, page);
    this.pageHashes[page * 2] = first;
    this.pageHashes[page * 2 + 1] = second;
  }

  digest(): [number, number] {
    return hashWords(this.pageHashes, 0, this.pageHashes.length, 0x5eed);
  }
}
