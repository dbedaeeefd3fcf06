import type { DeviceEventPayload, LogEntry, PlainValue } from '@ftvm/core';
import { DivergenceError, isInStepEntry, isPlainValue, plainValuesEqual } from '@ftvm/core';
import type { RiscvCpu } from '@ftvm/cpu-riscv';
import { describeBytes, describeEntry, hex } from './describe-entry.js';
import {
  type ExecutionMode,
  NOTHING_TO_RELEASE,
  RELEASED,
  RUN_CHUNK_STEPS,
  RunChunkSizer,
} from './execution-mode.js';
import { MACHINE_LOG_NAME } from './guest-time.js';
import type { MachineCore } from './machine-core.js';
import type { MachineStateKeeper } from './machine-state.js';
import type { SliceOutcome, SliceTimeLimit } from './machine-types.js';
import type { ReplayCursor } from './replay-cursor.js';

/**
 * The replay mode: host inputs are ignored; events come from the log at their icount, reads are
 * answered from it and checked against their device and key; outputs are checked against the log
 * (with `logOutputs`) and dropped, or handed on (with `replayOutputs`). A mismatch, a missing or
 * an extra entry, a different state hash or output stops the replay with a `DivergenceError`.
 */
export class ReplayMode implements ExecutionMode {
  readonly mode = 'replay';
  private readonly cpu: RiscvCpu;
  /** The log being followed. */
  private readonly cursor: ReplayCursor;
  /** How many steps a run of a time-limited slice takes. */
  private readonly chunks = new RunChunkSizer();
  /** The log's power-off entry was met where the guest powered off. */
  private stopMatched = false;
  /** The whole log was applied and the guest is still running (it can go live). */
  private logEnded = false;

  constructor(
    private readonly core: MachineCore,
    private readonly state: MachineStateKeeper,
    cursor: ReplayCursor,
  ) {
    this.cpu = core.cpu;
    this.cursor = cursor;
  }

  get nextSeq(): number {
    return this.cursor.nextSeq;
  }

  get canGoLive(): boolean {
    return this.logEnded;
  }

  // ---- the doors ----

  inject(_device: string, _event: DeviceEventPayload): void {
    // The log supplies events on a replay.
  }

  /** Timers are kept (see `GuestTime.setTimer`) but never fired here: the log has their events. */
  injectAt(device: string, key: string, deadlineNs: number, event: DeviceEventPayload): void {
    if (!this.core.time.setTimer(device, key, deadlineNs, event)) return;
    this.core.wakeListener?.();
  }

  nondet<T extends PlainValue>(device: string, key: string, _read: () => T): T {
    const icount = this.cpu.icount;
    const cursor = this.cursor;
    const entry = cursor.peek();
    if (entry === undefined) {
      throw new DivergenceError('extra-entry', icount, 'no further log entry', `a read of ${device}/${key}`);
    }
    if (entry.kind !== 'nondet' || entry.icount !== icount || entry.device !== device || entry.key !== key) {
      if (entry.kind === 'output' && entry.icount <= icount) {
        throw new DivergenceError(
          'output',
          entry.icount,
          describeEntry(entry),
          `a read of ${device}/${key} at icount ${icount}`,
        );
      }
      throw new DivergenceError(
        'nondet-mismatch',
        icount,
        describeEntry(entry),
        `a read of ${device}/${key} at icount ${icount}`,
      );
    }
    cursor.advance();
    return entry.value as T;
  }

  output(device: string, kind: string, data: Uint8Array): Promise<void> {
    const icount = this.cpu.icount;
    const options = this.core.options;
    if (options.logOutputs) this.checkOutput(device, kind, data);
    if (!options.replayOutputs) return RELEASED;
    options.onOutput?.({ device, kind, data, icount, coveringSeq: -1, release: NOTHING_TO_RELEASE });
    return RELEASED;
  }

  /** The output must be the next logged one, byte for byte. */
  private checkOutput(device: string, stream: string, data: Uint8Array): void {
    const icount = this.cpu.icount;
    const cursor = this.cursor;
    const entry = cursor.peek();
    const actual = `${device}/${stream} output ${describeBytes(data)} at icount ${icount}`;
    if (entry?.kind !== 'output') {
      throw new DivergenceError(
        'output',
        icount,
        entry ? describeEntry(entry) : 'no further log entry',
        actual,
      );
    }
    if (
      entry.icount !== icount ||
      entry.device !== device ||
      entry.stream !== stream ||
      !plainValuesEqual(entry.data, data)
    ) {
      throw new DivergenceError('output', icount, describeEntry(entry), actual);
    }
    cursor.advance();
  }

  // ---- running ----

  runSlice(maxSteps: number, limit: SliceTimeLimit | undefined): SliceOutcome {
    const core = this.core;
    const cursor = this.cursor;
    let steps = 0;
    while (steps < maxSteps) {
      // A device still doing host work the next event needs (its own disk read): wait for it.
      if (!this.applyLoggedEntriesAtCurrentPoint()) return { steps, end: 'log-starved' };
      if (core.stopped) return this.endOfReplay(steps);
      const boundary = cursor.nextBoundaryIcount();
      if (boundary === undefined) {
        if (!cursor.ended) return { steps, end: 'log-starved' };
        const leftover = cursor.peek();
        if (leftover) {
          throw new DivergenceError(
            'missing-entry',
            this.cpu.icount,
            describeEntry(leftover),
            'the end of the run',
          );
        }
        core.stopped = true;
        this.logEnded = true;
        return { steps, end: 'stopped' };
      }
      if (boundary <= this.cpu.icount) {
        // Everything at this point was applied, so what stands before the boundary is a read or an
        // output the guest did not make here: running on would never reach it.
        const entry = cursor.peek() as LogEntry;
        throw new DivergenceError(
          entry.kind === 'output' ? 'output' : 'missing-entry',
          this.cpu.icount,
          describeEntry(entry),
          'nothing of the kind by the guest',
        );
      }
      if (limit !== undefined && steps > 0 && limit.nowNs() >= limit.deadlineNs)
        return { steps, end: 'budget' };
      const chunk = limit === undefined ? RUN_CHUNK_STEPS : this.chunks.steps;
      const budget = Math.min(maxSteps - steps, boundary - this.cpu.icount, chunk);
      const runStartNs = limit?.nowNs() ?? 0;
      const outcome = this.cpu.run(budget);
      if (limit !== undefined) this.chunks.ran(outcome.steps, limit.nowNs() - runStartNs);
      steps += outcome.steps;
      core.afterRun(outcome.reason);
      this.checkNoSkippedReads();
      if (outcome.reason === 'wfi' && this.cpu.icount < boundary) {
        throw new DivergenceError(
          'missing-entry',
          this.cpu.icount,
          `execution up to icount ${boundary}`,
          'the guest waiting for an interrupt',
        );
      }
      if (core.stopped) {
        // Checkpoints logged at the power-off point come before the stop entry.
        this.applyLoggedEntriesAtCurrentPoint();
        return this.endOfReplay(steps);
      }
    }
    return { steps, end: 'budget' };
  }

  /** The guest powered off: the log must say so, here, with the same status. */
  private endOfReplay(steps: number): SliceOutcome {
    if (!this.stopMatched) {
      const entry = this.cursor.peek();
      throw new DivergenceError(
        'end',
        this.cpu.icount,
        entry ? describeEntry(entry) : 'the log to go on',
        `power-off with status ${this.core.exit}`,
      );
    }
    return { steps, end: 'stopped' };
  }

  /**
   * A promise that settles when the device that held up the replay (see `Device.whenReadyFor`)
   * is ready; undefined when nothing waits.
   */
  deviceWait: Promise<void> | undefined;

  /**
   * Applies the events, checkpoints and marks logged at exactly the current icount. False when a
   * device is not ready for the next event yet (`deviceWait` says when it will be).
   */
  private applyLoggedEntriesAtCurrentPoint(): boolean {
    const cursor = this.cursor;
    for (let entry = cursor.peek(); entry !== undefined; entry = cursor.peek()) {
      if (entry.icount < this.cpu.icount) {
        throw new DivergenceError(
          'missing-entry',
          this.cpu.icount,
          describeEntry(entry),
          'execution past it',
        );
      }
      if (entry.icount > this.cpu.icount || isInStepEntry(entry)) return true;
      switch (entry.kind) {
        case 'event':
          if (
            typeof entry.device !== 'string' ||
            typeof entry.event?.type !== 'string' ||
            !isPlainValue(entry.event.data ?? null)
          ) {
            throw new DivergenceError(
              'missing-entry',
              entry.icount,
              'a well-formed event',
              describeEntry(entry),
            );
          }
          if (entry.device !== MACHINE_LOG_NAME && !this.core.devicesByName.has(entry.device)) {
            throw new DivergenceError(
              'missing-entry',
              entry.icount,
              `an event for a device of this machine`,
              describeEntry(entry),
            );
          }
          {
            const waiting = this.core.devicesByName.get(entry.device)?.whenReadyFor?.(entry.event);
            if (waiting !== undefined) {
              this.deviceWait = waiting;
              return false;
            }
          }
          this.deviceWait = undefined;
          cursor.advance();
          this.core.time.forgetFiredTimer(entry.device, entry.event);
          this.core.applyEvent(entry.device, entry.event);
          break;
        case 'checkpoint': {
          cursor.advance();
          const actual = this.state.stateHash();
          if (!plainValuesEqual(actual, entry.stateHash)) {
            throw new DivergenceError(
              'state-hash',
              entry.icount,
              hex(entry.stateHash),
              hex(actual),
              `differs in ${this.state.describeStateHashDifference(entry.stateHash, actual)}`,
            );
          }
          break;
        }
        case 'progress':
          cursor.advance();
          break;
        case 'stop':
          if (this.core.stopped && entry.exitStatus === this.core.exit) {
            cursor.advance();
            this.stopMatched = true;
            return true;
          }
          throw new DivergenceError(
            'end',
            entry.icount,
            `power-off with status ${entry.exitStatus}`,
            'the guest running on',
          );
        default:
          throw new DivergenceError(
            'missing-entry',
            this.cpu.icount,
            describeEntry(entry as LogEntry),
            'an entry of a known kind',
          );
      }
    }
    return true;
  }

  private checkNoSkippedReads(): void {
    const entry = this.cursor.peek();
    if (entry && isInStepEntry(entry) && entry.icount < this.cpu.icount) {
      const kind = entry.kind === 'output' ? 'output' : 'missing-entry';
      throw new DivergenceError(kind, entry.icount, describeEntry(entry), 'nothing of the kind by the guest');
    }
  }

  nextTimerDelayNs(): number | undefined {
    // A replay fires no timer: the log brings their events.
    return undefined;
  }

  applyPendingInputs(): void {
    // A replay takes no host input: the log brings the events.
  }

  endRecording(): void {
    // Nothing is recorded on a replay.
  }

  restoreLogPosition(nextSeq: number): void {
    this.cursor.rebase(nextSeq, this.cpu.icount);
  }

  afterRestore(): void {
    this.stopMatched = false;
  }
}
