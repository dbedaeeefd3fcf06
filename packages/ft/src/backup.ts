import type { Arbiter, FtMessage, LogChannel } from '@ftvm/core';
import { DivergenceError, FtvmError } from '@ftvm/core';
import type { HostScheduler, Machine, MachineOptions, MachineOutput } from '@ftvm/machine';
import { sliceTimeLimit, Waiter } from '@ftvm/machine';
import { requestNextEpoch } from './arbiter-request.js';
import { BackupCore, type BackupStatistics } from './backup-core.js';
import { type FtConfig, ftConfig, SLICE_STEPS_MAX, STATE_HASH_PAGES_PER_SLICE } from './config.js';
import type { FtEvent } from './events.js';
import { LiveLog } from './live-log.js';
import { FtPrimary, type FtPrimaryOptions, type FtSabotage } from './primary.js';
import type { TrackedDisk } from './tracked-disk.js';

/** What the driver hands the machine it builds: spread these into the machine's options. */
export type BackupMachineHooks = Required<
  Pick<MachineOptions, 'mode' | 'replayLog' | 'holdOutputs' | 'onOutput'>
>;

export interface FtBackupOptions {
  readonly vmId: string;
  readonly host: string;
  /** The epoch the primary owns now. */
  readonly epoch: number;
  readonly config?: Partial<FtConfig>;
  readonly scheduler: HostScheduler;
  readonly arbiter: Arbiter;
  /** The open channel from the primary. */
  readonly channel: LogChannel;
  /**
   * Builds the backup's machine with these hooks spread into its options: the same configuration
   * as the primary's (RAM, devices; a shared disk's device does no host IO). For a backup that
   * boots with its primary, load the same image; for a clone, load nothing (RAM comes over).
   */
  readonly createMachine: (hooks: BackupMachineHooks) => Machine;
  /** True for a clone of a running primary (pages and state come first). */
  readonly cloning: boolean;
  /** Where outputs go once this backup went live and is the primary. */
  readonly deliver: (output: MachineOutput) => void;
  /** For the primary it becomes: see `FtPrimaryOptions.holdUntilApplied`. */
  readonly holdUntilApplied?: (output: MachineOutput) => boolean;
  /**
   * Called after the backup won the arbiter and replayed its log, just before its devices go live
   * (and reissue in-flight disk writes): the place to fence a shared disk to the new epoch.
   */
  readonly beforeGoLive?: (epoch: number) => void;
  readonly onEvent?: (event: FtEvent) => void;
  /** Passed on to the primary this backup becomes when it goes live (see `FtPrimaryOptions`). */
  readonly sabotage?: FtSabotage;
  /**
   * Disks this host keeps its own copy of (non-shared disks): a clone writes the runs its
   * primary sends into them (they start empty). The primary it becomes copies them to its clones.
   */
  readonly disks?: readonly TrackedDisk[];
}

/** How a backup's run ended. */
export type BackupEnd =
  /** It won the arbiter and went live: run the primary it became. */
  | { readonly end: 'went-live'; readonly primary: FtPrimary }
  /** It lost the arbiter, was told goodbye, or broke off: it emitted nothing. */
  | { readonly end: 'halted'; readonly reason: string }
  /** Its replay disagreed with the primary's log (a bug or corruption), named here. */
  | { readonly end: 'diverged'; readonly error: DivergenceError }
  /** The guest powered off where the primary's log said it did. */
  | { readonly end: 'powered-off'; readonly exitStatus: number }
  | { readonly end: 'stopped' }
  /** `kill()` was called (an injected host failure). */
  | { readonly end: 'killed' };

/**
 * The backup's driver: replays the primary's log as it arrives (never past its last point),
 * acknowledges it, watches for the primary's failure and, when it wins the arbiter, consumes the
 * rest of the log and goes live as an {@link FtPrimary}.
 */
export class FtBackup {
  readonly machine: Machine;
  readonly log: LiveLog;
  readonly #core: BackupCore;
  readonly #options: FtBackupOptions;
  readonly #config: FtConfig;
  /** The run loop's waits: I/O first, no wake-up lost (log arriving, the arbiter). */
  readonly #waiter: Waiter;
  #stopRequested = false;
  #killed = false;
  #halted: string | undefined;
  #goLive: { epoch: number; wonMs: number } | undefined;
  /** The primary said goodbye: replay the log held, then end (the reason, if the guest runs on). */
  #finishing: string | undefined;
  /** A microtask will carry out the effects of the messages received since the last one. */
  #applyQueued = false;

  constructor(options: FtBackupOptions) {
    this.#options = options;
    this.#config = ftConfig(options.config);
    this.#waiter = new Waiter(options.scheduler);
    const nowMs = this.#nowMs();
    this.#core = new BackupCore({
      host: options.host,
      epoch: options.epoch,
      config: this.#config,
      cloning: options.cloning,
      nowMs,
    });
    this.log = new LiveLog();
    this.machine = options.createMachine({
      mode: 'replay',
      replayLog: this.log,
      holdOutputs: true,
      onOutput: () => {},
    });
    options.channel.onMessage((message: FtMessage) => {
      this.#core.messageReceived(message, this.#nowMs());
      // The effects wait until the channel has handed over what it received in one go (a TCP read
      // holding several log messages): one acknowledgement, one socket write, covers them all.
      if (this.#applyQueued) return;
      this.#applyQueued = true;
      queueMicrotask(() => {
        this.#applyQueued = false;
        this.#apply();
      });
    });
    options.channel.onClose(() => {
      this.#core.channelClosed(this.#nowMs());
      this.#apply();
    });
  }

  get state(): BackupStatistics['state'] {
    return this.#core.state;
  }

  statistics(): BackupStatistics {
    return this.#core.statistics();
  }

  stop(): void {
    this.#stopRequested = true;
    this.#wake();
  }

  /**
   * Fail-stop, as when the host dies (fault injection): the run ends at its next step, and from
   * now on nothing is sent, released, applied or asked. The channel is left as it is: the peer
   * notices by the silence, or by the connection dropping if the caller cuts it.
   */
  kill(): void {
    this.#killed = true;
    this.#wake();
  }

  async run(): Promise<BackupEnd> {
    const scheduler = this.#options.scheduler;
    this.log.onAvailable(() => this.#wake());
    try {
      for (;;) {
        this.#core.tick(this.#nowMs());
        this.#apply();
        if (this.#killed) return { end: 'killed' };
        if (this.#halted !== undefined) return { end: 'halted', reason: this.#halted };
        if (this.#stopRequested) {
          this.#core.stop('the backup was stopped', this.#nowMs());
          this.#apply();
          this.#options.channel.close();
          return { end: 'stopped' };
        }
        // Awaited here, so that `finally` below runs once they are over.
        if (this.#goLive) return await this.#takeOver(this.#goLive);
        if (this.#finishing !== undefined) return await this.#finish(this.#finishing);
        if (this.#core.state === 'receiving-state') {
          await this.#sleepMs(this.#config.heartbeatIntervalMs);
          continue;
        }
        let outcome: ReturnType<Machine['runSlice']>;
        try {
          outcome = this.machine.runSlice(
            SLICE_STEPS_MAX,
            sliceTimeLimit(scheduler, this.#config.sliceTimeMsMax),
          );
        } catch (error) {
          if (!DivergenceError.is(error)) throw error;
          return this.#endDiverged(error);
        }
        // Progress is reported no further than this backup's own reads of shared state that are
        // still pending (backup reads): the primary's writes must not overtake them.
        const pendingSince = this.machine.hostWorkPendingSince();
        const deviceWait = this.machine.deviceWait;
        this.#core.sliceDone(
          this.machine.logPosition.appliedSeq,
          pendingSince === undefined
            ? this.machine.cpu.icount
            : Math.min(pendingSince, this.machine.cpu.icount),
          this.#nowMs(),
          outcome.end === 'log-starved' && this.log.pendingEntries === 0 && deviceWait === undefined,
        );
        this.#apply();
        // The first checkpoint's hash of all RAM, built ahead a little per slice (all at once it
        // held a clone of a 64 MiB guest silent past the failure timeout).
        this.machine.prepareStateHash(STATE_HASH_PAGES_PER_SLICE);
        if (outcome.end === 'stopped' && this.machine.exitStatus !== undefined) {
          this.#core.stop('the guest powered off', this.#nowMs());
          this.#apply();
          this.#options.channel.close();
          return { end: 'powered-off', exitStatus: this.machine.exitStatus };
        }
        if (outcome.end === 'log-starved' && deviceWait !== undefined) {
          // A device finishes host work of its own first (a read of the shared disk).
          await this.#waiter.wait(this.#config.heartbeatIntervalMs * 1e6, deviceWait);
        } else if (outcome.end === 'log-starved' || outcome.end === 'waiting') {
          if (this.log.pendingEntries === 0) await this.#sleepMs(this.#config.heartbeatIntervalMs);
        } else {
          await scheduler.yieldToHost();
        }
      }
    } finally {
      this.log.onAvailable(undefined);
      // Whatever ended the run, the channel's later news (its close) must not start anything. A
      // backup that went live keeps its core as it was (its primary has a core of its own).
      if (this.#core.state !== 'halted' && (!this.#goLive || this.#killed))
        this.#core.stop('the backup finished', this.#nowMs());
      this.#core.takeEffects();
    }
  }

  /**
   * The primary said goodbye: replay the log this backup holds to its end. A primary whose guest
   * powered off logged the power-off, so the backup's guest powers off at the same point; one that
   * was stopped leaves the backup where its log ends.
   */
  async #finish(reason: string): Promise<BackupEnd> {
    try {
      if ((await this.#replayToLogEnd(() => this.#killed)) === 'abandoned') return { end: 'killed' };
    } catch (error) {
      if (!DivergenceError.is(error)) throw error;
      return this.#endDiverged(error);
    } finally {
      // A killed host leaves its channel as it is (see kill()).
      if (!this.#killed) this.#options.channel.close();
    }
    if (this.machine.exitStatus !== undefined) {
      return { end: 'powered-off', exitStatus: this.machine.exitStatus };
    }
    this.#emit({ type: 'backup-halted', epoch: this.#core.epoch, reason });
    return { end: 'halted', reason };
  }

  /**
   * The replay disagreed with the log (following it, finishing it, or going live): the core halts,
   * and `#apply` reports it ("diverged: …") and closes the channel.
   */
  #endDiverged(error: DivergenceError): BackupEnd {
    this.#core.diverged(error.message, this.#nowMs());
    this.#apply();
    return { end: 'diverged', error };
  }

  /**
   * Ends the log where it stands and runs the machine through it: to the guest's stop, or to the
   * end of the log (`log-ended`), waiting for a device's own reads a logged completion needs.
   * `abandon()` is asked before each slice, and at least every heartbeat interval while a read is
   * awaited (a killed host's disk IO may never complete). A divergence throws.
   */
  async #replayToLogEnd(abandon: () => boolean): Promise<'stopped' | 'log-ended' | 'abandoned'> {
    this.log.endHere();
    while (!this.machine.isStopped) {
      if (abandon()) return 'abandoned';
      const outcome = this.machine.runSlice(SLICE_STEPS_MAX);
      if (outcome.end !== 'log-starved') continue;
      const deviceWait = this.machine.deviceWait;
      if (deviceWait === undefined) return 'log-ended';
      // A read of its own the next logged completion needs; kill() wakes the wait.
      await this.#waiter.wait(this.#config.heartbeatIntervalMs * 1e6, deviceWait);
    }
    return 'stopped';
  }

  /**
   * Go-live (§2.3): consume the rest of the log, then become a primary at exactly that point.
   * Devices reissue in-flight disk IO and announce the guest's MAC; outputs are no longer dropped.
   */
  async #takeOver(goLive: { epoch: number; wonMs: number }): Promise<BackupEnd> {
    let diverged: DivergenceError | undefined;
    try {
      // A host killed while it replays (waiting for a read of the shared disk) never goes live.
      const replayed = await this.#replayToLogEnd(() => this.#killed);
      if (replayed === 'abandoned') return { end: 'killed' };
      if (replayed === 'log-ended') throw new FtvmError('the log ended without its closing mark');
    } catch (error) {
      if (!DivergenceError.is(error)) throw error;
      diverged = error;
    }
    // The deposed primary hears nothing more, whatever the replay came to (closed first, so a
    // divergence reported below sends no goodbye either).
    this.#options.channel.close({ flush: false });
    if (diverged) return this.#endDiverged(diverged);
    if (this.machine.exitStatus !== undefined) {
      return { end: 'powered-off', exitStatus: this.machine.exitStatus };
    }
    const primaryOptions: FtPrimaryOptions = {
      vmId: this.#options.vmId,
      host: this.#options.host,
      epoch: goLive.epoch,
      config: this.#options.config,
      scheduler: this.#options.scheduler,
      arbiter: this.#options.arbiter,
      deliver: this.#options.deliver,
      holdUntilApplied: this.#options.holdUntilApplied,
      onEvent: this.#options.onEvent,
      disks: this.#options.disks,
      ...(this.#options.sabotage === undefined ? {} : { sabotage: this.#options.sabotage }),
    };
    this.#options.beforeGoLive?.(goLive.epoch);
    if (this.#killed) return { end: 'killed' };
    const primary = FtPrimary.promote(this.machine, primaryOptions);
    this.#emit({
      type: 'backup-went-live',
      epoch: goLive.epoch,
      icount: this.machine.cpu.icount,
      goLiveMs: this.#nowMs() - goLive.wonMs,
    });
    return { end: 'went-live', primary };
  }

  #apply(): void {
    if (this.#killed) {
      this.#core.takeEffects();
      return;
    }
    const effects = this.#core.takeEffects();
    for (const pages of effects.pages) this.machine.writePages(pages.pageNumbers, pages.pages);
    for (const run of effects.diskRuns) {
      const disk = this.#options.disks?.find((candidate) => candidate.device === run.device);
      if (!disk || run.offset + run.data.length > disk.sizeBytes) {
        this.#haltFor(`the primary sent a disk run of ${run.device} this backup has no room for`);
        return;
      }
      // Issued in order; the disk writes one after another, so the replayed guest's writes land after.
      disk.write(run.offset, run.data).catch((error: Error) => {
        this.#haltFor(`cannot write the transferred disk: ${error.message}`);
      });
    }
    if (effects.transferState) {
      const state = effects.transferState;
      this.log.rebase(state.nextSeq, state.icount);
      this.machine.restoreTransferState(state);
    }
    if (effects.logEntries.length > 0) this.log.append(effects.logEntries);
    for (const message of effects.messages) this.#options.channel.send(message);
    if (effects.arbiterRequest) this.#askArbiter(effects.arbiterRequest.fromEpoch);
    if (effects.goLive) {
      this.#goLive = { epoch: effects.goLive.epoch, wonMs: this.#nowMs() };
      this.#wake();
    }
    if (effects.finish !== undefined) {
      this.#finishing = effects.finish;
      this.#wake();
    }
    if (effects.halt !== undefined) this.#haltFor(effects.halt);
  }

  /** Stops for good: nothing more is sent, applied or asked; the primary sees the channel close. */
  #haltFor(reason: string): void {
    if (this.#halted !== undefined) return;
    this.#halted = reason;
    this.#emit({ type: 'backup-halted', epoch: this.#core.epoch, reason });
    this.#options.channel.close();
    this.#wake();
  }

  #askArbiter(fromEpoch: number): void {
    const { arbiter, vmId, host } = this.#options;
    const request = {
      arbiter,
      vmId,
      host,
      role: 'backup' as const,
      emit: (event: FtEvent) => this.#emit(event),
    };
    requestNextEpoch(request, fromEpoch, (result) => {
      this.#core.arbiterAnswered(result, this.#nowMs());
      this.#apply();
    });
  }

  #emit(event: FtEvent): void {
    this.#options.onEvent?.(event);
  }

  #nowMs(): number {
    return this.#options.scheduler.monotonicNs() / 1e6;
  }

  #sleepMs(ms: number): Promise<void> {
    return this.#waiter.wait(ms * 1e6);
  }

  #wake(): void {
    this.#waiter.wake();
  }
}
