/**
 * The simulator's one source of randomness: xoshiro128** (Blackman and Vigna), seeded through
 * splitmix32 so that nearby seeds give unrelated streams. 32-bit integer arithmetic only, so every
 * JavaScript engine gives the same numbers. Nothing in a simulated run may use `Math.random`.
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  /** How many numbers were drawn (for the trace: two runs of a seed draw the same count). */
  draws = 0;

  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new RangeError(`a seed is a safe non-negative integer`);
    // splitmix32 over both halves of the seed.
    let state = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32) >>> 0, 0x9e37_79b9);
    const next = (): number => {
      state = (state + 0x9e37_79b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.draws++;
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A uniform number in [0, 1) with 32 bits of precision. */
  float(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** A uniform integer in [low, high] (inclusive). */
  int(low: number, high: number): number {
    if (high < low) throw new RangeError(`empty range ${low}..${high}`);
    return low + Math.floor(this.float() * (high - low + 1));
  }

  /** A uniform number in [low, high). */
  between(low: number, high: number): number {
    return low + this.float() * (high - low);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from nothing');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** One of `choices` by weight. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
    let point = this.float() * total;
    for (const [value, weight] of choices) {
      if (point < weight) return value;
      point -= weight;
    }
    return (choices[choices.length - 1] as readonly [T, number])[0];
  }

  /** An exponentially distributed number with the given mean (for arrival times). */
  exponential(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
