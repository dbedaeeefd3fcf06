import type {
  ArbiterResult,
  FtMessage,
  LogEntry,
  TransferDiskMessage,
  TransferPagesMessage,
  TransferStateMessage,
} from '@ftvm/core';
import { isOwnWin } from './arbiter-request.js';
import type { FtConfig } from './config.js';
import { PeerWatch } from './peer-watch.js';

/**
 * The backup's side of the protocol as an I/O-free state machine (see {@link PrimaryCore} for the
 * style). The backup replays the primary's log on its own machine and never runs past the last
 * logged point; it acknowledges every log message at once with the highest sequence number
 * received (the output rule's half, §2.2; messages taken in one go get one acknowledgement) and,
 * at most every `appliedAckIntervalMs`, how far it executed (the primary's lag control, §2.4).
 * When the primary goes quiet for `failureTimeoutMs` or the channel closes, it asks the arbiter
 * for the next epoch (§2.3): it goes live only when it wins, halts when it loses, and keeps
 * waiting while the arbiter cannot be reached.
 *
 * A backup being cloned first receives pages and the final state (a live state transfer); it
 * follows the log from the transferred position after that.
 */

export type BackupState =
  /** A live state transfer is under way: pages arrive, then the state. */
  | 'receiving-state'
  /** Following the log. */
  | 'replicating'
  /** The primary is suspected failed; the arbiter was asked. */
  | 'suspecting'
  /** Won the arbiter: the driver consumes the rest of the log and goes live. */
  | 'going-live'
  /**
   * The primary said goodbye (it stopped on purpose, or its guest powered off): the driver
   * replays the log it holds to its end, then ends; nothing is asked or sent any more.
   */
  | 'finishing'
  /** Lost the arbiter, diverged, or was told to stop: does nothing more. */
  | 'halted';

/**
 * What the driver must do, in this order: write `pages` into RAM and `diskRuns` to the disk
 * (issued in order, before any write of the replayed guest), then restore `transferState`
 * (a clone's last step), then append `logEntries` to the log the machine follows, then send
 * `messages`, then start `arbiterRequest` (answer with {@link BackupCore.arbiterAnswered}), then
 * act on `goLive` (end the machine's log where it is, run it to there, go live as the primary of
 * `epoch`), `finish` (end the log where it is, run the machine to there, then end: powered off
 * if the guest did, otherwise halted for the reason given) or `halt` (stop; nothing more is sent).
 */
export interface BackupEffects {
  readonly pages: readonly TransferPagesMessage[];
  /** Disk runs of a live state transfer (non-shared disks), to write to this host's copy in order. */
  readonly diskRuns: readonly TransferDiskMessage[];
  readonly transferState: TransferStateMessage | undefined;
  readonly logEntries: readonly LogEntry[];
  readonly messages: readonly FtMessage[];
  readonly arbiterRequest: { readonly fromEpoch: number } | undefined;
  readonly goLive: { readonly epoch: number } | undefined;
  readonly finish: string | undefined;
  readonly halt: string | undefined;
}

export interface BackupStatistics {
  readonly state: BackupState;
  readonly epoch: number;
  readonly receivedSeq: number;
  readonly appliedSeq: number;
  readonly appliedIcount: number;
  readonly logEntriesReceived: number;
  /** Log messages received. */
  readonly logMessagesReceived: number;
  /** Messages sent to the primary (acknowledgements and heartbeats). */
  readonly messagesSent: number;
  readonly pagesReceived: number;
}

export class BackupCore {
  #state: BackupState;
  #epoch: number;
  readonly #config: FtConfig;
  readonly #host: string | undefined;
  /** The next sequence number expected from the primary. */
  #nextSeq: number;
  #appliedSeq: number;
  #appliedIcount = 0;
  #ackedAppliedSeq: number;
  readonly #watch: PeerWatch;
  #lastSentMs: number;
  #lastAppliedAckMs: number;
  #heartbeats = 0;
  #logEntriesReceived = 0;
  #logMessagesReceived = 0;
  #messagesSent = 0;
  #pagesReceived = 0;
  #pages: TransferPagesMessage[] = [];
  #diskRuns: TransferDiskMessage[] = [];
  #transferState: TransferStateMessage | undefined;
  #logEntries: LogEntry[] = [];
  #messages: FtMessage[] = [];
  #arbiterRequest: { fromEpoch: number } | undefined;
  #goLive: { epoch: number } | undefined;
  #finish: string | undefined;
  #halt: string | undefined;

  constructor(options: {
    /** This host's name, as it asks the arbiter (see `PrimaryCore`). */
    readonly host?: string;
    readonly epoch: number;
    readonly config: FtConfig;
    /** True for a clone: pages and state come first. False for a backup that boots with the primary. */
    readonly cloning: boolean;
    /** The first sequence number of the log (0 for a backup that boots with its primary). */
    readonly firstSeq?: number;
    readonly nowMs: number;
  }) {
    this.#epoch = options.epoch;
    this.#config = options.config;
    this.#host = options.host;
    this.#state = options.cloning ? 'receiving-state' : 'replicating';
    this.#nextSeq = options.firstSeq ?? 0;
    this.#appliedSeq = this.#nextSeq - 1;
    this.#ackedAppliedSeq = this.#appliedSeq;
    this.#watch = new PeerWatch(options.config, options.nowMs);
    this.#lastSentMs = options.nowMs;
    this.#lastAppliedAckMs = options.nowMs;
  }

  get state(): BackupState {
    return this.#state;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The highest sequence number received (-1: none). */
  get receivedSeq(): number {
    return this.#nextSeq - 1;
  }

  statistics(): BackupStatistics {
    return {
      state: this.#state,
      epoch: this.#epoch,
      receivedSeq: this.receivedSeq,
      appliedSeq: this.#appliedSeq,
      appliedIcount: this.#appliedIcount,
      logEntriesReceived: this.#logEntriesReceived,
      logMessagesReceived: this.#logMessagesReceived,
      messagesSent: this.#messagesSent,
      pagesReceived: this.#pagesReceived,
    };
  }

  // ---- inputs ----

  messageReceived(message: FtMessage, nowMs: number): void {
    if (this.#doneWithPeer) return;
    this.#watch.heard(nowMs);
    switch (message.type) {
      case 'log':
        this.#receiveLog(message.entries, nowMs);
        break;
      case 'transfer-pages':
        if (this.#state !== 'receiving-state') {
          this.#protocolError('pages outside a state transfer');
          return;
        }
        this.#pages.push(message);
        this.#pagesReceived += message.pageNumbers.length;
        break;
      case 'transfer-disk':
        if (this.#state !== 'receiving-state') {
          this.#protocolError('a disk run outside a state transfer');
          return;
        }
        this.#diskRuns.push(message);
        break;
      case 'transfer-state':
        if (this.#state !== 'receiving-state') {
          this.#protocolError('a state outside a state transfer');
          return;
        }
        this.#transferState = message;
        this.#state = 'replicating';
        this.#nextSeq = message.nextSeq;
        this.#appliedSeq = message.nextSeq - 1;
        this.#ackedAppliedSeq = this.#appliedSeq;
        this.#appliedIcount = message.icount;
        this.#sendAck(nowMs);
        break;
      case 'goodbye':
        // The primary stops on purpose (the guest powered off, or it was stopped): nothing to take
        // over, but the log received before the goodbye is the primary's own run to its end (a
        // guest's power-off included), so it is replayed rather than dropped.
        if (this.#state === 'receiving-state') {
          this.#haltBecause(`the primary said goodbye: ${message.reason}`);
          return;
        }
        this.#state = 'finishing';
        this.#finish = `the primary said goodbye: ${message.reason}`;
        this.#messages = [];
        break;
      default:
        break;
    }
  }

  /**
   * The machine executed up to `appliedSeq` (the last log entry it consumed) and `icount`;
   * `caughtUp` when it consumed all it had (it now waits for more log). A backup that caught up
   * says so at once (it has nothing else to do, and the primary's lag control wants to know);
   * one that is busy catching up says so at most every `appliedAckIntervalMs`.
   */
  sliceDone(appliedSeq: number, icount: number, nowMs: number, caughtUp = false): void {
    if (this.#state === 'halted') return;
    this.#appliedSeq = appliedSeq;
    this.#appliedIcount = icount;
    if (
      this.#state === 'replicating' &&
      appliedSeq !== this.#ackedAppliedSeq &&
      (caughtUp || nowMs - this.#lastAppliedAckMs >= this.#config.appliedAckIntervalMs)
    ) {
      this.#sendAck(nowMs);
    }
  }

  channelClosed(nowMs: number): void {
    if (this.#state === 'finishing') return;
    if (this.#state === 'receiving-state') {
      // A clone that never got the whole state has nothing to go live with.
      this.#haltBecause('the primary went away during the state transfer');
      return;
    }
    if (this.#state === 'replicating') this.#suspect(nowMs);
  }

  tick(nowMs: number): void {
    // Paused ourselves: the silence we would see is our own (the primary gets a fresh timeout).
    this.#watch.noticePause(nowMs);
    if (this.#doneWithPeer) return;
    const silent = this.#watch.isSilent(nowMs);
    if (this.#state === 'receiving-state' && silent) {
      this.#haltBecause('the primary went quiet during the state transfer');
      return;
    }
    if (this.#state === 'replicating' && silent) this.#suspect(nowMs);
    if (this.#state === 'suspecting' && this.#watch.arbiterRequestDue(nowMs)) {
      this.#arbiterRequest = { fromEpoch: this.#epoch };
    }
    if (
      (this.#state === 'replicating' || this.#state === 'receiving-state') &&
      nowMs - this.#lastSentMs >= this.#config.heartbeatIntervalMs
    ) {
      this.#messages.push({ type: 'heartbeat', counter: ++this.#heartbeats });
      this.#lastSentMs = nowMs;
    }
  }

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
    this.#state = 'going-live';
    this.#goLive = { epoch: this.#epoch };
  }

  /** The machine found the log and its own execution disagree: report and stop. */
  diverged(reason: string, nowMs: number): void {
    if (this.#state === 'halted') return;
    // A finishing backup's primary has gone, and one going live won the arbiter over it: there is
    // nobody to tell (a goodbye would let a partitioned primary go on alone without the arbiter).
    if (this.#state !== 'finishing' && this.#state !== 'going-live')
      this.#messages.push({ type: 'goodbye', reason: `the backup diverged: ${reason}` });
    this.#lastSentMs = nowMs;
    this.#haltBecause(`diverged: ${reason}`, true);
  }

  /** The driver stops the backup on purpose. */
  stop(reason: string, nowMs: number): void {
    if (this.#state === 'halted') return;
    if (this.#state !== 'finishing') this.#messages.push({ type: 'goodbye', reason });
    this.#lastSentMs = nowMs;
    this.#state = 'halted';
    this.#logEntries = [];
  }

  takeEffects(): BackupEffects {
    const effects: BackupEffects = {
      pages: this.#pages,
      diskRuns: this.#diskRuns,
      transferState: this.#transferState,
      logEntries: this.#logEntries,
      messages: this.#messages,
      arbiterRequest: this.#arbiterRequest,
      goLive: this.#goLive,
      finish: this.#finish,
      halt: this.#halt,
    };
    this.#messagesSent += this.#messages.length;
    this.#pages = [];
    this.#diskRuns = [];
    this.#transferState = undefined;
    this.#logEntries = [];
    this.#messages = [];
    this.#arbiterRequest = undefined;
    this.#goLive = undefined;
    this.#finish = undefined;
    this.#halt = undefined;
    return effects;
  }

  // ---- internals ----

  /** Halted, going live or finishing: the primary's messages and silence no longer matter. */
  get #doneWithPeer(): boolean {
    return this.#state === 'halted' || this.#state === 'going-live' || this.#state === 'finishing';
  }

  #receiveLog(entries: readonly LogEntry[], nowMs: number): void {
    if (this.#state === 'receiving-state') {
      this.#protocolError('log before the state transfer ended');
      return;
    }
    if (entries.length === 0) return;
    if ((entries[0] as LogEntry).seq !== this.#nextSeq) {
      this.#protocolError(`log entry ${(entries[0] as LogEntry).seq} where ${this.#nextSeq} was due`);
      return;
    }
    for (const entry of entries) this.#logEntries.push(entry);
    this.#nextSeq = (entries[entries.length - 1] as LogEntry).seq + 1;
    this.#logEntriesReceived += entries.length;
    this.#logMessagesReceived++;
    if (this.#state === 'replicating') this.#sendAck(nowMs);
  }

  #sendAck(nowMs: number): void {
    const ack: FtMessage = {
      type: 'ack',
      receivedSeq: this.receivedSeq,
      appliedSeq: this.#appliedSeq,
      appliedIcount: this.#appliedIcount,
    };
    // Acknowledgements are cumulative: one not sent yet says less than this one, which replaces
    // it (log messages that arrived together are acknowledged with one message).
    const last = this.#messages.length - 1;
    if (last >= 0 && (this.#messages[last] as FtMessage).type === 'ack') this.#messages[last] = ack;
    else this.#messages.push(ack);
    this.#ackedAppliedSeq = this.#appliedSeq;
    this.#lastAppliedAckMs = nowMs;
    this.#lastSentMs = nowMs;
  }

  #suspect(nowMs: number): void {
    this.#state = 'suspecting';
    if (this.#watch.suspectedNow(nowMs)) this.#arbiterRequest = { fromEpoch: this.#epoch };
  }

  /** A primary that breaks the protocol is treated as failed: stop listening and suspect it. */
  #protocolError(reason: string): void {
    this.#messages.push({ type: 'goodbye', reason: `protocol error: ${reason}` });
    this.#haltBecause(`protocol error: ${reason}`, true);
  }

  #haltBecause(reason: string, keepMessages = false): void {
    this.#state = 'halted';
    this.#halt = reason;
    this.#logEntries = [];
    if (!keepMessages) this.#messages = [];
  }
}
