import type { Icount } from './cpu.js';
import type { DeviceEventPayload } from './device.js';
import type { PlainValue } from './values.js';

/**
 * The log: an ordered stream of every non-deterministic input of a run, each entry with a sequence
 * number (from 0, no gaps) and the execution point it belongs to. The same stream feeds a backup
 * over a logging channel and a record file on disk. `icount` never decreases along the stream.
 */
export type LogEntry = EventEntry | NondetEntry | ProgressEntry | CheckpointEntry | StopEntry | OutputEntry;

interface LogEntryBase {
  /** Position in the stream, from 0, without gaps. */
  readonly seq: number;
  readonly icount: Icount;
}

/** An asynchronous input applied between steps: after exactly `icount` steps. */
export interface EventEntry extends LogEntryBase {
  readonly kind: 'event';
  /** The device's name. */
  readonly device: string;
  readonly event: DeviceEventPayload;
}

/** A value the host decided during the instruction at `icount` (the step that read it). */
export interface NondetEntry extends LogEntryBase {
  readonly kind: 'nondet';
  readonly device: string;
  /** What was read (virtio-rng's `entropy`, a sensor's `reading`); a replay checks it. */
  readonly key: string;
  readonly value: PlainValue;
}

/**
 * Nothing else happened up to `icount`: the follower may execute up to here without waiting for
 * more of the log (quiet periods).
 */
export interface ProgressEntry extends LogEntryBase {
  readonly kind: 'progress';
}

/** The machine's state hash after exactly `icount` steps, so a divergence is found, not replayed. */
export interface CheckpointEntry extends LogEntryBase {
  readonly kind: 'checkpoint';
  /** A digest of CPU, RAM and device state; its algorithm is the machine's. */
  readonly stateHash: Uint8Array;
}

/** The guest stopped the machine (power-off) after exactly `icount` steps. */
export interface StopEntry extends LogEntryBase {
  readonly kind: 'stop';
  readonly exitStatus: number;
}

/**
 * An output the guest produced during the step at `icount` (a console byte, a frame). Only
 * recordings made to be checked carry these (record files); a replay then checks that it produces
 * the same outputs in the same order. A logging channel to a backup does not carry them.
 */
export interface OutputEntry extends LogEntryBase {
  readonly kind: 'output';
  readonly device: string;
  /** The output stream, as the device named it (`console`, `frame`). */
  readonly stream: string;
  readonly data: Uint8Array;
}

export type LogEntryKind = LogEntry['kind'];

/** Every entry kind, in a fixed order (codecs number them by it). */
export const LOG_ENTRY_KINDS: readonly LogEntryKind[] = [
  'event',
  'nondet',
  'progress',
  'checkpoint',
  'stop',
  'output',
];

/** Entries consumed while a step executes (rather than applied at a step boundary). */
export function isInStepEntry(entry: LogEntry): entry is NondetEntry | OutputEntry {
  return entry.kind === 'nondet' || entry.kind === 'output';
}

/**
 * The progress mark that ends a log cut short after `last` (a crashed recorder, a dead primary): a
 * follower may run up to it, through the step whose reads and outputs the log holds, and no
 * further.
 */
export function progressMarkAfter(last: LogEntry): ProgressEntry {
  return { kind: 'progress', seq: last.seq + 1, icount: isInStepEntry(last) ? last.icount + 1 : last.icount };
}

/** Receives log entries in order. Implemented by logging channels, record files, in-memory logs. */
export interface LogSink {
  append(entry: LogEntry): void;
  /**
   * True while the sink holds as much as it may (a primary's log buffer waiting for the backup):
   * a machine appending to it stops at the next step boundary and its slice ends `log-full`.
   */
  readonly full?: boolean;
}

/**
 * Gives a follower (backup, replay) the log in order. `peek` returns the next entry without
 * consuming it, or `undefined` when none has arrived yet (a live stream) or the log ended.
 */
export interface LogSource {
  peek(): LogEntry | undefined;
  next(): LogEntry | undefined;
  /** True once no entry will ever arrive again (end of file, closed channel). */
  readonly ended: boolean;
  /**
   * Sets what to call when entries arrive or the log ends (one listener; a later call replaces
   * it), so a follower starved of log sleeps until then instead of polling. Optional: a source
   * without it is polled.
   */
  onAvailable?(listener: (() => void) | undefined): void;
}
