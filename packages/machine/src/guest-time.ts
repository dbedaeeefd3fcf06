import type { DeviceEventPayload } from '@ftvm/core';
import { plainValuesEqual } from '@ftvm/core';
import type { RiscvCpu } from '@ftvm/cpu-riscv';
import type { HostClock } from './host.js';
import type { MachineCore } from './machine-core.js';
import type { ClockMode } from './machine-types.js';

/**
 * With the host clock, guest time between two logged clock entries advances at a logged rate, in
 * picoseconds per step (an integer, so every host computes the same times). This is the rate before
 * the first estimate and the rate of recordings made before rates were logged: 1 ns per step, a
 * rate faster than any host runs the guest (1000 MIPS).
 */
export const HOST_CLOCK_RATE_PS_PER_STEP_INITIAL = 1000;
/** The rate of {@link HOST_CLOCK_RATE_PS_PER_STEP_INITIAL} in nanoseconds per step. */
export const HOST_CLOCK_INTERPOLATION_NS_PER_STEP = HOST_CLOCK_RATE_PS_PER_STEP_INITIAL / 1000;
/** The bounds of a logged rate: 1 ps per step (1,000,000 MIPS) to 1 µs per step (1 MIPS). */
export const HOST_CLOCK_RATE_PS_PER_STEP_MIN = 1;
export const HOST_CLOCK_RATE_PS_PER_STEP_MAX = 1_000_000;

/** True for a rate a log or a snapshot may carry: an integer within the bounds above. */
export function isHostClockRate(value: unknown): value is number {
  return (
    Number.isSafeInteger(value) &&
    (value as number) >= HOST_CLOCK_RATE_PS_PER_STEP_MIN &&
    (value as number) <= HOST_CLOCK_RATE_PS_PER_STEP_MAX
  );
}
/**
 * A jump of guest time (the hart woke from idle, or the first samples before the rate is known)
 * is logged only when it moves guest time forward by at least this much.
 */
export const HOST_CLOCK_SAMPLE_NS_MIN = 10_000;
/**
 * While the hart runs, guest time trails host time by about this much: the margin that absorbs the
 * host's hiccups (a collection, a compile) without a change of course.
 */
export const HOST_CLOCK_LAG_TARGET_NS = 300_000;
/**
 * While the hart runs, a lag off its target is worked off over about this much host time, by
 * running guest time at up to twice (or down to half) the guest's measured speed: never a jump.
 */
export const HOST_CLOCK_CORRECTION_WINDOW_NS = 5_000_000;
/**
 * A lag beyond this (the host stalled: a debugger, a suspended process) is closed in one jump, as
 * after an idle period: catching up gently would take longer than the stall itself.
 */
export const HOST_CLOCK_RESYNC_LAG_NS = 50_000_000;
/**
 * A run between two samples is cut where guest time would pass the host time of the first, so
 * guest time never runs ahead of host time (by more than this many steps' worth).
 */
export const HOST_CLOCK_ROUND_STEPS_MIN = 1024;
/**
 * The slowest rate guest time follows the guest at: 10 MIPS. A guest slower than that (code not
 * yet compiled, a debugger) falls behind and catches up in jumps.
 */
const TRACKING_RATE_PS_PER_STEP_MAX = 100_000;
/** Shorter runs between two samples say too little about the guest's speed to count. */
const SPEED_MEASUREMENT_STEPS_MIN = 16_384;
/** The guest's speed is its average over about this much recent host time, hiccups included… */
const SPEED_AVERAGE_WINDOW_NS = 10_000_000;
/** …but a run counts for at most this many times the average: beyond, it is a stall. */
const STALL_FACTOR = 4;
/** The lag's band: inside it guest time runs at the guest's speed, outside it steers back. */
const LAG_BAND_LOW_NS = HOST_CLOCK_LAG_TARGET_NS / 3;
const LAG_BAND_HIGH_NS = 3 * HOST_CLOCK_LAG_TARGET_NS;
/** A logged rate this far (as a fraction) from the one wanted is replaced… */
const RATE_DRIFT_MAX = 0.03;
/** …but not more often than this… */
const RATE_CHANGE_INTERVAL_NS = 2_000_000;
/** …or this, when guest time is about to catch up with host time. */
const RATE_CHANGE_INTERVAL_CATCHING_UP_NS = 200_000;

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
  /** The logged rate, picoseconds per step. */
  readonly clockRatePsPerStep: number;
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
  /** Host clock mode: guest time per step since `clockBaseIcount`, set by the last logged entry. */
  private clockRatePsPerStep = HOST_CLOCK_RATE_PS_PER_STEP_INITIAL;
  /**
   * Host clock mode, live: the guest's measured speed as decaying sums of host time and steps, and
   * where the current measurement runs from; the last sample and the last change of rate.
   * Host-side only: what they decide reaches guest time through the log.
   */
  private speedHostNs = 0;
  private speedSteps = 0;
  private speedFromHostNs: number | undefined;
  private speedFromIcount = 0;
  /** The speed of the latest measurement alone: it says first that the guest sped up. */
  private latestSpeedPsPerStep: number | undefined;
  /** Host time at the last sample: guest time's ceiling until the next. */
  private lastSampleNs: number | undefined;
  private lastRateChangeNs = Number.NEGATIVE_INFINITY;
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
    return this.hostModeTimeAt(this.cpu.icount);
  }

  /** Host clock mode: guest time at `icount` (at or past the last logged entry), integer math only. */
  private hostModeTimeAt(icount: number): number {
    return this.clockBaseNs + Math.floor(((icount - this.clockBaseIcount) * this.clockRatePsPerStep) / 1000);
  }

  realtimeNs(): number {
    const atBoot =
      this.clockMode === 'icount'
        ? (this.core.options.realtimeBaseNs ?? DEFAULT_REALTIME_BASE_NS)
        : (this.realtimeAtBootNs ?? 0);
    return atBoot + this.monotonicNs();
  }

  /**
   * Host clock mode, at a step boundary of a live machine: compares guest time with the host clock
   * and, when it must, queues a logged `clock-track` event (guest time here, rate from here) that
   * keeps guest time smooth and just behind host time (the first time, it also fixes the real-time
   * clock). `afterIdle`: the hart has been idle since the last call, so host time went on without
   * it. (A replay never samples: the log holds the entries.)
   *
   * While the hart runs, guest time never jumps: an entry only changes its rate, to the guest's
   * measured speed corrected towards {@link HOST_CLOCK_LAG_TARGET_NS} behind host time. It jumps
   * (forward, to host time) only after the hart idled, before the speed is first measured, and when
   * the host stalled past {@link HOST_CLOCK_RESYNC_LAG_NS}.
   */
  sampleHostClock(afterIdle = false): void {
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
    this.lastSampleNs = sample;
    const now = this.monotonicNs();
    const lag = sample - now;
    const stalled = lag > HOST_CLOCK_RESYNC_LAG_NS;
    // A stall says nothing about the guest's speed: measure afresh after it.
    this.measureSpeed(sample, afterIdle || stalled);
    const speed = this.speedPsPerStep;
    if (afterIdle || speed === undefined || stalled) {
      // Guest time resumes at the lag it keeps while running, or at the deadline of a timer due
      // by then (it fires there). Small steps are not worth an entry, unless a timer falls due.
      // (Resuming at host time itself would leave no room to run: every round until the lag
      // is rebuilt would stop after the minimum, about 20 rounds per kv request.)
      const deadline = this.earliestTimerDeadlineNs() ?? Infinity;
      const behind = sample - HOST_CLOCK_LAG_TARGET_NS;
      const resumeAt =
        speed === undefined ? sample : deadline <= sample ? Math.max(behind, deadline) : behind;
      const step = resumeAt - now;
      if (step >= HOST_CLOCK_SAMPLE_NS_MIN || (step > 0 && deadline <= sample)) {
        const rate =
          speed === undefined
            ? this.clockRatePsPerStep
            : this.trackingRate(speed, resumeAt === sample ? 0 : HOST_CLOCK_LAG_TARGET_NS);
        this.queueTrack(resumeAt, rate);
        this.lastRateChangeNs = sample;
      }
      return;
    }
    // Inside the band, run at the guest's speed, so a steady guest costs the log nothing; outside,
    // steer back towards the target. About to catch up with host time, slow down at once (the
    // guest may have sped up: the latest measurement says so before the average does).
    const catchingUp = lag < LAG_BAND_LOW_NS;
    const outOfBand = catchingUp || lag > LAG_BAND_HIGH_NS;
    const basis = catchingUp ? Math.min(speed, this.latestSpeedPsPerStep ?? speed) : speed;
    const rate = this.trackingRate(basis, outOfBand ? lag : HOST_CLOCK_LAG_TARGET_NS);
    const drift = Math.abs(rate - this.clockRatePsPerStep) / this.clockRatePsPerStep;
    const due =
      sample - this.lastRateChangeNs >=
      (catchingUp ? RATE_CHANGE_INTERVAL_CATCHING_UP_NS : RATE_CHANGE_INTERVAL_NS);
    if (drift > RATE_DRIFT_MAX && due) {
      this.queueTrack(now, rate);
      this.lastRateChangeNs = sample;
    }
  }

  /** The guest's average speed in host picoseconds per step; undefined until first measured. */
  private get speedPsPerStep(): number | undefined {
    return this.speedSteps > 0 ? (this.speedHostNs * 1000) / this.speedSteps : undefined;
  }

  /** The rate that works `lag` off towards its target over the correction window. */
  private trackingRate(speedPsPerStep: number, lag: number): number {
    const correction = (lag - HOST_CLOCK_LAG_TARGET_NS) / HOST_CLOCK_CORRECTION_WINDOW_NS;
    const rate = Math.round(speedPsPerStep * (1 + Math.min(1, Math.max(-0.5, correction))));
    return Math.min(TRACKING_RATE_PS_PER_STEP_MAX, Math.max(HOST_CLOCK_RATE_PS_PER_STEP_MIN, rate));
  }

  private queueTrack(baseNs: number, ratePsPerStep: number): void {
    this.core.pendingEvents.push({
      device: MACHINE_LOG_NAME,
      event: { type: 'clock-track', data: [baseNs, ratePsPerStep] },
    });
    this.sampledNs = Math.max(this.sampledNs, baseNs);
  }

  /**
   * Folds the host time the guest took since the last measurement into its average speed, or
   * (`restart`) starts measuring from here.
   */
  private measureSpeed(sample: number, restart: boolean): void {
    const icount = this.cpu.icount;
    if (restart || this.speedFromHostNs === undefined) {
      this.speedFromHostNs = sample;
      this.speedFromIcount = icount;
      return;
    }
    const steps = icount - this.speedFromIcount;
    if (steps < SPEED_MEASUREMENT_STEPS_MIN) return;
    const hostNs = sample - this.speedFromHostNs;
    this.speedFromHostNs = sample;
    this.speedFromIcount = icount;
    // A run far slower than the average is a stall: what it took beyond a few times the average
    // is lag to work off, not speed. Older measurements fade with the host time since.
    const counted =
      this.speedSteps > 0
        ? Math.min(hostNs, (STALL_FACTOR * steps * this.speedHostNs) / this.speedSteps)
        : hostNs;
    const keep = Math.exp(-counted / SPEED_AVERAGE_WINDOW_NS);
    this.speedHostNs = this.speedHostNs * keep + counted;
    this.speedSteps = this.speedSteps * keep + steps;
    this.latestSpeedPsPerStep = (hostNs * 1000) / steps;
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
    // Measured on another host, or before a pause: measure afresh.
    this.speedFromHostNs = undefined;
    this.lastSampleNs = undefined;
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
    const guestDelay = Math.max(0, deadlineNs - this.monotonicNs());
    if (this.clockMode === 'icount') return Math.max(1, Math.ceil(guestDelay / ICOUNT_CLOCK_NS_PER_STEP));
    const icount = this.cpu.icount;
    let steps = Math.max(1, Math.ceil((guestDelay * 1000) / this.clockRatePsPerStep));
    // The rate's integer rounding can leave the estimate a step short.
    while (steps < Number.MAX_SAFE_INTEGER / 2 && this.hostModeTimeAt(icount + steps) < deadlineNs) steps++;
    return steps;
  }

  /**
   * Host clock mode, live: steps the next run may take before guest time passes the host time of
   * the last sample (at least {@link HOST_CLOCK_ROUND_STEPS_MIN}), so it never runs ahead of the
   * host whatever the guest's speed does; undefined when nothing bounds it.
   */
  stepsBeforeHostTime(): number | undefined {
    // Before the guest's speed is known, guest time jumps to host time at samples anyway.
    if (this.clockMode !== 'host' || this.lastSampleNs === undefined || this.speedPsPerStep === undefined)
      return undefined;
    const guestDelay = this.lastSampleNs - this.monotonicNs();
    const steps = Math.floor((guestDelay * 1000) / this.clockRatePsPerStep);
    return Math.max(HOST_CLOCK_ROUND_STEPS_MIN, steps);
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
    if (event.type === 'clock-track') {
      this.applyClockTrack(event.data);
      return;
    }
    const value = event.data;
    if (typeof value !== 'number' || !Number.isFinite(value)) return;
    if (event.type === 'clock-advance' && value >= 0) this.idleSkipNs += value;
    if (event.type === 'clock-sample') this.rebaseGuestTime(value);
    if (event.type === 'realtime-at-boot') this.realtimeAtBootNs = value;
  }

  /** A `clock-track` entry: guest time from here (never backwards) and its rate per step. */
  private applyClockTrack(data: unknown): void {
    if (!Array.isArray(data) || data.length !== 2) return;
    const [baseNs, rate] = data as unknown[];
    if (typeof baseNs !== 'number' || !Number.isFinite(baseNs) || !isHostClockRate(rate)) return;
    this.rebaseGuestTime(baseNs);
    this.clockRatePsPerStep = rate;
  }

  /** Guest time is `baseNs` from this step on, never backwards whatever a (hostile) log says. */
  private rebaseGuestTime(baseNs: number): void {
    this.clockBaseNs = Math.max(baseNs, this.monotonicNs());
    this.clockBaseIcount = this.cpu.icount;
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
      clockRatePsPerStep: this.clockRatePsPerStep,
      realtimeAtBootNs: this.realtimeAtBootNs ?? null,
      timers,
    };
  }

  /** Restores what {@link saveState} gave (checked by the caller); the CPU is restored already. */
  restoreState(state: {
    readonly idleSkipNs: number;
    readonly clockBaseNs: number;
    readonly clockBaseIcount: number;
    readonly clockRatePsPerStep?: number;
    readonly realtimeAtBootNs: unknown;
    readonly timers: GuestTimeState['timers'];
  }): void {
    this.idleSkipNs = state.idleSkipNs;
    this.clockBaseNs = state.clockBaseNs;
    this.clockBaseIcount = state.clockBaseIcount;
    this.clockRatePsPerStep = state.clockRatePsPerStep ?? HOST_CLOCK_RATE_PS_PER_STEP_INITIAL;
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
    this.lastSampleNs = undefined;
  }
}
