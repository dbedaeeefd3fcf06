/**
 * A 64-bit guest counter (mcycle, minstret) that counts retired instructions, kept without BigInt.
 *
 * The counter's value is `offset + retired` (mod 2^64) while it runs and `offset` while it is
 * inhibited (mcountinhibit). `retired` is the CPU's count of retired instructions, a JS number
 * below 2^53; the offset is held as two unsigned 32-bit halves so that any 64-bit value a guest
 * writes is kept exactly.
 */

const TWO_POW_32 = 0x1_0000_0000;

/** Mutable state of one counter; plain data so it can be saved as is. */
export interface CounterState {
  offsetHigh: number;
  offsetLow: number;
  inhibited: boolean;
}

export function newCounter(): CounterState {
  return { offsetHigh: 0, offsetLow: 0, inhibited: false };
}

function splitHigh(value: number): number {
  return Math.floor(value / TWO_POW_32);
}

/** The low half of `counter` when `retired` instructions have retired. */
export function counterLow(counter: CounterState, retired: number): number {
  if (counter.inhibited) return counter.offsetLow;
  return (counter.offsetLow + (retired % TWO_POW_32)) >>> 0;
}

/** The high half of `counter` when `retired` instructions have retired. */
export function counterHigh(counter: CounterState, retired: number): number {
  if (counter.inhibited) return counter.offsetHigh;
  const retiredLow = retired % TWO_POW_32;
  const carry = counter.offsetLow + retiredLow >= TWO_POW_32 ? 1 : 0;
  return (counter.offsetHigh + splitHigh(retired) + carry) >>> 0;
}

/** Makes the counter read (high, low) when `retired` instructions have retired. */
export function counterSet(counter: CounterState, retired: number, high: number, low: number): void {
  if (counter.inhibited) {
    counter.offsetHigh = high >>> 0;
    counter.offsetLow = low >>> 0;
    return;
  }
  const retiredLow = retired % TWO_POW_32;
  let newLow = (low >>> 0) - retiredLow;
  let borrow = 0;
  if (newLow < 0) {
    newLow += TWO_POW_32;
    borrow = 1;
  }
  counter.offsetLow = newLow;
  counter.offsetHigh = ((high >>> 0) - splitHigh(retired) - borrow) >>> 0;
}

/** Stops or restarts counting, keeping the value the counter has at `retired`. */
export function counterInhibit(counter: CounterState, retired: number, inhibited: boolean): void {
  if (counter.inhibited === inhibited) return;
  const high = counterHigh(counter, retired);
  const low = counterLow(counter, retired);
  counter.inhibited = inhibited;
  counterSet(counter, retired, high, low);
}
