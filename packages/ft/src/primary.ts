import type { Arbiter, FtMessage, LogChannel, LogEntry, LogSink } from '@ftvm/core';
import { ConfigError } from '@ftvm/core';
import type { HostScheduler, Machine, MachineOptions, MachineOutput } from '@ftvm/machine';
import { sliceTimeLimit, Waiter } from '@ftvm/machine';
import { requestNextEpoch } from './arbiter-request.js';
import { type FtConfig, ftConfig, SLICE_STEPS_MAX, STATE_HASH_PAGES_PER_SLICE } from './config.js';
import type { FtEvent } from './events.js';
import { PrimaryCore, type PrimaryStatistics } from './primary-core.js';
import { diskRunPieces, type TrackedDisk } from './tracked-disk.js';

/** Disk runs travel in pieces of at most this (one transfer-disk message). */
const DISK_RUN_BYTES = 1 << 20;
/** A clone's last copy waits for at most about this much written disk (more: another round). */
const CLONE_FINAL_DISK_BYTES_MAX = 4 << 20;
/** Lag control sleeps once it owes the guest's CPU this much (host timers are no finer). */
const THROTTLE_SLEEP_MS_MIN = 2;

/** What the driver hands the machine it builds: spread these into the machine's options. */
export type PrimaryMachineHooks = Required<Pick<MachineOptions, 'mode' | 'log' | 'onOutput' | 'holdOutputs'>>;

export interface FtPrimaryOptions {
  readonly vmId: string;
  /** This host's name: the arbiter's owner field. */
  readonly host: string;
  /** The epoch this primary owns (the arbiter's record says so). */
  readonly epoch: number;
  readonly config?: Partial<FtConfig>;
  /** Host time and sleeping (`createNodeHost()` from `@ftvm/machine/node`, or a simulator's). */
  readonly scheduler: HostScheduler;
  readonly arbiter: Arbiter;
  /**
   * Builds the machine (guest loaded) with these hooks spread into its options. Not called for a
   * primary made from a backup that went live ({@link FtPrimary.promote}).
   */
  readonly createMachine?: (hooks: PrimaryMachineHooks) => Machine;
  /** Where outputs go once released (console bytes, frames). Disk writes need nothing here. */
  readonly deliver: (output: MachineOutput) => void;
  /**
   * Outputs that must also wait until the backup executed past them with its own reads done:
   * with the backup-reads disk mode, `(output) => output.kind === 'disk-write' || output.kind ===
   * 'disk-flush'` (see `PrimaryCore.outputProduced`). Default: none.
   */
  readonly holdUntilApplied?: (output: MachineOutput) => boolean;
  /**
   * Disks this host keeps its own copy of (non-shared disks): a clone copies them along with
   * memory. Shared disks are not listed (the new backup reaches the same storage).
   */
  readonly disks?: readonly TrackedDisk[];
  /** Role changes, failures and clones, for logs and metrics. */
  readonly onEvent?: (event: FtEvent) => void;
  /**
   * Breaks the output rule on purpose, to show that a checker catches it (the demo's
   * `--sabotage`). Never set it in a deployment.
   */
  readonly sabotage?: FtSabotage;
}

/**
 * `release-early`: every output leaves (and every disk write reaches the disk) as soon as the guest
 * produces it, before the backup acknowledged the log that covers it.
 */
export type FtSabotage = 'release-early';

/** How a primary's run ended. */
export type PrimaryEnd =
  /** The guest powered off (its exit status); the backup was told. */
  | { readonly end: 'powered-off'; readonly exitStatus: number }
  /** The arbiter gave the epoch to the other side: this primary emitted nothing more. */
  | { readonly end: 'halted'; readonly reason: string }
  /** `stop()` was called. */
  | { readonly end: 'stopped' }
  /** `kill()` was called (an injected host failure). */
  | { readonly end: 'killed' };

/** What a live clone measured. */
export interface CloneReport {
  /** From the first page sent to the backup following the log. */
  readonly totalMs: number;
  /** How long the guest stood still for the final stop-and-copy. */
  readonly pauseMs: number;
  readonly rounds: number;
  readonly pagesSent: number;
  /** Disk bytes sent (non-shared disks). */
  readonly diskBytesSent: number;
  /** The log position the clone follows from. */
  readonly firstSeq: number;
}

interface CloneInProgress {
  readonly channel: LogChannel;
  readonly tracker: { collect(): number[]; stop(): void };
  queue: number[];
  /** Disk runs to copy this round, per disk: [offset, length] pieces of at most 1 MiB. */
  diskQueue: { disk: TrackedDisk; offset: number; length: number }[];
  diskBytesSent: number;
  round: number;
  pagesSent: number;
  readonly startedMs: number;
  readonly resolve: (report: CloneReport) => void;
  readonly reject: (error: Error) => void;
}

/**
 * The primary's driver: runs the machine in slices bounded by host time, feeds the
 * {@link PrimaryCore} and carries out its effects with a real channel, arbiter and clock. Outputs
 * leave through `deliver` only when the core releases them; disk writes wait on the same release
 * (the machine resolves the device's promise). It also clones a new backup by live state
 * transfer ({@link FtPrimary.cloneTo}).
 */
export class FtPrimary {
  readonly machine: Machine;
  readonly #core: PrimaryCore<MachineOutput>;
  readonly #options: FtPrimaryOptions;
  readonly #config: FtConfig;
  #channel: LogChannel | undefined;
  #clone: CloneInProgress | undefined;
  /** The run loop's waits: I/O first, no wake-up lost (an acknowledgement, an input, the arbiter). */
  readonly #waiter: Waiter;
  #stopRequested = false;
  /** Host time lag control still owes: the guest sleeps it off once it reaches a few ms. */
  #throttleOwedMs = 0;
  #killed = false;
  #halted: string | undefined;
  #nowMs: number;
  #arbiterBusy = false;
  /** The run loop waits for acknowledgements (log buffer full, or final outputs held). */
  #waitingForAcks = false;
  /**
   * Outputs released before `run` (a promoted backup's go-live announcement, made while it is
   * constructed): they reach `deliver` when the run starts, once the caller holds this primary.
   */
  #releasedBeforeRun: MachineOutput[] | undefined = [];

  constructor(options: FtPrimaryOptions, promoted?: Machine) {
    this.#options = options;
    this.#config = ftConfig(options.config);
    this.#waiter = new Waiter(options.scheduler);
    this.#nowMs = this.#readNowMs();
    this.#core = new PrimaryCore<MachineOutput>({
      vmId: options.vmId,
      host: options.host,
      epoch: options.epoch,
      config: this.#config,
      withBackup: false,
      nowMs: this.#nowMs,
    });
    const hooks = this.#hooks();
    if (promoted) {
      this.machine = promoted;
      promoted.goLive({
        mode: 'record',
        log: hooks.log,
        hostClock: options.scheduler,
        onOutput: hooks.onOutput,
      });
    } else {
      if (!options.createMachine) throw new ConfigError('a primary needs createMachine or a promoted backup');
      this.machine = options.createMachine(hooks);
    }
  }

  /**
   * A backup that won the arbiter becomes the primary of the new epoch: its machine (a replay that
   * applied its whole log) goes live here, and the primary starts alone, ready for a new backup.
   */
  static promote(machine: Machine, options: FtPrimaryOptions): FtPrimary {
    return new FtPrimary(options, machine);
  }

  get epoch(): number {
    return this.#core.epoch;
  }

  get state(): PrimaryStatistics['state'] {
    return this.#core.state;
  }

  statistics(): PrimaryStatistics {
    return this.#core.statistics(this.#readNowMs());
  }

  /**
   * Attaches a backup that starts from the same point (both machines booted from the same image
   * and have run nothing yet): it follows the log from the start.
   */
  attachBackup(channel: LogChannel): void {
    if (this.#channel) throw new ConfigError('this primary already has a backup');
    if (this.machine.cpu.icount !== 0 || this.machine.logPosition.nextSeq !== 0) {
      throw new ConfigError('a running primary gets a backup by cloning (cloneTo)');
    }
    this.#useChannel(channel);
    this.#core.backupAttached(0, this.#readNowMs());
  }

  /**
   * Clones a new backup over `channel` by live state transfer (the paper's FT VMotion, §3.1):
   * every non-zero page while the guest runs, then rounds of the pages written meanwhile, then a
   * short stop-and-copy of the last pages and everything else, after which logging resumes.
   */
  cloneTo(channel: LogChannel): Promise<CloneReport> {
    if (this.#channel || this.#clone)
      return Promise.reject(new ConfigError('this primary already has a backup'));
    if (this.#core.state !== 'alone')
      return Promise.reject(new ConfigError(`cannot clone while ${this.#core.state}`));
    return new Promise<CloneReport>((resolve, reject) => {
      const tracker = this.machine.trackDirtyPages();
      const disks = this.#options.disks ?? [];
      for (const disk of disks) disk.startTracking();
      this.#clone = {
        channel,
        tracker,
        queue: this.machine.nonZeroPages(),
        diskQueue: disks.flatMap((disk) =>
          diskRunPieces([[0, disk.sizeBytes]], DISK_RUN_BYTES).map(([offset, length]) => ({
            disk,
            offset,
            length,
          })),
        ),
        diskBytesSent: 0,
        round: 0,
        pagesSent: 0,
        startedMs: this.#readNowMs(),
        resolve,
        reject,
      };
      channel.onMessage(() => {});
      channel.onClose((error) => this.#cloneFailed(error ?? new Error('the new backup closed the channel')));
      this.#emit({ type: 'clone-started', epoch: this.#core.epoch });
      this.#wake();
    });
  }

  /** Stops the run at the next slice boundary; the backup is told goodbye. */
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

  async run(): Promise<PrimaryEnd> {
    const scheduler = this.#options.scheduler;
    // An input or a timer armed by the guest ends a wait of the loop.
    this.machine.onWake(() => this.#waiter.wake());
    const early = this.#releasedBeforeRun ?? [];
    this.#releasedBeforeRun = undefined;
    for (const output of early) {
      if (this.#killed) break;
      this.#options.deliver(output);
      output.release();
    }
    try {
      for (;;) {
        this.#nowMs = this.#readNowMs();
        this.#core.tick(this.#nowMs);
        this.#apply();
        if (this.#killed) return { end: 'killed' };
        if (this.#halted !== undefined) return { end: 'halted', reason: this.#halted };
        if (this.#stopRequested) {
          this.#core.stop('the primary was stopped', this.#nowMs);
          this.#apply();
          this.#channel?.close();
          return { end: 'stopped' };
        }
        if (this.machine.isStopped) {
          // The last outputs still wait for the backup's acknowledgement (or for the arbiter to
          // let this primary go on alone): the run ends once they left.
          if (this.#core.heldOutputCount > 0) {
            this.#core.flush(this.#nowMs);
            this.#apply();
            await this.#waitForAcks();
            continue;
          }
          this.#core.stop('the guest powered off', this.#nowMs);
          this.#apply();
          this.#channel?.close();
          return { end: 'powered-off', exitStatus: this.machine.exitStatus ?? 0 };
        }
        if (this.#clone) await this.#cloneStep();
        if (this.#core.logFull) {
          await this.#waitForAcks();
          continue;
        }
        const startNs = scheduler.monotonicNs();
        const outcome = this.machine.runSlice(
          SLICE_STEPS_MAX,
          sliceTimeLimit(scheduler, this.#config.sliceTimeMsMax),
        );
        this.#nowMs = this.#readNowMs();
        this.#core.flush(this.#nowMs);
        this.#apply();
        // The first checkpoint's hash of all RAM, built ahead a little per slice.
        this.machine.prepareStateHash(STATE_HASH_PAGES_PER_SLICE);
        const share = this.#core.cpuShare;
        if (share >= 1) this.#throttleOwedMs = 0;
        else if (outcome.steps > 0) {
          // Lag control: the guest gets `share` of the CPU while the backup catches up. The time
          // owed adds up over slices, so a share close to 1 costs a short sleep now and then, not
          // none (a wait under a millisecond only yields) and not a whole millisecond every slice.
          const ranMs = (scheduler.monotonicNs() - startNs) / 1e6;
          this.#throttleOwedMs += ranMs * (1 / share - 1);
          if (this.#throttleOwedMs >= THROTTLE_SLEEP_MS_MIN) {
            const sleptFromNs = scheduler.monotonicNs();
            // No longer than a heartbeat interval at a time: the loop's tick sends the heartbeats,
            // and a backup that heard nothing for the failure timeout would take over (a slice
            // slowed to 20 ms at the lowest share owed 380 ms).
            await this.#sleepMs(Math.min(this.#throttleOwedMs, this.#config.heartbeatIntervalMs));
            this.#throttleOwedMs = Math.max(
              0,
              this.#throttleOwedMs - (scheduler.monotonicNs() - sleptFromNs) / 1e6,
            );
            continue;
          }
        }
        switch (outcome.end) {
          case 'waiting': {
            if (this.machine.hasPendingInput) {
              await scheduler.yieldToHost();
              break;
            }
            // A clone in progress goes on while the guest sleeps (the new backup expects to hear),
            // at the pace the channel drains.
            if (this.#clone) {
              await this.#sleepMs(
                this.#clone.channel.bufferedBytes > this.#config.cloneChannelBytesMax ? 2 : 0,
              );
              break;
            }
            const timerMs = (this.machine.nextTimerDelayNs() ?? Number.POSITIVE_INFINITY) / 1e6;
            await this.#sleepMs(Math.min(timerMs, this.#config.heartbeatIntervalMs));
            break;
          }
          case 'log-full':
            await this.#waitForAcks();
            break;
          default:
            await scheduler.yieldToHost();
        }
      }
    } finally {
      this.machine.onWake(undefined);
      this.#clone?.tracker.stop();
      this.#clone?.reject(new ConfigError('the primary stopped during the clone'));
      this.#clone = undefined;
    }
  }

  // ---- internals ----

  #hooks(): PrimaryMachineHooks {
    const core = this.#core;
    const sink: LogSink = {
      // Stamped now, not at the slice's start: the lag counts from when the primary got there.
      append: (entry: LogEntry) => core.logAppended(entry, this.#readNowMs()),
      get full() {
        return core.logFull;
      },
    };
    return {
      mode: 'record',
      log: sink,
      holdOutputs: true,
      onOutput: (output) => {
        if (this.#options.sabotage === 'release-early') {
          // Broken on purpose: out at once, whether or not the backup holds the log.
          this.#options.deliver(output);
          output.release();
          core.flush(this.#nowMs);
          this.#apply();
          return;
        }
        core.outputProduced(output, this.#nowMs, this.#options.holdUntilApplied?.(output) === true);
        // The output waits for its log: send the log now rather than at the end of the slice.
        // Not for a disk write: the guest does not wait on it with a write cache, and without one
        // it waits idle, which ends the slice (and sends the log) at once anyway.
        if (output.kind === 'disk-write') return;
        core.flush(this.#nowMs);
        this.#apply();
      },
    };
  }

  #useChannel(channel: LogChannel): void {
    this.#channel = channel;
    channel.onMessage((message: FtMessage) => {
      if (this.#channel !== channel) return;
      this.#core.messageReceived(message, this.#readNowMs());
      this.#apply();
      // Only a loop that waits for acknowledgements (a full log, a guest that powered off with
      // outputs held) needs waking: waking it for every one would make each round trip a slice,
      // and each slice more log.
      if (this.#waitingForAcks) this.#wake();
    });
    channel.onClose(() => {
      if (this.#channel !== channel) return;
      this.#core.channelClosed(this.#readNowMs());
      this.#apply();
    });
  }

  /** Carries out the core's effects in the order its fields name. */
  #apply(): void {
    if (this.#killed) {
      this.#core.takeEffects();
      return;
    }
    const effects = this.#core.takeEffects();
    const channel = this.#channel;
    for (const message of effects.messages) channel?.send(message);
    for (const output of effects.released) {
      if (this.#releasedBeforeRun) {
        this.#releasedBeforeRun.push(output);
        continue;
      }
      this.#options.deliver(output);
      output.release();
    }
    if (effects.arbiterRequest) this.#askArbiter(effects.arbiterRequest.fromEpoch);
    if (effects.arbiterRead) this.#readArbiter();
    if (effects.halt !== undefined) {
      this.#halted = effects.halt;
      this.#emit({ type: 'primary-halted', epoch: this.#core.epoch, reason: effects.halt });
      this.#channel?.close({ flush: false });
      this.#channel = undefined;
      this.#wake();
    }
    if (effects.backupDropped !== undefined) {
      this.#emit({ type: 'backup-dropped', epoch: this.#core.epoch, reason: effects.backupDropped });
      this.#channel?.close({ flush: false });
      this.#channel = undefined;
      this.#wake();
    }
  }

  #askArbiter(fromEpoch: number): void {
    const { arbiter, vmId, host } = this.#options;
    const request = {
      arbiter,
      vmId,
      host,
      role: 'primary' as const,
      emit: (event: FtEvent) => this.#emit(event),
    };
    requestNextEpoch(request, fromEpoch, (result) => {
      this.#core.arbiterAnswered(result, this.#readNowMs());
      this.#apply();
      if (result !== undefined) this.#wake();
    });
  }

  #readArbiter(): void {
    if (this.#arbiterBusy) return;
    this.#arbiterBusy = true;
    this.#options.arbiter.read(this.#options.vmId).then(
      (record) => {
        this.#arbiterBusy = false;
        this.#core.arbiterReadAnswered(record, this.#readNowMs());
        this.#apply();
      },
      () => {
        this.#arbiterBusy = false;
        this.#core.arbiterReadAnswered(undefined, this.#readNowMs());
        this.#apply();
      },
    );
  }

  /** One step of a live clone, between slices (the guest runs between steps). */
  async #cloneStep(): Promise<void> {
    const clone = this.#clone as CloneInProgress;
    if (clone.channel.closed) {
      this.#cloneFailed(new Error('the new backup closed the channel'));
      return;
    }
    if (clone.channel.bufferedBytes > this.#config.cloneChannelBytesMax) return;
    if (clone.queue.length > 0) {
      const batch = clone.queue.splice(0, this.#config.clonePagesPerMessage);
      this.#sendPages(clone, batch);
      return;
    }
    if (clone.diskQueue.length > 0) {
      // The first round skips runs of zeros (the new backup's copy starts empty): go on through
      // them until a run is sent or a few ms passed, so the new backup does not wait in silence.
      const untilNs = this.#options.scheduler.monotonicNs() + 5e6;
      for (let piece = clone.diskQueue.shift(); piece; piece = clone.diskQueue.shift()) {
        if (await this.#sendDiskRun(clone, piece.disk, piece.offset, piece.length, clone.round === 0)) break;
        if (this.#options.scheduler.monotonicNs() > untilNs || this.#clone !== clone) break;
      }
      return;
    }
    const written = clone.tracker.collect();
    const disks = this.#options.disks ?? [];
    const diskWritten = disks.map((disk) => ({ disk, runs: disk.collectWritten() }));
    const diskBytesWritten = diskWritten.reduce(
      (sum, { runs }) => sum + runs.reduce((total, [, length]) => total + length, 0),
      0,
    );
    if (
      clone.round < this.#config.cloneRoundsMax &&
      (written.length > this.#config.cloneFinalPagesMax || diskBytesWritten > CLONE_FINAL_DISK_BYTES_MAX)
    ) {
      clone.round++;
      clone.queue = written;
      clone.diskQueue = diskWritten.flatMap(({ disk, runs }) =>
        diskRunPieces(runs, DISK_RUN_BYTES).map(([offset, length]) => ({ disk, offset, length })),
      );
      return;
    }
    // Stop-and-copy: between slices the guest stands still; everything left goes now. Disk
    // writes in flight finish first (their completions are inputs the state takes). The state is
    // taken next: taking it applies pending host inputs, whose DMA writes pages that must go too
    // (pages still travel before the state, which the clone restores over them).
    const pauseStartNs = this.#options.scheduler.monotonicNs();
    for (const disk of disks) await disk.drained();
    if (this.#killed || this.#clone !== clone) return;
    const state = this.machine.saveTransferState();
    const last = [...new Set([...written, ...clone.tracker.collect()])];
    for (let index = 0; index < last.length; index += this.#config.clonePagesPerMessage) {
      this.#sendPages(clone, last.slice(index, index + this.#config.clonePagesPerMessage));
    }
    for (const { disk, runs } of diskWritten) {
      for (const [offset, length] of diskRunPieces([...runs, ...disk.collectWritten()], DISK_RUN_BYTES)) {
        await this.#sendDiskRun(clone, disk, offset, length, false);
      }
      disk.stopTracking();
    }
    if (this.#killed || this.#clone !== clone) return;
    clone.tracker.stop();
    clone.channel.send({ type: 'transfer-state', ...state, machine: null });
    this.#clone = undefined;
    this.#useChannel(clone.channel);
    this.#core.backupAttached(state.nextSeq, this.#readNowMs());
    const nowNs = this.#options.scheduler.monotonicNs();
    const report: CloneReport = {
      totalMs: nowNs / 1e6 - clone.startedMs,
      pauseMs: (nowNs - pauseStartNs) / 1e6,
      rounds: clone.round + 1,
      pagesSent: clone.pagesSent,
      diskBytesSent: clone.diskBytesSent,
      firstSeq: state.nextSeq,
    };
    this.#emit({ type: 'clone-finished', epoch: this.#core.epoch, ...report });
    clone.resolve(report);
  }

  /** Sends one run of a disk to the new backup (unless it is all zeros and `skipZeros`); true when sent. */
  async #sendDiskRun(
    clone: CloneInProgress,
    disk: TrackedDisk,
    offset: number,
    length: number,
    skipZeros: boolean,
  ): Promise<boolean> {
    const end = Math.min(disk.sizeBytes, offset + length);
    if (end <= offset) return false;
    const data = await disk.read(offset, end - offset);
    if (skipZeros && data.every((byte) => byte === 0)) return false;
    clone.channel.send({ type: 'transfer-disk', device: disk.device, offset, data });
    clone.diskBytesSent += data.length;
    return true;
  }

  #sendPages(clone: CloneInProgress, pageNumbers: number[]): void {
    if (pageNumbers.length === 0) return;
    clone.channel.send({ type: 'transfer-pages', pageNumbers, pages: this.machine.readPages(pageNumbers) });
    clone.pagesSent += pageNumbers.length;
  }

  #cloneFailed(error: Error): void {
    const clone = this.#clone;
    if (!clone) return;
    this.#clone = undefined;
    clone.tracker.stop();
    clone.channel.close({ flush: false });
    this.#emit({ type: 'clone-failed', epoch: this.#core.epoch, reason: error.message });
    clone.reject(error);
  }

  #emit(event: FtEvent): void {
    this.#options.onEvent?.(event);
  }

  #readNowMs(): number {
    return this.#options.scheduler.monotonicNs() / 1e6;
  }

  #sleepMs(ms: number): Promise<void> {
    return this.#waiter.wait(ms * 1e6);
  }

  /** Sleeps until an acknowledgement (or a heartbeat interval) comes. */
  async #waitForAcks(): Promise<void> {
    this.#waitingForAcks = true;
    try {
      await this.#sleepMs(this.#config.heartbeatIntervalMs);
    } finally {
      this.#waitingForAcks = false;
    }
  }

  #wake(): void {
    this.#waiter.wake();
  }
}
