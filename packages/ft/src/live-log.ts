import type { LogEntry, LogSource } from '@ftvm/core';
import { progressMarkAfter } from '@ftvm/core';

/**
 * The log a backup's machine follows while it arrives: entries are appended as log messages come
 * in and handed out once (consumed entries are not kept), and a starved machine is woken when more
 * arrives. `endHere()` closes it where it stands, for go-live.
 */
export class LiveLog implements LogSource {
  #entries: LogEntry[] = [];
  #head = 0;
  #ended = false;
  #listener: (() => void) | undefined;
  #last: LogEntry | undefined;
  #nextSeq: number;
  #baseIcount: number;

  /** `firstSeq`/`baseIcount`: where the log starts (a clone starts at its transfer's position). */
  constructor(firstSeq = 0, baseIcount = 0) {
    this.#nextSeq = firstSeq;
    this.#baseIcount = baseIcount;
  }

  /** Moves the start (a clone learns its position from the transfer's state, before any entry). */
  rebase(firstSeq: number, baseIcount: number): void {
    this.#nextSeq = firstSeq;
    this.#baseIcount = baseIcount;
  }

  append(entries: readonly LogEntry[]): void {
    if (this.#ended || entries.length === 0) return;
    for (const entry of entries) this.#entries.push(entry);
    this.#last = entries[entries.length - 1];
    this.#nextSeq = (this.#last as LogEntry).seq + 1;
    this.#listener?.();
  }

  /**
   * Ends the log where it stands: a progress mark lets the machine run through the step of the
   * last entry received (the point where the primary was last known to be), and no further.
   */
  endHere(): void {
    if (this.#ended) return;
    const mark = this.#last
      ? progressMarkAfter(this.#last)
      : { kind: 'progress' as const, seq: this.#nextSeq, icount: this.#baseIcount };
    this.#entries.push(mark);
    this.#ended = true;
    this.#listener?.();
  }

  /** Entries received and not consumed yet. */
  get pendingEntries(): number {
    return this.#entries.length - this.#head;
  }

  peek(): LogEntry | undefined {
    return this.#entries[this.#head];
  }

  next(): LogEntry | undefined {
    const entry = this.#entries[this.#head];
    if (entry === undefined) return undefined;
    this.#entries[this.#head] = undefined as unknown as LogEntry;
    this.#head++;
    if (this.#head > 4096 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }

  get ended(): boolean {
    return this.#ended && this.#head >= this.#entries.length;
  }

  onAvailable(listener: (() => void) | undefined): void {
    this.#listener = listener;
  }
}
