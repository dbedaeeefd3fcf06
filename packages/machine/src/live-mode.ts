import type { DeviceEventPayload, LogEntry, LogSink, PlainValue } from '@ftvm/core';
import { isInStepEntry } from '@ftvm/core';
import type { RiscvCpu } from '@ftvm/cpu-riscv';
import {
  type ExecutionMode,
  NOTHING_TO_RELEASE,
  RELEASED,
  RUN_CHUNK_STEPS,
  RunChunkSizer,
} from './execution-mode.js';
import type { GuestTime } from './guest-time.js';
import type { MachineCore, PendingEvent } from './machine-core.js';
import type { MachineStateKeeper } from './machine-state.js';
import type { SliceEnd, SliceOutcome, SliceTimeLimit } from './machine-types.js';

/** An output of a recording machine waiting for a log entry that covers it. */
interface UncoveredOutput {
  readonly device: string;
  readonly kind: string;
  readonly data: Uint8Array;
  readonly icount: number;
  readonly resolve: (() => void) | undefined;
}

/** A slice hands control back to the host after this many rounds that executed no step. */
const ROUNDS_WITHOUT_STEPS_MAX = 1000;

/**
 * Held outputs of one kind end the CPU's run at most once per this many steps (see `output`): of
 * a burst of console bytes the first is covered at once, the others when the run ends, not each
 * with a run and a log message of its own.
 */
const PROMPT_COVER_STEPS_MIN = 16_384;

/**
 * The live modes: `standalone` applies host inputs at the next step boundary and delivers outputs
 * at once; `record` does the same and appends every event and non-deterministic read to its log
 * (with a state-hash checkpoint every `checkpointIntervalSteps`, and outputs with `logOutputs`),
 * and holds each output until a log entry covers it (the output rule, see `MachineOutput`).
 */
export class LiveMode implements ExecutionMode {
  /** A live machine follows no log: nothing holds it up. */
  readonly deviceWait = undefined;

  readonly mode: 'standalone' | 'record';
  readonly canGoLive = false;
  private readonly cpu: RiscvCpu;
  private readonly time: GuestTime;
  /** How many steps a run of a time-limited slice takes. */
  private readonly chunks = new RunChunkSizer();
  /** Record mode: where log entries go; undefined on a standalone machine. */
  private readonly sink: LogSink | undefined;
  /** The sequence number of the next appended entry. */
  private logLength: number;
  /** Record mode: outputs waiting for a covering log entry, oldest first. */
  private uncovered: UncoveredOutput[] = [];
  /** True while the CPU executes (MMIO handlers run then). */
  private insideRun = false;
  /**
   * The hart waits for an interrupt and nothing has come since: a slice started now would only
   * sample the host clock (a log entry) and find it waiting again. An FT primary's loop, woken by
   * each acknowledgement, would otherwise turn every round trip into more log.
   */
  private hartIdle = false;
  private nextCheckpointIcount: number;
  /** Per kind of output, the step of the last one that ended a run to be covered at once. */
  private readonly promptCoverIcounts = new Map<string, number>();
  /**
   * True while devices run `onGoLive`: what they output then (virtio-net's announcement) is made
   * at the go-live point itself, before the first step of the new log, so every entry of that log
   * covers it. Left to wait for a covering entry past its icount, it would wait for as long as the
   * guest sleeps: and the network would not find the new primary meanwhile.
   */
  goingLive = false;

  /** `sink`: the log to record to, or undefined for a standalone machine. */
  constructor(
    private readonly core: MachineCore,
    private readonly state: MachineStateKeeper,
    sink: LogSink | undefined,
    firstSeq: number,
  ) {
    this.mode = sink === undefined ? 'standalone' : 'record';
    this.cpu = core.cpu;
    this.time = core.time;
    this.sink = sink;
    this.logLength = firstSeq;
    this.nextCheckpointIcount = this.firstCheckpointIcount();
  }

  get nextSeq(): number {
    return this.logLength;
  }

  /** Record mode: the icount of the first checkpoint after the current point (Infinity: none). */
  private firstCheckpointIcount(): number {
    const interval = this.core.options.checkpointIntervalSteps ?? 0;
    return this.sink !== undefined && interval > 0
      ? (Math.floor(this.cpu.icount / interval) + 1) * interval
      : Infinity;
  }

  // ---- the doors ----

  inject(device: string, event: DeviceEventPayload): void {
    if (this.core.stopped) return;
    this.core.pendingEvents.push({ device, event });
    this.core.wakeListener?.();
  }

  injectAt(device: string, key: string, deadlineNs: number, event: DeviceEventPayload): void {
    if (!this.time.setTimer(device, key, deadlineNs, event)) return;
    // Armed from inside an instruction: end this run so the next budget stops at the deadline.
    if (this.insideRun) this.cpu.requestStop();
    this.core.wakeListener?.();
  }

  nondet<T extends PlainValue>(device: string, key: string, read: () => T): T {
    if (this.sink === undefined) return read();
    const icount = this.cpu.icount;
    const value = read();
    this.append({ kind: 'nondet', seq: this.logLength, icount, device, key, value });
    return value;
  }

  output(device: string, kind: string, data: Uint8Array): Promise<void> {
    const icount = this.cpu.icount;
    if (this.sink !== undefined && this.goingLive) {
      let resolve: () => void = () => {};
      const released = new Promise<void>((settle) => {
        resolve = settle;
      });
      this.core.options.onOutput?.({
        device,
        kind,
        data: data.slice(),
        icount,
        coveringSeq: this.logLength - 1,
        release: resolve,
      });
      if (this.core.options.holdOutputs !== true) resolve();
      return released;
    }
    if (this.sink !== undefined) {
      if (this.core.options.logOutputs) {
        this.append({
          kind: 'output',
          seq: this.logLength,
          icount: this.cpu.icount,
          device,
          stream: kind,
          data: data.slice(),
        });
      }
      // Held until a log entry covers it (and, with holdOutputs, until its owner releases it).
      let resolve: (() => void) | undefined;
      const released = new Promise<void>((settle) => {
        resolve = settle;
      });
      // A copy: the device may reuse its buffer before the output is covered and handed on.
      this.uncovered.push({ device, kind, data: data.slice(), icount, resolve });
      // A held output waits for its log to reach the backup, and its log goes once it is covered:
      // the run ends after this instruction and a progress mark covers it now, not when the run
      // ends (up to RUN_CHUNK_STEPS later; the next request of a busy server is served first).
      // Counted per kind: a kv reply's frame must not wait because its disk write just stopped.
      if (this.insideRun && this.core.options.holdOutputs === true) {
        const last = this.promptCoverIcounts.get(kind);
        // (A restored state may have put icount behind the last one.)
        if (last === undefined || icount < last || icount - last >= PROMPT_COVER_STEPS_MIN) {
          this.promptCoverIcounts.set(kind, icount);
          this.cpu.requestStop();
        }
      }
      return released;
    }
    this.core.options.onOutput?.({
      device,
      kind,
      data,
      icount,
      coveringSeq: -1,
      release: NOTHING_TO_RELEASE,
    });
    return RELEASED;
  }

  // ---- output covering and the log ----

  /** Record mode: hands on every held output that `covering` (just appended) covers. */
  private coverOutputs(covering: LogEntry): void {
    let covered = 0;
    while (
      covered < this.uncovered.length &&
      (this.uncovered[covered] as UncoveredOutput).icount < covering.icount
    )
      covered++;
    if (covered === 0) return;
    const outputs = this.uncovered.splice(0, covered);
    const hold = this.core.options.holdOutputs === true;
    for (const output of outputs) {
      const release = output.resolve ?? NOTHING_TO_RELEASE;
      this.core.options.onOutput?.({
        device: output.device,
        kind: output.kind,
        data: output.data,
        icount: output.icount,
        coveringSeq: covering.seq,
        release,
      });
      if (!hold) release();
    }
  }

  /**
   * Record mode, between runs: a progress mark here covers the outputs of the steps executed so
   * far, so they need not wait for the slice to end.
   */
  private coverPendingOutputs(): void {
    if (this.sink === undefined || this.uncovered.length === 0) return;
    if ((this.uncovered[0] as UncoveredOutput).icount >= this.cpu.icount) return;
    this.append({ kind: 'progress', seq: this.logLength, icount: this.cpu.icount });
  }

  private append(entry: LogEntry): void {
    this.logLength++;
    const sink = this.sink as LogSink;
    sink.append(entry);
    if (this.uncovered.length > 0 && !isInStepEntry(entry)) this.coverOutputs(entry);
    // A full sink stops the guest at the next step boundary (the primary waits for its backup).
    if (sink.full === true && this.insideRun) this.cpu.requestStop();
  }

  /** Record mode: true while the log sink cannot take more. */
  private get logFull(): boolean {
    return this.sink !== undefined && this.sink.full === true;
  }

  // ---- running ----

  runSlice(maxSteps: number, limit: SliceTimeLimit | undefined): SliceOutcome {
    const core = this.core;
    const time = this.time;
    let steps = 0;
    let roundsWithoutSteps = 0;
    if (this.hartIdle && core.pendingEvents.length === 0 && !this.timerDueByHostTime()) {
      return { steps: 0, end: 'waiting' };
    }
    // Host time went on while the hart idled: guest time may jump to it at the first sample.
    let afterIdle = this.hartIdle;
    this.hartIdle = false;
    while (steps < maxSteps) {
      // Devices that keep re-arming timers around an idle hart must not hold the host forever.
      if (roundsWithoutSteps > ROUNDS_WITHOUT_STEPS_MAX) return this.endLiveSlice(steps, 'budget');
      if (this.logFull) return this.endLiveSlice(steps, 'log-full');
      // Every round compares guest time with the host clock; it costs log only when guest time
      // must change course.
      time.sampleHostClock(afterIdle);
      afterIdle = false;
      time.fireDueTimers();
      this.applyPendingInputs();
      if (core.stopped) break;
      let budget = maxSteps - steps;
      budget = Math.min(budget, this.nextCheckpointIcount - this.cpu.icount);
      budget = Math.min(budget, limit === undefined ? RUN_CHUNK_STEPS : this.chunks.steps);
      // Guest time also advances with the steps themselves: stop where it reaches the earliest
      // timer, so the timer fires there and the guest never reads a time past a deadline whose
      // interrupt has not been raised.
      const deadline = time.earliestTimerDeadlineNs();
      if (deadline !== undefined) budget = Math.min(budget, time.stepsUntil(deadline));
      // Nor past host time: the next sample comes first.
      const hostBound = time.stepsBeforeHostTime();
      if (hostBound !== undefined) budget = Math.min(budget, hostBound);
      this.insideRun = true;
      const runStartNs = limit?.nowNs() ?? 0;
      const outcome = this.cpu.run(budget);
      this.insideRun = false;
      if (limit !== undefined) this.chunks.ran(outcome.steps, limit.nowNs() - runStartNs);
      steps += outcome.steps;
      roundsWithoutSteps = outcome.steps === 0 ? roundsWithoutSteps + 1 : 0;
      core.afterRun(outcome.reason);
      if (this.cpu.icount >= this.nextCheckpointIcount) {
        this.append({
          kind: 'checkpoint',
          seq: this.logLength,
          icount: this.cpu.icount,
          stateHash: this.state.stateHash(),
        });
        this.nextCheckpointIcount += core.options.checkpointIntervalSteps ?? 0;
      }
      if (core.stopped) break;
      if (outcome.reason === 'wfi') {
        if (core.pendingEvents.length > 0) continue;
        if (time.clockMode === 'icount' && time.hasTimers) {
          this.skipIdleTimeToNextTimer();
          continue;
        }
        time.fireDueTimers();
        if (core.pendingEvents.length > 0) continue;
        this.hartIdle = true;
        return this.endLiveSlice(steps, 'waiting');
      }
      this.coverPendingOutputs();
      if (limit !== undefined && limit.nowNs() >= limit.deadlineNs) return this.endLiveSlice(steps, 'budget');
    }
    if (core.stopped && this.sink !== undefined) {
      this.append({ kind: 'stop', seq: this.logLength, icount: this.cpu.icount, exitStatus: core.exit ?? 0 });
    }
    return this.endLiveSlice(steps, core.stopped ? 'stopped' : 'budget');
  }

  /** True when the earliest device timer is due by host time (the clock sample would fire it). */
  private timerDueByHostTime(): boolean {
    const earliest = this.time.earliestTimerDeadlineNs();
    return earliest !== undefined && this.time.hostDelayToTimerNs(earliest) <= 0;
  }

  /** Every output of the slice leaves covered: a progress mark covers those still waiting. */
  private endLiveSlice(steps: number, end: SliceEnd): SliceOutcome {
    this.coverPendingOutputs();
    return { steps, end };
  }

  /** Deterministic clock, idle hart: jump guest time to the next timer (logged as an event). */
  private skipIdleTimeToNextTimer(): void {
    this.time.queueIdleSkip(this.nextTimerDelayNs() ?? 0);
    this.applyPendingInputs();
    this.time.fireDueTimers();
  }

  nextTimerDelayNs(): number | undefined {
    const earliest = this.time.earliestTimerDeadlineNs();
    return earliest === undefined ? undefined : this.time.hostDelayToTimerNs(earliest);
  }

  /** Applies the pending events in order at this step boundary (record mode: logging each first). */
  applyPendingInputs(): void {
    const pendingEvents = this.core.pendingEvents;
    while (pendingEvents.length > 0) {
      const { device, event } = pendingEvents.shift() as PendingEvent;
      if (this.sink !== undefined) {
        this.append({ kind: 'event', seq: this.logLength, icount: this.cpu.icount, device, event });
      }
      this.core.applyEvent(device, event);
    }
  }

  endRecording(): void {
    if (this.sink === undefined || this.core.stopped) return;
    this.applyPendingInputs();
    this.append({ kind: 'progress', seq: this.logLength, icount: this.cpu.icount });
  }

  restoreLogPosition(nextSeq: number): void {
    this.logLength = nextSeq;
  }

  afterRestore(): void {
    this.nextCheckpointIcount = this.firstCheckpointIcount();
    this.hartIdle = false;
  }
}
