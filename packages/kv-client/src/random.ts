/** A small seeded PRNG (a Weyl sequence through murmur3's finalizer): the same seed, the same numbers. */
export interface SeededRandom {
  /** A uniform uint32. */
  uint32(): number;
  /** A uniform float in [0, 1). */
  float(): number;
  /** A uniform integer in [0, bound). */
  below(bound: number): number;
  /** An independent stream derived from this seed and `label`. */
  fork(label: number): SeededRandom;
}

function mix(value: number): number {
  value = Math.imul(value ^ (value >>> 16), 0x85ebca6b);
  value = Math.imul(value ^ (value >>> 13), 0xc2b2ae35);
  return (value ^ (value >>> 16)) >>> 0;
}

/** A PRNG seeded with any integer (only its low 32 bits matter). */
export function seededRandom(seed: number): SeededRandom {
  const origin = mix((seed >>> 0) ^ 0x5bd1e995);
  let state = origin;
  const random: SeededRandom = {
    uint32() {
      state = (state + 0x9e3779b9) >>> 0;
      return mix(state);
    },
    float() {
      return random.uint32() / 0x1_0000_0000;
    },
    below(bound) {
      return Math.floor(random.float() * bound);
    },
    fork(label) {
      return seededRandom(mix(origin ^ mix((label >>> 0) + 0x632be5ab)));
    },
  };
  return random;
}
