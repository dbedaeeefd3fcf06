import type { DeviceEventPayload } from '@ftvm/core';
import { plainValuesEqual } from '@ftvm/core';
import type { RiscvCpu } from '@ftvm/cpu-riscv';
import type { HostClock } from './host.js';
import type { MachineCore } from './machine-core.js';
import type { ClockMode } from './machine-types.js';

/**
 * With the host clock, guest time advances this many nanoseconds per step between two samples: a
 * rate faster than any host runs the guest (1000 MIPS), so interpolation stays behind the host
 * clock and each sample moves guest time forward, never back.
 */
export const HOST_CLOCK_INTERPOLATION_NS_PER_STEP = 1;
/** A host clock sample is logged only when it moves guest time forward by at least this much. */
export const HOST_CLOCK_SAMPLE_NS_MIN = 10_000;

/** Guest nanoseconds per step with the deterministic clock: a nominal 100 MIPS. */
export const ICOUNT_CLOCK_NS_PER_STEP = 10;

/**
 * The real-time clock at boot with the deterministic clock, unless configured: 2026-01-01T00:00Z.
 * (Nanoseconds since the epoch exceed 2^53: such values are exact to 256 ns, and deterministic.)
 */
export const DEFAULT_REALTIME_BASE_NS = 1_767_225_600 * 1e9;

/** The machine's own name in the log, for the events it raises itself. */
export const MACHINE_LOG_NAME = '@machine';

interface PendingTimer {
  readonly device: string;
  readonly deadlineNs: number;
  readonly event: DeviceEventPayload;
}

/** The guest-time part of the machine's own state section (snapshots, state hashes). */
export interface GuestTimeState {
  readonly idleSkipNs: number;
  readonly clockBaseNs: number;
  readonly clockBaseIcount: number;
  readonly realtimeAtBootNs: number | null;
  readonly timers: readonly {
    readonly key: string;
    readonly device: string;
    readonly deadlineNs: number;
    readonly event: DeviceEventPayload;
  }[];
}

/**
 * Guest time of one machine: the host-clock samples and the interpolation between them, or the
 * icount clock and its idle skips; the real-time clock at boot; and the device timers armed
 * against guest time (door 1, scheduled), with their deadlines.
 */
export class GuestTime {
  readonly clockMode: ClockMode;
  private readonly cpu: RiscvCpu;
  private readonly timers = new Map<string, PendingTimer>();
  /** Guest time skipped while the hart idled, with the deterministic clock. */
  private idleSkipNs = 0;
  /** Host clock at boot: the host's guest-time reading is host time minus this. */
  private hostMonotonicBaseNs = 0;
  /** Host clock mode: guest time at `clockBaseIcount`, set by the last (logged) sample. */
  private clockBaseNs = 0;
  private clockBaseIcount = 0;
  /** Host clock mode: the latest sample pushed for application (guest time reaches it when applied). */
  private sampledNs = 0;
  /** Host clock mode: the real-time clock at guest time 0 (logged at boot); undefined until then. */
  private realtimeAtBootNs: number | undefined;

  constructor(
    private readonly core: MachineCore,
    clockMode: ClockMode,
  ) {
    this.cpu = core.cpu;
    this.clockMode = clockMode;
    if (core.options.hostClock) this.hostMonotonicBaseNs = core.options.hostClock.monotonicNs();
  }

  /**
   * Guest time now. Reads are not logged: time is a function of the execution point and of the
   * clock samples, which are logged events.
   */
  monotonicNs(): number {
    if (this.clockMode === 'icount') return this.cpu.icount * ICOUNT_CLOCK_NS_PER_STEP + this.idleSkipNs;
    return this.clockBaseNs + (this.cpu.icount - this.clockBaseIcount) * HOST_CLOCK_INTERPOLATION_NS_PER_STEP;
  }

  realtimeNs(): number {
    const atBoot =
      this.clockMode === 'icount'
        ? (this.core.options.realtimeBaseNs ?? DEFAULT_REALTIME_BASE_NS)
        : (this.realtimeAtBootNs ?? 0);
    return atBoot + this.monotonicNs();
  }

  /**
   * Host clock mode, at a step boundary of a live machine: a sample of the host clock becomes a
   * logged event that moves guest time forward (and, the first time, fixes the real-time clock).
   * (A replay never samples: the log holds the samples.)
   */
  sampleHostClock(): void {
    if (this.clockMode !== 'host') return;
    const pendingEvents = this.core.pendingEvents;
    if (this.realtimeAtBootNs === undefined) {
      const realtime =
        Math.floor((this.core.options.hostClock as HostClock).realtimeNs()) - this.hostMonotonicNow();
      pendingEvents.push({
        device: MACHINE_LOG_NAME,
        event: { type: 'realtime-at-boot', data: realtime },
      });
    }
    const sample = this.hostMonotonicNow();
    const ahead = sample - this.monotonicNs();
    // Small steps are not worth an entry, unless a timer falls due in them: it must fire at a guest
    // time that has reached its deadline.
    const timerDue = (this.earliestTimerDeadlineNs() ?? Infinity) <= sample;
    if (ahead >= HOST_CLOCK_SAMPLE_NS_MIN || (ahead > 0 && timerDue)) {
      pendingEvents.push({ device: MACHINE_LOG_NAME, event: { type: 'clock-sample', data: sample } });
      this.sampledNs = sample;
    }
  }

  private hostMonotonicNow(): number {
    return Math.max(
      0,
      Math.floor((this.core.options.hostClock as HostClock).monotonicNs() - this.hostMonotonicBaseNs),
    );
  }

  /**
   * The host clock here has its own origin (a machine gone live, or restored from a snapshot):
   * guest time goes on from where it was. Without a host clock, nothing changes.
   */
  rebaseHostClock(): void {
    const hostClock = this.core.options.hostClock;
    if (hostClock) this.hostMonotonicBaseNs = hostClock.monotonicNs() - this.monotonicNs();
  }

  /**
   * Guest time as it will be once the pending events are applied: timers fire by it, so a timer
   * event always finds guest time at or past its deadline.
   */
  private currentTimeForTimers(): number {
    return Math.max(this.monotonicNs(), this.sampledNs);
  }

  /**
   * How long, in host time, until a deadline: what the driver may sleep while the hart idles. With
   * the host clock, guest time catches up at the next sample. (Asked of a live machine only: a
   * replay fires no timer.)
   */
  hostDelayToTimerNs(deadlineNs: number): number {
    const now =
      this.clockMode === 'host' ? Math.max(this.hostMonotonicNow(), this.monotonicNs()) : this.monotonicNs();
    return Math.max(0, deadlineNs - now);
  }

  /**
   * Steps until guest time reaches `deadlineNs` by the steps alone (at least 1): a run bounded by
   * it stops where the deadline falls.
   */
  stepsUntil(deadlineNs: number): number {
    const nsPerStep =
      this.clockMode === 'icount' ? ICOUNT_CLOCK_NS_PER_STEP : HOST_CLOCK_INTERPOLATION_NS_PER_STEP;
    const guestDelay = Math.max(0, deadlineNs - this.monotonicNs());
    return Math.max(1, Math.ceil(guestDelay / nsPerStep));
  }

  /** Deterministic clock, idle hart: queues the (logged) event that skips `delayNs` of guest time. */
  queueIdleSkip(delayNs: number): void {
    if (delayNs > 0)
      this.core.pendingEvents.push({
        device: MACHINE_LOG_NAME,
        event: { type: 'clock-advance', data: delayNs },
      });
  }

  /** Applies one of the machine's own (guest-time) events, live or from a log. */
  applyMachineEvent(event: DeviceEventPayload): void {
    const value = event.data;
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    if (event.type === 'clock-advance' && value >= 0) this.idleSkipNs += value;
    if (event.type === 'clock-sample') {
      // Never backwards: guest time is monotonic whatever a (hostile) log says.
      this.clockBaseNs = Math.max(value, this.monotonicNs());
      this.clockBaseIcount = this.cpu.icount;
    }
    if (event.type === 'realtime-at-boot') this.realtimeAtBootNs = value;
  }

  // ---- timers ----

  /** True when any device timer is armed. */
  get hasTimers(): boolean {
    return this.timers.size > 0;
  }

  earliestTimerDeadlineNs(): number | undefined {
    let earliest: number | undefined;
    for (const timer of this.timers.values()) {
      if (earliest === undefined || timer.deadlineNs < earliest) earliest = timer.deadlineNs;
    }
    return earliest;
  }

  /**
   * Arms (or re-arms) a device timer; false when the deadline is no number of nanoseconds. Timers
   * are kept on a replay too (never fired there: the log has their events), so a backup that goes
   * live holds the timers its devices armed.
   */
  setTimer(device: string, key: string, deadlineNs: number, event: DeviceEventPayload): boolean {
    // A deadline that is not a number of nanoseconds could never fire, or would fire forever.
    if (!Number.isFinite(deadlineNs)) return false;
    this.timers.set(`${device}\u0000${key}`, { device, deadlineNs: Math.max(0, deadlineNs), event });
    return true;
  }

  cancelTimer(device: string, key: string): void {
    this.timers.delete(`${device}\u0000${key}`);
  }

  /** A board reset: no device timer survives it. */
  clearTimers(): void {
    this.timers.clear();
  }

  /** Live: every timer whose deadline guest time has reached becomes a pending event. */
  fireDueTimers(): void {
    if (this.timers.size === 0) return;
    const now = this.currentTimeForTimers();
    for (const [key, timer] of this.timers) {
      if (timer.deadlineNs <= now) {
        this.timers.delete(key);
        this.core.pendingEvents.push({ device: timer.device, event: timer.event });
      }
    }
  }

  /** Replay: the logged event of a timer fired on the recording side; that timer is gone. */
  forgetFiredTimer(device: string, event: DeviceEventPayload): void {
    for (const [key, timer] of this.timers) {
      if (
        timer.device === device &&
        timer.event.type === event.type &&
        plainValuesEqual(timer.event.data ?? null, event.data ?? null)
      ) {
        this.timers.delete(key);
        return;
      }
    }
  }

  // ---- state ----

  /**
   * Guest time's part of the machine's state section; the armed timers only `withTimers` (they are
   * host-side scheduling, not guest state, for a state hash).
   */
  saveState(withTimers: boolean): GuestTimeState {
    const timers = [...(withTimers ? this.timers.entries() : [])]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, timer]) => ({
        key,
        device: timer.device,
        deadlineNs: timer.deadlineNs,
        event: timer.event,
      }));
    return {
      idleSkipNs: this.idleSkipNs,
      clockBaseNs: this.clockBaseNs,
      clockBaseIcount: this.clockBaseIcount,
      realtimeAtBootNs: this.realtimeAtBootNs ?? null,
      timers,
    };
  }

  /** Restores what {@link saveState} gave (checked by the caller); the CPU is restored already. */
  restoreState(state: {
    readonly idleSkipNs: number;
    readonly clockBaseNs: number;
    readonly clockBaseIcount: number;
    readonly realtimeAtBootNs: unknown;
    readonly timers: GuestTimeState['timers'];
  }): void {
    this.idleSkipNs = state.idleSkipNs;
    this.clockBaseNs = state.clockBaseNs;
    this.clockBaseIcount = state.clockBaseIcount;
    this.realtimeAtBootNs = typeof state.realtimeAtBootNs === 'number' ? state.realtimeAtBootNs : undefined;
    // The host clock here has another origin: guest time goes on from where the snapshot left it.
    this.rebaseHostClock();
    this.timers.clear();
    for (const timer of state.timers) {
      this.timers.set(timer.key, { device: timer.device, deadlineNs: timer.deadlineNs, event: timer.event });
    }
  }

  /** A restored machine: a sample taken before belongs to no snapshot. */
  forgetSample(): void {
    this.sampledNs = 0;
  }
}
