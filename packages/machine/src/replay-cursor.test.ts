import type { LogEntry } from '@ftvm/core';
import { DivergenceError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { MemoryLog, ReplayCursor } from './replay-cursor.js';

const read = (seq: number, icount: number): LogEntry => ({
  kind: 'nondet',
  seq,
  icount,
  device: 'rng',
  key: 'entropy',
  value: seq,
});
const event = (seq: number, icount: number): LogEntry => ({
  kind: 'event',
  seq,
  icount,
  device: 'uart',
  event: { type: 'rx-bytes' },
});

describe('replay cursor', () => {
  it('finds the next boundary past the reads made inside steps, as they are consumed', () => {
    const log = new MemoryLog();
    for (const entry of [read(0, 5), read(1, 9), event(2, 12), read(3, 12), event(4, 30)]) log.append(entry);
    log.close();
    const cursor = new ReplayCursor(log.reader());
    expect(cursor.nextBoundaryIcount()).toBe(12);
    cursor.advance(); // read 0
    cursor.advance(); // read 1
    expect(cursor.nextBoundaryIcount()).toBe(12);
    cursor.advance(); // the event at 12
    expect(cursor.peek()?.seq).toBe(3);
    expect(cursor.nextBoundaryIcount()).toBe(30);
    cursor.advance();
    cursor.advance();
    expect(cursor.nextBoundaryIcount()).toBeUndefined();
    expect(cursor.finished).toBe(true);
  });

  it('waits for more of a live log instead of guessing', () => {
    const log = new MemoryLog();
    log.append(read(0, 5));
    const cursor = new ReplayCursor(log.reader());
    expect(cursor.nextBoundaryIcount()).toBeUndefined();
    expect(cursor.finished).toBe(false);
    log.append(event(1, 8));
    expect(cursor.nextBoundaryIcount()).toBe(8);
  });

  it('refuses a log with a gap in its sequence numbers', () => {
    const log = new MemoryLog();
    log.append(read(0, 5));
    log.append(read(2, 6));
    log.close();
    const cursor = new ReplayCursor(log.reader());
    expect(() => cursor.nextBoundaryIcount()).toThrow(DivergenceError);
  });

  it('keeps finding boundaries after it compacts a long consumed prefix', () => {
    const log = new MemoryLog();
    const reads = 10_000;
    for (let seq = 0; seq < reads; seq++) log.append(read(seq, seq));
    log.append(event(reads, reads));
    log.close();
    const cursor = new ReplayCursor(log.reader());
    for (let seq = 0; seq < reads; seq++) {
      expect(cursor.nextBoundaryIcount()).toBe(reads);
      expect(cursor.peek()?.seq).toBe(seq);
      cursor.advance();
    }
    expect(cursor.peek()?.kind).toBe('event');
  });
});
