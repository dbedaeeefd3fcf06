import type { LogEntry, LogSource } from '@ftvm/core';
import { DivergenceError, isInStepEntry } from '@ftvm/core';

/**
 * Reads ahead in the log a replay follows, so the machine knows how far it may run before the next
 * entry that must happen at an exact point (an event, a checkpoint, a stop, a progress mark).
 * Non-deterministic reads and outputs are consumed during execution, in order, by the instruction
 * that makes them.
 *
 * Order within one icount, as the recorder writes it: events (applied at the boundary), then a
 * checkpoint (the state after those events), then the reads made by the next step.
 */
export class ReplayCursor {
  private readonly buffered: LogEntry[] = [];
  private head = 0;
  private expectedSeq = 0;
  private lastIcount = 0;
  /** No boundary entry lies in [head, scanned): the next search starts there (no quadratic scans). */
  private scanned = 0;

  /** `firstSeq`: the sequence number the log starts at (a backup cloned mid-run starts later). */
  constructor(
    private readonly source: LogSource,
    firstSeq = 0,
  ) {
    this.expectedSeq = firstSeq;
  }

  /** The sequence number of the next entry to consume. */
  get nextSeq(): number {
    return this.expectedSeq - (this.buffered.length - this.head);
  }

  /**
   * Starts the log at another sequence number and icount before anything was read (a machine
   * restored from a snapshot follows the log from the snapshot's position).
   */
  rebase(firstSeq: number, icount: number): void {
    if (this.buffered.length > 0 || this.expectedSeq !== this.nextSeq) {
      throw new DivergenceError('missing-entry', icount, 'an unread log', 'a log already being read');
    }
    this.expectedSeq = firstSeq;
    this.lastIcount = icount;
  }

  /** Pulls whatever the source has now. */
  private fill(): void {
    for (;;) {
      const entry = this.source.next();
      if (entry === undefined) return;
      if (entry.seq !== this.expectedSeq) {
        throw new DivergenceError(
          'missing-entry',
          entry.icount,
          `log entry ${this.expectedSeq}`,
          `entry ${entry.seq}`,
          'the log has a gap or is out of order',
        );
      }
      if (!Number.isSafeInteger(entry.icount) || entry.icount < this.lastIcount) {
        throw new DivergenceError(
          'missing-entry',
          this.lastIcount,
          `entries at icount ${this.lastIcount} or later`,
          `entry ${entry.seq} at icount ${entry.icount}`,
          'the log goes back in time',
        );
      }
      this.lastIcount = entry.icount;
      this.expectedSeq++;
      this.buffered.push(entry);
    }
  }

  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.buffered.length) {
      this.buffered.splice(0, this.head);
      this.scanned = Math.max(0, this.scanned - this.head);
      this.head = 0;
    }
  }

  /** The next unconsumed entry, or undefined when none has arrived (or the log ended). */
  peek(): LogEntry | undefined {
    if (this.head >= this.buffered.length) this.fill();
    return this.buffered[this.head];
  }

  /** Consumes the entry `peek` returned. */
  advance(): void {
    this.head++;
    this.compact();
  }

  /**
   * The icount of the next entry that is not a non-deterministic read: the machine may run up to
   * it. Undefined when no such entry has arrived yet.
   */
  nextBoundaryIcount(): number | undefined {
    this.fill();
    for (let index = Math.max(this.head, this.scanned); index < this.buffered.length; index++) {
      const entry = this.buffered[index] as LogEntry;
      if (!isInStepEntry(entry)) {
        this.scanned = index;
        return entry.icount;
      }
    }
    this.scanned = this.buffered.length;
    return undefined;
  }

  /** True when every entry was consumed and none will come. */
  get finished(): boolean {
    return this.peek() === undefined && this.source.ended;
  }

  get ended(): boolean {
    return this.source.ended;
  }
}

/** A log held in memory: a sink for a recording machine and a source for a replaying one. */
export class MemoryLog {
  readonly entries: LogEntry[] = [];
  private closed = false;
  private readonly listeners = new Set<() => void>();

  append(entry: LogEntry): void {
    this.entries.push(entry);
    for (const listener of this.listeners) listener();
  }

  /** Marks the log complete: sources reading it report `ended` once they reach its end. */
  close(): void {
    this.closed = true;
    for (const listener of this.listeners) listener();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A source that reads the entries from the start. */
  reader(): LogSource {
    let position = 0;
    const log = this;
    let current: (() => void) | undefined;
    return {
      onAvailable: (listener) => {
        if (current) log.listeners.delete(current);
        current = listener;
        if (listener) log.listeners.add(listener);
      },
      peek: () => log.entries[position],
      next: () => {
        const entry = log.entries[position];
        // Only past an entry that exists: a live log grows after a reader found its end.
        if (entry !== undefined) position++;
        return entry;
      },
      get ended() {
        return log.closed && position >= log.entries.length;
      },
    };
  }
}
