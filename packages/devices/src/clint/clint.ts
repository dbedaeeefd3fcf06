import type {
  AccessWidth,
  Device,
  DeviceEnv,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  InterruptLine,
  StateSection,
} from '@ftvm/core';
import { HART_INTERRUPT, nodeName, QEMU_VIRT_PHANDLES, socReg } from '../device-tree.js';
import { depositWord, highWord, lowWord, toUint64 } from '../mmio.js';
import { bigIntToState, StateReader } from '../state.js';

/**
 * SiFive CLINT for one hart, as QEMU 7.2 `virt` has it (an ACLINT MSWI at +0x0 and MTIMER at
 * +0x4000): `msip` at +0x0, `mtimecmp` at +0x4000 (two 32-bit halves), `mtime` at +0xBFF8, a
 * 10 MHz timebase. Registers take 32-bit accesses only.
 *
 * `mtime` is `floor(env.clock.monotonicNs() / 100)` plus an offset that a guest write of `mtime`
 * sets (QEMU allows it). MTIP follows `mtime >= mtimecmp`: it is pending at reset (`mtimecmp` is
 * 0); a write of `mtimecmp` or `mtime` re-evaluates it at once, and for a deadline still ahead the
 * CLINT arms `env.injectAt('mtimecmp', …)`, whose `timer-fired` event raises MTIP when applied if
 * the deadline still stands.
 */

export const CLINT_MMIO_SIZE_BYTES = 0x1_0000;
/** `mtime` ticks per second (QEMU `virt`'s `timebase-frequency`). */
export const CLINT_TIMEBASE_HZ = 10_000_000;
/** Guest nanoseconds per `mtime` tick. */
export const CLINT_NS_PER_TICK = 1_000_000_000 / CLINT_TIMEBASE_HZ;

const MSIP_OFFSET = 0x0;
const MTIMECMP_LOW_OFFSET = 0x4000;
const MTIMECMP_HIGH_OFFSET = 0x4004;
const MTIME_LOW_OFFSET = 0xbff8;
const MTIME_HIGH_OFFSET = 0xbffc;
/** The `injectAt` key of the timer. */
const TIMER_KEY = 'mtimecmp';
const STATE_VERSION = 1;

/** Options of {@link Clint}. */
export interface ClintOptions {
  /** The hart's machine software interrupt (MSIP) line. */
  readonly softwareInterrupt: InterruptLine;
  /** The hart's machine timer interrupt (MTIP) line. */
  readonly timerInterrupt: InterruptLine;
  /** Phandle of the hart's interrupt controller, for `interrupts-extended` (default QEMU's, 2). */
  readonly hartInterruptControllerPhandle?: number;
}

/** The CLINT model; see the file comment. */
export class Clint implements Device {
  readonly kind = 'clint';
  readonly mmioSize = CLINT_MMIO_SIZE_BYTES;

  readonly #softwareInterrupt: InterruptLine;
  readonly #timerInterrupt: InterruptLine;
  readonly #hartInterruptControllerPhandle: number;
  #env: DeviceEnv | undefined;

  // Guest-visible state (saved).
  #softwarePending = false;
  #mtimecmp = 0n;
  /** Added to the raw tick count (mod 2^64) to give `mtime`; set by guest writes of `mtime`. */
  #mtimeOffsetTicks = 0n;
  #timerPending = true;
  /** Guest time at which the armed timer falls due, or null when none is armed. */
  #deadlineNs: number | null = null;

  constructor(options: ClintOptions) {
    this.#softwareInterrupt = options.softwareInterrupt;
    this.#timerInterrupt = options.timerInterrupt;
    this.#hartInterruptControllerPhandle =
      options.hartInterruptControllerPhandle ?? QEMU_VIRT_PHANDLES.hartInterruptController;
  }

  attach(env: DeviceEnv, _placement: DevicePlacement): void {
    this.#env = env;
    this.#driveLines();
  }

  /**
   * The current `mtime`, for the CPU's `time`/`timeh` CSRs. Exact up to 2^53 ticks (28 years of
   * 10 MHz); see {@link readMtime64} beyond. Reads the guest clock: call it only while executing
   * an instruction.
   */
  readMtime(): number {
    return Number(this.readMtime64());
  }

  /** The current `mtime` as an unsigned 64-bit integer. */
  readMtime64(): bigint {
    return this.#mtimeAt(this.#readClockNs());
  }

  readMmio(offset: number, width: AccessWidth): number {
    // QEMU accepts only 32-bit accesses here (others fault); we read 0.
    if (width !== 4) return 0;
    switch (offset) {
      case MSIP_OFFSET:
        return this.#softwarePending ? 1 : 0;
      case MTIMECMP_LOW_OFFSET:
        return lowWord(this.#mtimecmp);
      case MTIMECMP_HIGH_OFFSET:
        return highWord(this.#mtimecmp);
      case MTIME_LOW_OFFSET:
        return lowWord(this.readMtime64());
      case MTIME_HIGH_OFFSET:
        return highWord(this.readMtime64());
      default:
        // Registers of harts that do not exist, and holes, read 0.
        return 0;
    }
  }

  writeMmio(offset: number, width: AccessWidth, value: number): void {
    if (width !== 4) return;
    switch (offset) {
      case MSIP_OFFSET:
        this.#softwarePending = (value & 1) !== 0;
        this.#softwareInterrupt.set(this.#softwarePending);
        return;
      case MTIMECMP_LOW_OFFSET:
      case MTIMECMP_HIGH_OFFSET: {
        const nowNs = this.#readClockNs();
        this.#mtimecmp = depositWord(this.#mtimecmp, offset === MTIMECMP_LOW_OFFSET ? 0 : 1, value);
        this.#evaluateTimer(nowNs);
        return;
      }
      case MTIME_LOW_OFFSET:
      case MTIME_HIGH_OFFSET: {
        const nowNs = this.#readClockNs();
        const mtime = depositWord(this.#mtimeAt(nowNs), offset === MTIME_LOW_OFFSET ? 0 : 1, value);
        this.#mtimeOffsetTicks = toUint64(mtime - rawTicks(nowNs));
        this.#evaluateTimer(nowNs);
        return;
      }
      default:
        return;
    }
  }

  applyEvent(event: DeviceEventPayload): void {
    // A `timer-fired` that finds no armed timer is stale (mtimecmp or mtime was written since).
    if (event.type !== 'timer-fired' || this.#deadlineNs === null) return;
    this.#evaluateTimer(this.#readClockNs());
  }

  /**
   * A backup ignored every `injectAt` while it followed the log; now that it is the primary, the
   * armed timer must be asked for again.
   */
  onGoLive(): void {
    if (this.#deadlineNs !== null) this.#arm(this.#deadlineNs);
  }

  reset(): void {
    this.#softwarePending = false;
    this.#mtimecmp = 0n;
    this.#mtimeOffsetTicks = 0n;
    this.#timerPending = true;
    this.#disarm();
    this.#driveLines();
  }

  #readClockNs(): number {
    return this.#env?.clock.monotonicNs() ?? 0;
  }

  #mtimeAt(nowNs: number): bigint {
    return toUint64(rawTicks(nowNs) + this.#mtimeOffsetTicks);
  }

  /** MTIP := mtime >= mtimecmp, and a timer for the deadline when it is ahead (QEMU's rule). */
  #evaluateTimer(nowNs: number): void {
    const mtime = this.#mtimeAt(nowNs);
    if (this.#mtimecmp <= mtime) {
      this.#setTimerPending(true);
      this.#disarm();
      return;
    }
    this.#setTimerPending(false);
    // The clock reading at which mtime reaches mtimecmp; beyond 2^53 ns (104 days) a JavaScript
    // number cannot name it, so the timer waits that long and then re-evaluates.
    const deadlineNs = Number((rawTicks(nowNs) + (this.#mtimecmp - mtime)) * BigInt(CLINT_NS_PER_TICK));
    const clampedNs = Math.min(deadlineNs, Number.MAX_SAFE_INTEGER);
    if (clampedNs <= nowNs) {
      // Only when the clock itself is past 2^53 ns: nothing later can be named, so stop here.
      this.#disarm();
      return;
    }
    this.#arm(clampedNs);
  }

  #arm(deadlineNs: number): void {
    this.#deadlineNs = deadlineNs;
    this.#env?.injectAt(TIMER_KEY, deadlineNs, {
      type: 'timer-fired',
      data: { mtimecmp: bigIntToState(this.#mtimecmp) },
    });
  }

  #disarm(): void {
    if (this.#deadlineNs === null) return;
    this.#deadlineNs = null;
    this.#env?.cancelInjectAt(TIMER_KEY);
  }

  #setTimerPending(level: boolean): void {
    if (level === this.#timerPending) return;
    this.#timerPending = level;
    this.#timerInterrupt.set(level);
  }

  #driveLines(): void {
    this.#softwareInterrupt.set(this.#softwarePending);
    this.#timerInterrupt.set(this.#timerPending);
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        softwarePending: this.#softwarePending,
        mtimecmp: bigIntToState(this.#mtimecmp),
        mtimeOffsetTicks: bigIntToState(this.#mtimeOffsetTicks),
        timerPending: this.#timerPending,
        deadlineNs: this.#deadlineNs,
      },
    };
  }

  restoreState(section: StateSection): void {
    const state = StateReader.open(section, this.kind, STATE_VERSION);
    const softwarePending = state.boolean('softwarePending');
    const mtimecmp = state.uint64('mtimecmp');
    const mtimeOffsetTicks = state.uint64('mtimeOffsetTicks');
    const timerPending = state.boolean('timerPending');
    const deadlineNs = state.finiteOrNull('deadlineNs');
    this.#softwarePending = softwarePending;
    this.#mtimecmp = mtimecmp;
    this.#mtimeOffsetTicks = mtimeOffsetTicks;
    this.#timerPending = timerPending;
    if (deadlineNs === null) {
      this.#deadlineNs = null;
      this.#env?.cancelInjectAt(TIMER_KEY);
    } else {
      this.#arm(deadlineNs);
    }
    this.#driveLines();
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    const hart = this.#hartInterruptControllerPhandle;
    return {
      name: nodeName('clint', placement.base),
      properties: {
        'interrupts-extended': [hart, HART_INTERRUPT.machineSoftware, hart, HART_INTERRUPT.machineTimer],
        reg: socReg(placement.base, CLINT_MMIO_SIZE_BYTES),
        compatible: ['sifive,clint0', 'riscv,clint0'],
      },
    };
  }
}

/** Whole ticks of the 10 MHz timebase in `ns` nanoseconds. */
function rawTicks(ns: number): bigint {
  // A clock reading is host input: a broken one (negative, NaN) counts as 0 rather than throwing.
  return Number.isFinite(ns) && ns > 0 ? BigInt(Math.floor(ns / CLINT_NS_PER_TICK)) : 0n;
}
