import type { LogEntry } from './log.js';
import type { StateSection } from './snapshot.js';
import type { PlainValue } from './values.js';

/**
 * The replication protocol between a primary and a backup (docs/architecture.md): a handshake, then the log with acknowledgements, heartbeats both ways, and
 * the pages and state of a live state transfer when a new backup is cloned from a running primary.
 *
 * These are the shapes; `@ftvm/log-codec` gives them their bytes (checksummed frames) and
 * `@ftvm/transport` carries them. Every number is a safe integer; sequence numbers count log
 * entries from 0 (see {@link LogEntry.seq}).
 */

/** The version of this protocol; a peer speaking another is refused at the handshake. */
export const FT_PROTOCOL_VERSION = 1;

/** The part a host plays for one VM. */
export type FtRole = 'primary' | 'backup';

/** What each side of a logging channel says first. */
export interface Handshake {
  /** The VM this channel replicates. */
  readonly vmId: string;
  /** The VM's epoch as the sender knows it (see {@link Arbiter}). */
  readonly epoch: number;
  /** The sender's role. */
  readonly role: FtRole;
  /** {@link FT_PROTOCOL_VERSION} of the sender. */
  readonly protocolVersion: number;
  /** A name for the sending host, for logs and the arbiter's owner field. */
  readonly host: string;
}

/** Primary → backup: log entries, in order, consecutive sequence numbers. */
export interface LogMessage {
  readonly type: 'log';
  readonly entries: readonly LogEntry[];
}

/**
 * Backup → primary: how far the backup has the log. `receivedSeq` is the highest sequence number
 * received (all before it too): the output rule releases outputs covered by it. `appliedSeq` and
 * `appliedIcount` say how far the backup has executed: the primary measures execution lag by them.
 * -1 means none yet.
 */
export interface AckMessage {
  readonly type: 'ack';
  readonly receivedSeq: number;
  readonly appliedSeq: number;
  readonly appliedIcount: number;
}

/** Either way, when nothing else was sent for a while: "I am alive". */
export interface HeartbeatMessage {
  readonly type: 'heartbeat';
  /** The sender's own count of heartbeats, for diagnostics. */
  readonly counter: number;
}

/**
 * Primary → new backup during a live state transfer: the contents of some RAM pages (4 KiB each).
 * A page may be sent again in a later round when the guest wrote it meanwhile; the last copy wins.
 */
export interface TransferPagesMessage {
  readonly type: 'transfer-pages';
  /** Page numbers from the start of RAM. */
  readonly pageNumbers: readonly number[];
  /** Their contents, `pageNumbers.length * 4096` bytes. */
  readonly pages: Uint8Array;
}

/**
 * Primary → new backup during a live state transfer, when each host has its own copy of a disk:
 * a run of the disk's bytes. A run may be sent again in a later round when the guest wrote it
 * meanwhile; the last copy wins. Runs the primary finds all zero are not sent (the new backup's
 * copy starts empty).
 */
export interface TransferDiskMessage {
  readonly type: 'transfer-disk';
  /** The disk's device (its bus name, such as `virtio7`). */
  readonly device: string;
  /** Byte offset of the run, a multiple of 512. */
  readonly offset: number;
  /** The bytes, a multiple of 512 long (at most 1 MiB). */
  readonly data: Uint8Array;
}

/**
 * Primary → new backup, the end of a live state transfer: everything but RAM, taken at one step
 * boundary while the primary was stopped, and the sequence number its log continues with. The
 * backup restores it over the pages received and then replays the log from `nextSeq`.
 */
export interface TransferStateMessage {
  readonly type: 'transfer-state';
  readonly icount: number;
  /** The log's next sequence number at that point: the backup's first entry. */
  readonly nextSeq: number;
  readonly cpu: StateSection;
  readonly devices: { readonly [name: string]: StateSection };
  /** The machine's own state (guest time, timers, power state, the image) and configuration. */
  readonly machine: PlainValue;
  readonly config: PlainValue;
}

/** Either way: the sender is closing the channel on purpose (a stop, a halt), and why. */
export interface GoodbyeMessage {
  readonly type: 'goodbye';
  readonly reason: string;
}

/** Every message of the protocol after the handshake. */
export type FtMessage =
  | LogMessage
  | AckMessage
  | HeartbeatMessage
  | TransferPagesMessage
  | TransferDiskMessage
  | TransferStateMessage
  | GoodbyeMessage;

export type FtMessageType = FtMessage['type'];

/**
 * One end of an open, authenticated logging channel (after the handshake). Implemented by
 * `@ftvm/transport` (in-process, TCP, TLS). Messages arrive in the order they were sent, whole and
 * checked; a corrupt or hostile frame closes the channel with an error instead.
 */
export interface LogChannel {
  /** What the peer said in its handshake. */
  readonly peer: Handshake;
  /**
   * Queues a message. Never throws for a closed channel (the message is dropped: a closed channel
   * is reported once, through `onClose`).
   */
  send(message: FtMessage): void;
  /** Bytes queued and not yet handed to the network: the sender's flow control reads it. */
  readonly bufferedBytes: number;
  /** Sets the receiver of messages (one; a later call replaces it). */
  onMessage(listener: (message: FtMessage) => void): void;
  /**
   * Sets what to call once when the channel closes: `error` is undefined for an orderly close by
   * either side, else why (a reset connection, a corrupt frame).
   */
  onClose(listener: (error: Error | undefined) => void): void;
  /** Closes the channel; queued messages are sent first when `flush` is true (the default). */
  close(options?: { flush?: boolean }): void;
  readonly closed: boolean;
}
