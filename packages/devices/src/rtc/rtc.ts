import type {
  AccessWidth,
  Device,
  DeviceEnv,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  StateSection,
} from '@ftvm/core';
import { nodeName, QEMU_VIRT_PHANDLES, socReg } from '../device-tree.js';
import { depositWord, highWord, lowWord, toUint64 } from '../mmio.js';
import { bigIntToState, StateReader } from '../state.js';

/**
 * Goldfish RTC as QEMU 7.2's `goldfish_rtc` (PLIC source 11 on `virt`): a 64-bit count of
 * nanoseconds since the Unix epoch and one alarm. 32-bit accesses only.
 *
 * | offset | register |
 * |---|---|
 * | 0x00 | TIME_LOW: reading it returns the low half and latches the high half |
 * | 0x04 | TIME_HIGH: the latched high half (read TIME_LOW first); writing sets the time |
 * | 0x08 | ALARM_LOW: writing it arms the alarm (fires at once if not in the future) |
 * | 0x0c | ALARM_HIGH |
 * | 0x10 | IRQ_ENABLED (bit 0) |
 * | 0x14 | CLEAR_ALARM (write): disarms |
 * | 0x18 | ALARM_STATUS: 1 while armed |
 * | 0x1c | CLEAR_INTERRUPT (write) |
 *
 * Time is `env.clock.realtimeNs()` plus an offset that guest writes of TIME_* set. The alarm is
 * scheduled on the guest's monotonic clock (`env.injectAt('alarm', …)`) for the real time still
 * to go; when it fires it checks the real time again and re-arms if it came early.
 */

export const GOLDFISH_RTC_MMIO_SIZE_BYTES = 0x1000;
/** PLIC source of the RTC on `virt`. */
export const GOLDFISH_RTC_VIRT_IRQ = 11;

const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;
const ALARM_KEY = 'alarm';
const STATE_VERSION = 1;

/** Options of {@link GoldfishRtc}. */
export interface GoldfishRtcOptions {
  /** The phandle of the PLIC, for `interrupt-parent` (default QEMU's, 3). */
  readonly interruptParentPhandle?: number;
}

/** The Goldfish RTC model; see the file comment. */
export class GoldfishRtc implements Device {
  readonly kind = 'goldfish-rtc';
  readonly mmioSize = GOLDFISH_RTC_MMIO_SIZE_BYTES;

  readonly #interruptParentPhandle: number;
  #env: DeviceEnv | undefined;

  // Guest-visible state (saved).
  /** Added (mod 2^64) to the host's real time to give the guest's. */
  #offsetNs = 0n;
  #alarmNs = 0n;
  #alarmRunning = false;
  #interruptPending = false;
  #interruptEnabled = false;
  #latchedTimeHigh = 0;
  /** Monotonic guest time the armed alarm is scheduled for, or null. */
  #alarmDeadlineNs: number | null = null;

  #interruptLevel = false;

  constructor(options: GoldfishRtcOptions = {}) {
    this.#interruptParentPhandle = options.interruptParentPhandle ?? QEMU_VIRT_PHANDLES.plic;
  }

  attach(env: DeviceEnv, _placement: DevicePlacement): void {
    this.#env = env;
    this.#driveInterrupt(true);
  }

  readMmio(offset: number, width: AccessWidth): number {
    // QEMU accepts only 32-bit accesses (others fault, as do offsets from 0x24); we read 0.
    if (width !== 4) return 0;
    switch (offset) {
      case TIME_LOW: {
        const now = this.#now();
        this.#latchedTimeHigh = highWord(now);
        return lowWord(now);
      }
      case TIME_HIGH:
        return this.#latchedTimeHigh;
      case ALARM_LOW:
        return lowWord(this.#alarmNs);
      case ALARM_HIGH:
        return highWord(this.#alarmNs);
      case IRQ_ENABLED:
        return this.#interruptEnabled ? 1 : 0;
      case ALARM_STATUS:
        return this.#alarmRunning ? 1 : 0;
      default:
        return 0;
    }
  }

  writeMmio(offset: number, width: AccessWidth, value: number): void {
    if (width !== 4) return;
    switch (offset) {
      case TIME_LOW:
      case TIME_HIGH: {
        const hostNs = this.#readRealtime();
        const current = toUint64(hostNs + this.#offsetNs);
        const wanted = depositWord(current, offset === TIME_LOW ? 0 : 1, value);
        this.#offsetNs = toUint64(this.#offsetNs + wanted - current);
        return;
      }
      case ALARM_LOW:
        this.#alarmNs = depositWord(this.#alarmNs, 0, value);
        this.#setAlarm();
        return;
      case ALARM_HIGH:
        // As QEMU: only a write of the low half arms the alarm.
        this.#alarmNs = depositWord(this.#alarmNs, 1, value);
        return;
      case IRQ_ENABLED:
        this.#interruptEnabled = (value & 1) !== 0;
        this.#driveInterrupt(false);
        return;
      case CLEAR_ALARM:
        this.#clearAlarm();
        return;
      case CLEAR_INTERRUPT:
        this.#interruptPending = false;
        this.#driveInterrupt(false);
        return;
      default:
        return;
    }
  }

  applyEvent(event: DeviceEventPayload): void {
    // An `alarm-fired` for an alarm cleared or re-armed since is stale: re-checking the time below
    // makes it harmless either way.
    if (event.type !== 'alarm-fired' || !this.#alarmRunning || this.#alarmDeadlineNs === null) return;
    this.#setAlarm();
  }

  /** A backup ignored every `injectAt`; as the new primary it asks for the armed alarm again. */
  onGoLive(): void {
    if (this.#alarmDeadlineNs !== null) this.#schedule(this.#alarmDeadlineNs);
  }

  reset(): void {
    this.#offsetNs = 0n;
    this.#alarmNs = 0n;
    this.#alarmRunning = false;
    this.#interruptPending = false;
    this.#interruptEnabled = false;
    this.#latchedTimeHigh = 0;
    this.#cancelSchedule();
    this.#driveInterrupt(false);
  }

  #readRealtime(): bigint {
    const ns = this.#env?.clock.realtimeNs() ?? 0;
    // Host input: a broken reading counts as 0 rather than throwing.
    return Number.isFinite(ns) && ns > 0 ? BigInt(Math.floor(ns)) : 0n;
  }

  #now(): bigint {
    return toUint64(this.#readRealtime() + this.#offsetNs);
  }

  /** QEMU's set_alarm: fire now if the alarm time has come, else arm for the time still to go. */
  #setAlarm(): void {
    const now = this.#now();
    if (this.#alarmNs <= now) {
      this.#clearAlarm();
      this.#interruptPending = true;
      this.#driveInterrupt(false);
      return;
    }
    this.#alarmRunning = true;
    const env = this.#env;
    if (env === undefined) return;
    const monotonicNs = env.clock.monotonicNs();
    const deadlineNs = Math.min(monotonicNs + Number(this.#alarmNs - now), Number.MAX_SAFE_INTEGER);
    if (!(deadlineNs > monotonicNs)) {
      // Further than a JavaScript number can name (2^53 ns): it stays armed and never fires.
      this.#cancelSchedule();
      return;
    }
    this.#schedule(deadlineNs);
  }

  #schedule(deadlineNs: number): void {
    this.#alarmDeadlineNs = deadlineNs;
    this.#env?.injectAt(ALARM_KEY, deadlineNs, { type: 'alarm-fired', data: bigIntToState(this.#alarmNs) });
  }

  #cancelSchedule(): void {
    if (this.#alarmDeadlineNs === null) return;
    this.#alarmDeadlineNs = null;
    this.#env?.cancelInjectAt(ALARM_KEY);
  }

  #clearAlarm(): void {
    this.#cancelSchedule();
    this.#alarmRunning = false;
  }

  #driveInterrupt(force: boolean): void {
    const level = this.#interruptPending && this.#interruptEnabled;
    if (level === this.#interruptLevel && !force) return;
    this.#interruptLevel = level;
    this.#env?.irq.set(level);
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        offsetNs: bigIntToState(this.#offsetNs),
        alarmNs: bigIntToState(this.#alarmNs),
        alarmRunning: this.#alarmRunning,
        interruptPending: this.#interruptPending,
        interruptEnabled: this.#interruptEnabled,
        latchedTimeHigh: this.#latchedTimeHigh,
        alarmDeadlineNs: this.#alarmDeadlineNs,
      },
    };
  }

  restoreState(section: StateSection): void {
    const state = StateReader.open(section, this.kind, STATE_VERSION);
    const offsetNs = state.uint64('offsetNs');
    const alarmNs = state.uint64('alarmNs');
    const alarmRunning = state.boolean('alarmRunning');
    const interruptPending = state.boolean('interruptPending');
    const interruptEnabled = state.boolean('interruptEnabled');
    const latchedTimeHigh = state.integer('latchedTimeHigh', 0xffff_ffff);
    const alarmDeadlineNs = state.finiteOrNull('alarmDeadlineNs');
    this.#offsetNs = offsetNs;
    this.#alarmNs = alarmNs;
    this.#alarmRunning = alarmRunning;
    this.#interruptPending = interruptPending;
    this.#interruptEnabled = interruptEnabled;
    this.#latchedTimeHigh = latchedTimeHigh;
    if (alarmDeadlineNs === null) {
      this.#alarmDeadlineNs = null;
      this.#env?.cancelInjectAt(ALARM_KEY);
    } else {
      this.#schedule(alarmDeadlineNs);
    }
    this.#driveInterrupt(true);
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    return {
      name: nodeName('rtc', placement.base),
      properties: {
        interrupts: [placement.irq],
        'interrupt-parent': [this.#interruptParentPhandle],
        reg: socReg(placement.base, GOLDFISH_RTC_MMIO_SIZE_BYTES),
        compatible: 'google,goldfish-rtc',
      },
    };
  }
}
