import type { ArbiterRecord, ArbiterResult, FtMessage, LogEntry } from '@ftvm/core';
import { isOwnWin } from './arbiter-request.js';
import type { FtConfig } from './config.js';
import { entrySizeBytes } from './entry-size.js';
import { PeerWatch } from './peer-watch.js';

/**
 * The primary's side of the protocol as an I/O-free state machine, in the style of etcd's raft:
 * the driver feeds in what happened (log entries the machine appended, outputs it produced,
 * messages from the backup, the time, the arbiter's answers) and then takes a batch of
 * {@link PrimaryEffects} to carry out, in the order their fields say. It holds no socket, no
 * timer and no machine, so tests script it exactly and the simulator runs it unchanged.
 *
 * What it implements (Scales et al. 2010):
 * - §2.2 the output rule: an output leaves only once the backup acknowledged a log position that
 *   covers the step that produced it (the machine names that position: `coveringSeq`). The primary
 *   itself never waits for an acknowledgement; only its outputs do.
 * - §2.3 failure detection: no traffic from the backup for `failureTimeoutMs` (or the channel
 *   closed) and the primary asks the arbiter to move the epoch e → e+1 with itself as owner. It
 *   goes on alone only when it wins; it halts when it loses; it keeps waiting, its outputs held,
 *   while the arbiter cannot be reached.
 * - §2.4 execution lag: the lag is how long the oldest entry the backup has not applied has
 *   waited. A feedback loop aims it at half of `executionLagMsMax`: the primary's CPU share drops
 *   in proportion to the lag above that, and further the longer the backup stays behind (it
 *   learns how much slower the backup runs); it comes back as the backup catches up.
 *   Unacknowledged log past `logBufferBytesMax` makes the log full: the machine stops until acks
 *   make room.
 * - A primary that finds it was paused (its ticks stopped for longer than half the failure
 *   timeout) does not trust what it knew: it releases nothing until the arbiter confirms the
 *   epoch is still its own, and halts if it is not.
 */

/** An output the machine produced, as the core needs it. */
export interface HeldOutput {
  /** The log entry that covers the output's step (see `MachineOutput.coveringSeq`). */
  readonly coveringSeq: number;
  /** The step that produced it. */
  readonly icount: number;
}

export type PrimaryState =
  /** A backup follows the log; outputs wait for its acknowledgements. */
  | 'replicating'
  /** No backup (before a clone, or after the arbiter declared the backup failed): outputs leave at once. */
  | 'alone'
  /** The backup is suspected failed; the arbiter was asked. Outputs wait. */
  | 'suspecting'
  /** The arbiter gave the epoch to the other side: this primary does nothing more. */
  | 'halted';

/**
 * What the driver must do after feeding the core, in this order: send `messages` (so log goes out
 * before anything that depends on it), then hand `released` outputs to the outside world and
 * release them (in order), then start `arbiterRequest`/`arbiterRead` (at most one of each in
 * flight; answer with {@link PrimaryCore.arbiterAnswered} or {@link PrimaryCore.arbiterReadAnswered}),
 * then act on `halt` (stop the machine; nothing more is sent or released) or `backupDropped`
 * (close the backup's channel).
 */
export interface PrimaryEffects<Output extends HeldOutput> {
  readonly messages: readonly FtMessage[];
  readonly released: readonly Output[];
  readonly arbiterRequest: { readonly fromEpoch: number } | undefined;
  readonly arbiterRead: boolean;
  readonly halt: string | undefined;
  readonly backupDropped: string | undefined;
}

/** Counters and gauges of a primary, for metrics and the demo's view. */
export interface PrimaryStatistics {
  readonly state: PrimaryState;
  readonly epoch: number;
  /** Highest sequence number the backup acknowledged receiving (-1: none). */
  readonly ackedSeq: number;
  readonly appliedSeq: number;
  readonly appliedIcount: number;
  /** Log bytes the backup has not applied yet (sent or not). */
  readonly logBufferBytes: number;
  readonly logFull: boolean;
  readonly heldOutputs: number;
  /** How long the oldest held output has waited, in ms (0 when none). */
  readonly oldestHeldOutputMs: number;
  readonly executionLagMs: number;
  /** The CPU share lag control gives the guest, (0, 1]. */
  readonly cpuShare: number;
  readonly logEntriesSent: number;
  /** Log messages sent (each carries the entries of one flush). */
  readonly logMessagesSent: number;
  /** Messages received from the backup (acknowledgements and heartbeats). */
  readonly messagesReceived: number;
  /** Log bytes sent to backups, as the codec's compact form takes them (an estimate: see entrySizeBytes). */
  readonly logBytesSent: number;
  readonly outputsReleased: number;
}

interface UnackedEntry {
  readonly seq: number;
  readonly bytes: number;
  readonly appendedMs: number;
}

interface Held<Output> {
  readonly output: Output;
  readonly producedMs: number;
  /** Released only once the backup also applied past the output's step (see outputProduced). */
  readonly untilApplied: boolean;
}

/** The lowest CPU share lag control goes down to. */
export const CPU_SHARE_MIN = 0.05;

/**
 * Lag control's gains. The lag's error is measured in limits from the setpoint (half the limit):
 * at the limit it is 0.5, and the proportional part cuts the CPU share by a quarter there. The
 * integral part grows by the error every `LAG_INTEGRAL_MS` of host time, so a backup that runs a
 * tenth slower than its primary for good costs the primary a tenth of its CPU, not more, once the
 * loop has settled (within a second or two).
 */
const LAG_PROPORTIONAL_GAIN = 0.5;
const LAG_INTEGRAL_MS = 1000;

export class PrimaryCore<Output extends HeldOutput = HeldOutput> {
  #state: PrimaryState;
  #epoch: number;
  readonly #vmId: string;
  readonly #host: string | undefined;
  readonly #config: FtConfig;
  #pendingLog: LogEntry[] = [];
  #unacked: UnackedEntry[] = [];
  #unackedHead = 0;
  #logBufferBytes = 0;
  #held: Held<Output>[] = [];
  #heldHead = 0;
  #ackedSeq = -1;
  #appliedSeq = -1;
  #appliedIcount = 0;
  readonly #watch: PeerWatch;
  #lastSentMs: number;
  #heartbeats = 0;
  #cpuShare = 1;
  /** Lag control's integral part: the CPU share the backup's slowness has cost so far. */
  #lagIntegral = 0;
  /** When lag control last looked. */
  #lagControlMs: number | undefined;
  /** A pause was detected: nothing is released until the arbiter confirms the epoch. */
  #verifying = false;
  #arbiterReadInFlight = false;
  #logEntriesSent = 0;
  #logMessagesSent = 0;
  #messagesReceived = 0;
  #logBytesSent = 0;
  #pendingLogBytes = 0;
  #outputsReleased = 0;
  // The effects being gathered.
  #messages: FtMessage[] = [];
  #released: Output[] = [];
  #arbiterRequest: { fromEpoch: number } | undefined;
  #arbiterRead = false;
  #halt: string | undefined;
  #backupDropped: string | undefined;

  constructor(options: {
    readonly vmId: string;
    /**
     * This host's name, as it asks the arbiter: an answer naming it as the owner of the next
     * epoch is its own win, even when the answer that said so was lost.
     */
    readonly host?: string;
    readonly epoch: number;
    readonly config: FtConfig;
    /** True when a backup is attached from the start; otherwise the primary starts alone. */
    readonly withBackup: boolean;
    readonly nowMs: number;
  }) {
    this.#vmId = options.vmId;
    this.#host = options.host;
    this.#epoch = options.epoch;
    this.#config = options.config;
    this.#state = options.withBackup ? 'replicating' : 'alone';
    this.#watch = new PeerWatch(options.config, options.nowMs);
    this.#lastSentMs = options.nowMs;
  }

  get state(): PrimaryState {
    return this.#state;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get vmId(): string {
    return this.#vmId;
  }

  /** True while log the backup has not applied exceeds `logBufferBytesMax`: the machine must wait. */
  get logFull(): boolean {
    return this.#logBufferBytes > this.#config.logBufferBytesMax;
  }

  /** Outputs held for the output rule. */
  get heldOutputCount(): number {
    return this.#held.length - this.#heldHead;
  }

  /** The CPU share lag control allows the guest, (0, 1]. */
  get cpuShare(): number {
    return this.#cpuShare;
  }

  /** How long the oldest entry the backup has not applied has waited. */
  executionLagMs(nowMs: number): number {
    if (this.#state !== 'replicating' && this.#state !== 'suspecting') return 0;
    for (let index = this.#unackedHead; index < this.#unacked.length; index++) {
      const entry = this.#unacked[index] as UnackedEntry;
      if (entry.seq > this.#appliedSeq) return Math.max(0, nowMs - entry.appendedMs);
    }
    return 0;
  }

  statistics(nowMs: number): PrimaryStatistics {
    const oldest = this.#held[this.#heldHead];
    return {
      state: this.#state,
      epoch: this.#epoch,
      ackedSeq: this.#ackedSeq,
      appliedSeq: this.#appliedSeq,
      appliedIcount: this.#appliedIcount,
      logBufferBytes: this.#logBufferBytes,
      logFull: this.logFull,
      heldOutputs: this.heldOutputCount,
      oldestHeldOutputMs: oldest ? Math.max(0, nowMs - oldest.producedMs) : 0,
      executionLagMs: this.executionLagMs(nowMs),
      cpuShare: this.#cpuShare,
      logEntriesSent: this.#logEntriesSent,
      logMessagesSent: this.#logMessagesSent,
      messagesReceived: this.#messagesReceived,
      logBytesSent: this.#logBytesSent,
      outputsReleased: this.#outputsReleased,
    };
  }

  // ---- inputs ----

  /** The machine appended a log entry. */
  logAppended(entry: LogEntry, nowMs: number): void {
    if (this.#state === 'alone' || this.#state === 'halted') return;
    this.#pendingLog.push(entry);
    const bytes = entrySizeBytes(entry);
    this.#unacked.push({ seq: entry.seq, bytes, appendedMs: nowMs });
    this.#logBufferBytes += bytes;
    this.#pendingLogBytes += bytes;
  }

  /**
   * The machine produced an output (covered by the log, see `MachineOutput`). With `untilApplied`
   * it waits, beyond the output rule, until the backup has also executed past its step with none
   * of its own reads of shared state still pending from before (the backup reports that point as
   * its applied icount): a write to a disk the backup reads itself must not overtake the backup's
   * read of the same sectors (the paper's §4.1, backup reads).
   */
  outputProduced(output: Output, nowMs: number, untilApplied = false): void {
    if (this.#state === 'halted') return;
    this.#held.push({ output, producedMs: nowMs, untilApplied });
    this.#releaseCovered();
  }

  /**
   * Sends the log gathered since the last flush as one message. The driver calls it after each
   * slice and whenever outputs wait for log (so they wait no longer than the network).
   */
  flush(nowMs: number): void {
    if (this.#pendingLog.length === 0 || this.#state === 'halted' || this.#state === 'alone') return;
    this.#send({ type: 'log', entries: this.#pendingLog }, nowMs);
    this.#logEntriesSent += this.#pendingLog.length;
    this.#logMessagesSent++;
    this.#logBytesSent += this.#pendingLogBytes;
    this.#pendingLogBytes = 0;
    this.#pendingLog = [];
  }

  /** A message from the backup. */
  messageReceived(message: FtMessage, nowMs: number): void {
    this.#noticePause(nowMs);
    if (this.#state === 'halted' || this.#state === 'alone') return;
    this.#watch.heard(nowMs);
    this.#messagesReceived++;
    switch (message.type) {
      case 'ack':
        this.#acknowledged(message.receivedSeq, message.appliedSeq, message.appliedIcount);
        break;
      case 'goodbye':
        // The backup leaves on purpose: the guest powered off where its log ended, it was stopped,
        // it lost the arbiter, or it diverged. It halted and never goes live, so there is no
        // one to race at the arbiter: this primary goes on alone in its epoch.
        if (this.#state === 'replicating') this.#goAlone(`the backup left: ${message.reason}`);
        break;
      default:
        // Heartbeats only prove the backup alive; a backup sends nothing else.
        break;
    }
  }

  /** The channel to the backup closed (`error` says why; undefined for an orderly close). */
  channelClosed(nowMs: number): void {
    if (this.#state === 'replicating') this.#suspect(nowMs);
  }

  /** Time passes. Call it often (every slice and every heartbeat interval). */
  tick(nowMs: number): void {
    this.#noticePause(nowMs);
    if (this.#state === 'halted') return;
    if (this.#verifying && !this.#arbiterReadInFlight) {
      this.#arbiterReadInFlight = true;
      this.#arbiterRead = true;
    }
    if (this.#state === 'replicating' && this.#watch.isSilent(nowMs)) this.#suspect(nowMs);
    if (this.#state === 'suspecting' && this.#watch.arbiterRequestDue(nowMs)) {
      this.#arbiterRequest = { fromEpoch: this.#epoch };
    }
    if (this.#state === 'replicating' && nowMs - this.#lastSentMs >= this.#config.heartbeatIntervalMs) {
      this.#send({ type: 'heartbeat', counter: ++this.#heartbeats }, nowMs);
    }
    this.#controlLag(nowMs);
  }

  /** The arbiter answered the request of `arbiterRequest`; `undefined` when it could not be reached. */
  arbiterAnswered(result: ArbiterResult | undefined, nowMs: number): void {
    this.#watch.arbiterAnswered(result !== undefined, nowMs);
    if (this.#state !== 'suspecting' || result === undefined) return;
    if (!isOwnWin(result, this.#host, this.#epoch)) {
      this.#haltBecause(
        `the arbiter gave epoch ${result.record.epoch} to ${result.record.owner || 'another host'}`,
      );
      return;
    }
    this.#epoch = result.record.epoch;
    this.#verifying = false;
    this.#goAlone('the backup failed; the arbiter gave this primary the next epoch');
  }

  /** The arbiter answered `arbiterRead`; `undefined` when it could not be reached. */
  arbiterReadAnswered(record: ArbiterRecord | undefined, nowMs: number): void {
    this.#arbiterReadInFlight = false;
    if (this.#state === 'halted' || !this.#verifying) return;
    if (record === undefined) return; // asked again at the next tick
    if (this.#state === 'suspecting' && isOwnWin({ won: false, record }, this.#host, this.#epoch)) {
      // Its own test-and-set won while the answer was lost: it holds the next epoch.
      this.arbiterAnswered({ won: true, record }, nowMs);
      return;
    }
    if (record.epoch !== this.#epoch) {
      this.#haltBecause(
        `the epoch moved to ${record.epoch} (${record.owner || 'another host'}) while this host was paused`,
      );
      return;
    }
    this.#verifying = false;
    this.#releaseCovered();
  }

  /**
   * A new backup was cloned and follows the log from `firstSeq` (the live state transfer's log
   * position): outputs covered from there on wait for it.
   */
  backupAttached(firstSeq: number, nowMs: number): void {
    if (this.#state === 'halted') return;
    this.#state = 'replicating';
    this.#ackedSeq = firstSeq - 1;
    this.#appliedSeq = firstSeq - 1;
    this.#appliedIcount = 0;
    this.#pendingLog = [];
    this.#pendingLogBytes = 0;
    this.#unacked = [];
    this.#unackedHead = 0;
    this.#logBufferBytes = 0;
    this.#watch.restart(nowMs);
    this.#lastSentMs = nowMs;
    this.#cpuShare = 1;
    this.#lagIntegral = 0;
  }

  /** The driver is stopping the primary on purpose (the guest powered off, an operator). */
  stop(reason: string, nowMs: number): void {
    if (this.#state === 'halted') return;
    this.flush(nowMs);
    if (this.#state === 'replicating' || this.#state === 'suspecting')
      this.#send({ type: 'goodbye', reason }, nowMs);
    this.#state = 'halted';
  }

  /** Takes the effects gathered since the last call. */
  takeEffects(): PrimaryEffects<Output> {
    const effects: PrimaryEffects<Output> = {
      messages: this.#messages,
      released: this.#released,
      arbiterRequest: this.#arbiterRequest,
      arbiterRead: this.#arbiterRead,
      halt: this.#halt,
      backupDropped: this.#backupDropped,
    };
    this.#messages = [];
    this.#released = [];
    this.#arbiterRequest = undefined;
    this.#arbiterRead = false;
    this.#halt = undefined;
    this.#backupDropped = undefined;
    return effects;
  }

  // ---- internals ----

  /**
   * Called first by every input: a gap since the last one longer than half the failure timeout
   * means this host was not running (a paused process or VM; the driver ticks far more often).
   * What it believed may be stale: the peer gets a fresh timeout, and nothing is let out until
   * the arbiter says the epoch is still this primary's. Noticed before a message is handled, so
   * an acknowledgement that waited in the socket through the pause releases nothing by itself.
   */
  #noticePause(nowMs: number): void {
    if (!this.#watch.noticePause(nowMs) || this.#state === 'halted') return;
    if (this.#state !== 'alone' || this.#held.length > this.#heldHead) this.#verifying = true;
  }

  #send(message: FtMessage, nowMs: number): void {
    this.#messages.push(message);
    this.#lastSentMs = nowMs;
  }

  #acknowledged(receivedSeq: number, appliedSeq: number, appliedIcount: number): void {
    if (receivedSeq > this.#ackedSeq) this.#ackedSeq = receivedSeq;
    if (appliedSeq > this.#appliedSeq) this.#appliedSeq = Math.min(appliedSeq, this.#ackedSeq);
    if (appliedIcount > this.#appliedIcount) this.#appliedIcount = appliedIcount;
    // The buffer holds what the backup has not applied yet (received or not): that bounds the
    // backup's memory as well as ours.
    while (this.#unackedHead < this.#unacked.length) {
      const entry = this.#unacked[this.#unackedHead] as UnackedEntry;
      if (entry.seq > this.#appliedSeq) break;
      this.#logBufferBytes -= entry.bytes;
      this.#unackedHead++;
    }
    if (this.#unackedHead > 4096 && this.#unackedHead * 2 > this.#unacked.length) {
      this.#unacked = this.#unacked.slice(this.#unackedHead);
      this.#unackedHead = 0;
    }
    this.#releaseCovered();
  }

  #releaseCovered(): void {
    // A primary that suspects its backup lets nothing out until the arbiter decided: if the backup
    // took over, a late output (a frame) would move the guest's MAC back to this deposed host.
    if (this.#state === 'halted' || this.#state === 'suspecting' || this.#verifying) return;
    const everything = this.#state === 'alone';
    while (this.#heldHead < this.#held.length) {
      const held = this.#held[this.#heldHead] as Held<Output>;
      if (!everything && held.output.coveringSeq > this.#ackedSeq) break;
      if (!everything && held.untilApplied && this.#appliedIcount <= held.output.icount) break;
      this.#released.push(held.output);
      this.#outputsReleased++;
      this.#heldHead++;
    }
    if (this.#heldHead > 1024 && this.#heldHead * 2 > this.#held.length) {
      this.#held = this.#held.slice(this.#heldHead);
      this.#heldHead = 0;
    }
  }

  #suspect(nowMs: number): void {
    if (this.#state !== 'replicating') return;
    this.#state = 'suspecting';
    if (this.#watch.suspectedNow(nowMs)) this.#arbiterRequest = { fromEpoch: this.#epoch };
  }

  #goAlone(reason: string): void {
    this.#state = 'alone';
    this.#backupDropped = reason;
    this.#pendingLog = [];
    this.#pendingLogBytes = 0;
    this.#unacked = [];
    this.#unackedHead = 0;
    this.#logBufferBytes = 0;
    this.#cpuShare = 1;
    this.#lagIntegral = 0;
    this.#releaseCovered();
  }

  #haltBecause(reason: string): void {
    this.#state = 'halted';
    this.#halt = reason;
    this.#pendingLog = [];
    this.#pendingLogBytes = 0;
    this.#held = [];
    this.#heldHead = 0;
    this.#messages = [];
  }

  /**
   * The paper's feedback loop (§2.4) "gradually pinpoints the CPU limit that lets the backup
   * match the primary": a proportional-integral controller on the lag, aimed at half the limit.
   * A lag under the setpoint (a healthy pair's, one slice or two) never slows the primary; a short
   * stall of the backup slows it a little while it lasts; a backup slower for good is matched.
   */
  #controlLag(nowMs: number): void {
    const last = this.#lagControlMs;
    this.#lagControlMs = nowMs;
    if (this.#state !== 'replicating') {
      this.#cpuShare = 1;
      this.#lagIntegral = 0;
      return;
    }
    const limit = this.#config.executionLagMsMax;
    // A long gap between looks (a pause of this host) is not the backup's doing: it counts no more
    // than one limit's worth.
    const elapsedMs = last === undefined ? 0 : Math.min(Math.max(0, nowMs - last), limit);
    const error = (this.executionLagMs(nowMs) - limit / 2) / limit;
    this.#lagIntegral = Math.min(
      1 - CPU_SHARE_MIN,
      Math.max(0, this.#lagIntegral + (error * elapsedMs) / LAG_INTEGRAL_MS),
    );
    this.#cpuShare = Math.min(
      1,
      Math.max(CPU_SHARE_MIN, 1 - LAG_PROPORTIONAL_GAIN * error - this.#lagIntegral),
    );
  }
}
