import { ConfigError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { checkHistory, formatVerdict } from './check.js';
import { History, type HistoryData, historyFromTexts } from './history.js';

/** Rows: [client, request, invokedMs, answer | undefined (indeterminate), completedMs]. */
type Row = readonly [string, string, number, string | undefined, number?];
const check = (...rows: Row[]) => checkHistory(historyFromTexts(rows));

describe('lost writes', () => {
  it('accepts reads of the last acknowledged write, and of writes concurrent with it', () => {
    const verdict = check(
      ['a', '1 PUT k x', 0, '1 OK', 10],
      ['b', '1 PUT k y', 5, '1 OK', 8], // concurrent with a#1: either may be last
      ['c', '1 GET k', 20, '1 OK x', 21],
      ['c', '2 GET k', 22, '2 OK x', 23],
    );
    expect(verdict.ok).toBe(true);
    expect(verdict.lostWrites).toEqual([]);
  });

  it('reports a read that sees a value overwritten by a finished, acknowledged write', () => {
    const verdict = check(
      ['a', '1 PUT k x', 0, '1 OK', 4],
      ['b', '1 PUT k y', 5, '1 OK', 8],
      ['c', '1 GET k', 20, '1 OK x', 21],
      ['c', '2 GET k', 22, '2 OK x', 23],
    );
    expect(verdict.ok).toBe(false);
    expect(verdict.lostWrites).toHaveLength(1);
    expect(verdict.lostWrites[0]).toMatchObject({
      key: 'k',
      write: { client: 'b', id: 1, value: 'y' },
      read: { client: 'c', id: 1 },
      observed: 'x',
      witnesses: 2,
    });
  });

  it('does not report a value an indeterminate write may still have written (a delayed datagram)', () => {
    const verdict = check(
      ['a', '1 PUT k x', 0, undefined], // no answer: may take effect at any time
      ['b', '1 PUT k y', 5, '1 OK', 8],
      ['c', '1 GET k', 20, '1 OK x', 21],
    );
    expect(verdict.lostWrites).toEqual([]);
    expect(verdict.indeterminate).toBe(1);
  });

  it('reports NOTFOUND after an acknowledged PUT unless a DEL can follow it', () => {
    expect(
      check(['a', '1 PUT k x', 0, '1 OK', 2], ['b', '1 GET k', 3, '1 NOTFOUND', 4]).lostWrites,
    ).toHaveLength(1);
    // A DEL that finished before the PUT started cannot explain it.
    expect(
      check(
        ['d', '1 DEL k', 0, '1 OK', 1],
        ['a', '1 PUT k x', 2, '1 OK', 3],
        ['b', '1 GET k', 5, '1 NOTFOUND', 6],
      ).lostWrites,
    ).toHaveLength(1);
    // A concurrent DEL, an indeterminate DEL, even one answered ERR, may have come after.
    for (const del of [
      ['d', '1 DEL k', 1, '1 OK', 4],
      ['d', '1 DEL k', 0, undefined],
      ['d', '1 DEL k', 3, '1 ERR disk write failed', 4],
    ] as Row[])
      expect(
        check(['a', '1 PUT k x', 2, '1 OK', 3], del, ['b', '1 GET k', 5, '1 NOTFOUND', 6]).lostWrites,
      ).toEqual([]);
  });

  it('treats an acknowledged DEL as a write too', () => {
    const verdict = check(
      ['a', '1 PUT k x', 0, '1 OK', 1],
      ['a', '2 DEL k', 2, '2 OK', 3],
      ['b', '1 GET k', 4, '1 OK x', 5],
    );
    expect(verdict.lostWrites.map((lost) => lost.write.op)).toEqual(['DEL']);
  });

  it('constrains nothing when the read overlaps the write (ties included)', () => {
    expect(check(['a', '1 PUT k x', 0, '1 OK', 5], ['b', '1 GET k', 5, '1 NOTFOUND', 6]).ok).toBe(true);
    expect(check(['a', '1 PUT k x', 0, '1 OK', 5], ['b', '1 GET k', 3, '1 NOTFOUND', 9]).ok).toBe(true);
  });

  it('accepts any value before the first acknowledged write (the store may hold older data)', () => {
    expect(check(['b', '1 GET k', 0, '1 OK leftover', 1], ['a', '1 PUT k x', 2, '1 OK', 3]).ok).toBe(true);
  });
});

describe('INCR exactly once', () => {
  const reset: Row = ['a', '1 DEL n', 0, '1 NOTFOUND', 1];

  it('accepts 1, 2, 3 after a reset and a final read within the bounds', () => {
    const verdict = check(
      reset,
      ['a', '2 INCR n', 2, '2 OK 1', 3],
      ['a', '3 INCR n', 4, '3 OK 2', 5],
      ['a', '4 INCR n', 6, undefined], // lost: applied or not
      ['a', '5 INCR n', 30, '5 OK 4', 31],
      ['a', '6 GET n', 40, '6 OK 4', 41],
    );
    expect(verdict.incrAnomalies).toEqual([]);
    expect(verdict.ok).toBe(true);
  });

  it('reports a value that skips (an INCR applied twice)', () => {
    const verdict = check(reset, ['a', '2 INCR n', 2, '2 OK 1', 3], ['a', '3 INCR n', 4, '3 OK 3', 5]);
    expect(verdict.incrAnomalies.map((anomaly) => anomaly.kind)).toEqual(['too-many-increments']);
    expect(verdict.incrAnomalies[0]!.operations[0]).toMatchObject({ id: 3 });
  });

  it('reports two INCRs answered the same value', () => {
    const verdict = check(
      ['a', '1 INCR n', 0, '1 OK 7', 1],
      ['b', '1 INCR n', 0, '1 OK 7', 1], // concurrent, no reset: the initial value is unknown
    );
    expect(verdict.incrAnomalies.map((anomaly) => anomaly.kind)).toEqual(['duplicate-result']);
  });

  it('bounds the final value by acknowledged and indeterminate INCRs', () => {
    const incrs: Row[] = [
      reset,
      ['a', '2 INCR n', 2, '2 OK 1', 3],
      ['a', '3 INCR n', 4, undefined],
      ['a', '4 INCR n', 30, '4 OK 3', 31],
      ['a', '5 INCR n', 32, undefined],
    ];
    const final = (value: string) => check(...incrs, ['b', '1 GET n', 90, `1 OK ${value}`, 91]).incrAnomalies;
    expect(final('3')).toEqual([]);
    expect(final('4')).toEqual([]);
    expect(final('5').map((anomaly) => anomaly.kind)).toEqual(['too-many-increments']);
    expect(final('2').map((anomaly) => anomaly.kind)).toEqual(['not-monotonic']); // 2 acknowledged, but 3 was seen
    expect(final('1').map((anomaly) => anomaly.kind)).toEqual(['too-few-increments', 'not-monotonic']);
    expect(check(...incrs, ['b', '1 GET n', 90, '1 NOTFOUND', 91]).incrAnomalies[0]!.kind).toBe(
      'too-few-increments',
    );
    expect(check(...incrs, ['b', '1 GET n', 90, '1 OK x', 91]).incrAnomalies[0]!.kind).toBe('not-a-number');
  });

  it('without a reset, checks differences only', () => {
    expect(check(['a', '1 INCR n', 0, '1 OK 41', 1], ['a', '2 INCR n', 2, '2 OK 42', 3]).ok).toBe(true);
    const skip = check(['a', '1 INCR n', 0, '1 OK 41', 1], ['a', '2 INCR n', 2, '2 OK 43', 3]);
    expect(skip.incrAnomalies.map((anomaly) => anomaly.kind)).toEqual(['inconsistent']);
  });

  it('leaves keys that PUT also writes to the register rules', () => {
    const verdict = check(
      ['a', '1 PUT n 5', 0, '1 OK', 1],
      ['a', '2 INCR n', 2, '2 OK 6', 3],
      ['a', '3 INCR n', 4, '3 OK 9', 5],
    );
    expect(verdict.incrAnomalies).toEqual([]);
  });
});

describe('answers', () => {
  it('reports malformed datagrams, answers to ids never sent, conflicting and mismatched answers', () => {
    const history: HistoryData = historyFromTexts([
      ['a', '1 PUT k x', 0, '1 OK', 1],
      ['a', '2 GET k', 2, '2 OK x', 3],
      ['a', '3 INCR n', 4, '3 OK', 5], // INCR needs a number
    ]);
    history.datagrams.push(
      { client: 'a', atMs: 6, text: '1 OK' }, // a duplicate of the same answer: fine
      { client: 'a', atMs: 7, text: '2 OK y' }, // another answer to id 2
      { client: 'a', atMs: 8, text: '9 OK' }, // id 9 was never sent by a
      { client: 'b', atMs: 8, text: '1 OK' }, // nor id 1 by b
      { client: 'a', atMs: 9, text: 'garbage' },
    );
    const verdict = checkHistory(history);
    expect(verdict.responseAnomalies.map((anomaly) => [anomaly.kind, anomaly.client, anomaly.id])).toEqual([
      ['mismatched', 'a', 3],
      ['conflicting', 'a', 2],
      ['unknown-id', 'a', 9],
      ['unknown-id', 'b', 1],
      ['malformed', 'a', undefined],
    ]);
    expect(verdict.ok).toBe(false);
  });

  it('reports an answer that came before its request was sent', () => {
    const history = historyFromTexts([['a', '5 GET k', 10, '5 NOTFOUND', 11]]);
    history.datagrams.push({ client: 'a', atMs: 2, text: '5 NOTFOUND' });
    expect(checkHistory(history).responseAnomalies.map((anomaly) => anomaly.kind)).toEqual(['unknown-id']);
  });

  it('does not trust an operation whose answers conflict', () => {
    const history = historyFromTexts([
      ['a', '1 PUT k x', 0, '1 OK', 1],
      ['a', '2 PUT k y', 2, '2 OK', 3],
      ['b', '1 GET k', 4, '1 OK x', 5],
    ]);
    history.datagrams.push({ client: 'a', atMs: 6, text: '2 ERR store full' });
    const verdict = checkHistory(history);
    expect(verdict.lostWrites).toEqual([]); // a#2 may not have happened after all…
    expect(verdict.responseAnomalies.map((anomaly) => anomaly.kind)).toEqual(['conflicting']); // …which is reported
  });
});

describe('counts, gaps and latency', () => {
  it('counts operations and measures the longest stretch without an answer', () => {
    const history = historyFromTexts([
      ['a', '1 GET k', 0, '1 NOTFOUND', 2],
      ['a', '2 GET k', 3, undefined], // timed out after retries
      ['a', '3 GET k', 10, '3 NOTFOUND', 40], // the outage: 2 → 40 with requests outstanding but for 2..3
      ['b', '1 GET k', 35, '1 ERR store full', 41],
      ['a', '4 GET k', 50, '4 NOTFOUND', 51], // idle from 41 to 50: not an outage
    ]);
    history.endedMs = 60;
    const verdict = checkHistory(history);
    expect(verdict).toMatchObject({ operations: 5, acknowledged: 4, indeterminate: 1, errors: 1 });
    expect(verdict.longestGapMs).toBe(37); // from 3 (a#2 sent) to 40
    expect(verdict.latencyMs).toEqual({ count: 4, p50: 2, p90: 30, p99: 30, max: 30 });
    expect(formatVerdict(verdict)).toContain('OK: 5 operations, 4 acknowledged (1 ERR), 1 indeterminate');
  });

  it('counts an outage that lasts to the end of the history', () => {
    const history = historyFromTexts([
      ['a', '1 GET k', 0, '1 NOTFOUND', 1],
      ['a', '2 GET k', 2, undefined],
    ]);
    history.endedMs = 100;
    expect(checkHistory(history).longestGapMs).toBe(98);
    expect(checkHistory({ operations: [], datagrams: [] })).toMatchObject({
      ok: true,
      longestGapMs: 0,
      latencyMs: null,
    });
  });

  it('refuses a history no recorder could write', () => {
    const twice = historyFromTexts([
      ['a', '1 GET k', 0, '1 NOTFOUND', 1],
      ['a', '1 GET k', 2, '1 NOTFOUND', 3],
    ]);
    expect(() => checkHistory(twice)).toThrow(ConfigError);
    const backwards = historyFromTexts([['a', '1 GET k', 5, '1 NOTFOUND', 1]]);
    expect(() => checkHistory(backwards)).toThrow(ConfigError);
  });

  it('round-trips a History through JSON', () => {
    const history = new History();
    const operation = history.invoke('a', { id: 1, op: 'PUT', key: 'k', value: 'v' }, 0);
    history.receive('a', '1 OK', 2);
    history.complete(operation, { id: 1, status: 'OK' }, 2);
    history.end(3);
    const copy = History.from(JSON.parse(JSON.stringify(history)));
    expect(copy.toJSON()).toEqual(history.toJSON());
    expect(checkHistory(copy)).toEqual(checkHistory(history));
  });
});
