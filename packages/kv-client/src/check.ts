/**
 * An independent checker of a kv history (Jepsen-style). It knows only the wire protocol and the
 * service's promises, nothing of ftvm. Every rule is sound: an indeterminate operation (no answer)
 * may have taken effect at any time after it was invoked, or never, and an anomaly is reported only
 * when no such choice explains what the clients saw. See README.md, "The checker's rules".
 */
import { ConfigError } from '@ftvm/core';
import type { HistoryData, KvOperation } from './history.js';
import { type LatencySummary, summarizeLatencies } from './latency.js';
import {
  answerMismatch,
  formatResponse,
  isIntegerText,
  KV_OPS,
  type KvResponse,
  parseResponse,
} from './protocol.js';

/** An acknowledged write whose effect a later read shows was lost (or overwritten by older state). */
export interface LostWrite {
  key: string;
  /** The acknowledged PUT (or DEL, or INCR) whose effect is missing. */
  write: KvOperation;
  /** The first read that started after `write` completed and saw older state. */
  read: KvOperation;
  /** What that read saw: a value, or null for NOTFOUND. */
  observed: string | null;
  /** How many reads witnessed the loss of this write. */
  witnesses: number;
  detail: string;
}

export type IncrAnomalyKind =
  | 'duplicate-result'
  | 'too-many-increments'
  | 'too-few-increments'
  | 'inconsistent'
  | 'not-monotonic'
  | 'not-a-number';

/** A counter whose observed values no exactly-once execution of its INCRs explains. */
export interface IncrAnomaly {
  key: string;
  kind: IncrAnomalyKind;
  /** The operations that show it (the first ones found). */
  operations: KvOperation[];
  /** How many observations (or pairs) showed this kind of anomaly on this key. */
  count: number;
  detail: string;
}

export type ResponseAnomalyKind = 'malformed' | 'unknown-id' | 'conflicting' | 'mismatched';

/** A datagram that is not a correct answer to something the client asked. */
export interface ResponseAnomaly {
  kind: ResponseAnomalyKind;
  client: string;
  id?: number;
  atMs?: number;
  /** The offending datagram (or the recorded answer). */
  text: string;
  /** The operation it answers, when there is one. */
  operation?: KvOperation;
  detail: string;
}

export interface Verdict {
  /** No anomaly of any kind. */
  ok: boolean;
  lostWrites: LostWrite[];
  incrAnomalies: IncrAnomaly[];
  responseAnomalies: ResponseAnomaly[];
  /** Operations in the history. */
  operations: number;
  /** Operations with an answer (OK, NOTFOUND or ERR). */
  acknowledged: number;
  /** Operations without one: they may or may not have taken effect. */
  indeterminate: number;
  /** Answers that were ERR. */
  errors: number;
  /**
   * The visible outage: the longest time during which requests were outstanding without interruption
   * and no answer completed any of them.
   */
  longestGapMs: number;
  /** Latencies (invocation to answer, retries included) of the acknowledged operations. */
  latencyMs: LatencySummary | null;
}

type State = 'ack' | 'err' | 'indeterminate';

/** An operation as the state rules see it. */
interface Entry {
  source: KvOperation;
  state: State;
  /** The trusted answer (ack and err only). */
  response?: KvResponse;
  invokedMs: number;
  /** Latest time it can have taken effect, when bounded (ack and err); undefined: any time after invokedMs. */
  endMs?: number;
}

const operationKey = (client: string, id: number) => `${client}\u0000${id}`;
const describe = (operation: KvOperation) =>
  `${operation.op} ${operation.key}${operation.value === undefined ? '' : ` ${operation.value}`} (${operation.client}#${operation.id})`;

/** Throws a ConfigError when `data` is not a history a recorder could have written. */
function validate(data: HistoryData): Map<string, KvOperation> {
  const byId = new Map<string, KvOperation>();
  for (const operation of data.operations) {
    const where = `kv history: operation ${operation.client}#${operation.id}`;
    if (!KV_OPS.includes(operation.op)) throw new ConfigError(`${where}: unknown op ${operation.op}`);
    if (!Number.isFinite(operation.invokedMs)) throw new ConfigError(`${where}: no invocation time`);
    if ((operation.response === undefined) !== (operation.completedMs === undefined))
      throw new ConfigError(`${where}: a response needs a completion time and vice versa`);
    if (operation.completedMs !== undefined && !(operation.completedMs >= operation.invokedMs))
      throw new ConfigError(`${where}: completed before it was invoked`);
    if (operation.response !== undefined && operation.response.id !== operation.id)
      throw new ConfigError(`${where}: answered for id ${operation.response.id}`);
    const key = operationKey(operation.client, operation.id);
    if (byId.has(key)) throw new ConfigError(`${where}: the id is used twice by one client`);
    byId.set(key, operation);
  }
  return byId;
}

/** Checks the answers themselves; returns the anomalies and the operations whose answer is untrusted. */
function checkResponses(data: HistoryData, byId: Map<string, KvOperation>) {
  const anomalies: ResponseAnomaly[] = [];
  const untrusted = new Set<string>();
  const answers = new Map<string, string>(); // the first answer to each (client, id)
  const others = new Set<string>(); // further, different answers already reported
  const mismatchReported = new Set<string>();
  const noteAnswer = (key: string, operation: KvOperation, response: KvResponse, atMs?: number) => {
    const text = formatResponse(response);
    const first = answers.get(key);
    if (first === undefined) {
      answers.set(key, text);
    } else if (first !== text && !others.has(`${key}\u0000${text}`)) {
      others.add(`${key}\u0000${text}`);
      untrusted.add(key);
      anomalies.push({
        kind: 'conflicting',
        client: operation.client,
        id: operation.id,
        ...(atMs === undefined ? {} : { atMs }),
        text,
        operation,
        detail: `${describe(operation)} answered both ${JSON.stringify(first)} and ${JSON.stringify(text)}`,
      });
    }
    if (first === text) return; // already judged
    const mismatch = answerMismatch(operation.op, response);
    if (mismatch !== undefined && !mismatchReported.has(`${key}\u0000${text}`)) {
      mismatchReported.add(`${key}\u0000${text}`);
      untrusted.add(key);
      anomalies.push({
        kind: 'mismatched',
        client: operation.client,
        id: operation.id,
        ...(atMs === undefined ? {} : { atMs }),
        text,
        operation,
        detail: `${describe(operation)}: ${mismatch} (${JSON.stringify(text)})`,
      });
    }
  };
  for (const operation of data.operations) {
    if (operation.response !== undefined)
      noteAnswer(
        operationKey(operation.client, operation.id),
        operation,
        operation.response,
        operation.completedMs,
      );
  }
  const datagrams = [...data.datagrams].sort((a, b) => a.atMs - b.atMs);
  for (const datagram of datagrams) {
    const parsed = parseResponse(datagram.text);
    if (!parsed.ok) {
      anomalies.push({
        kind: 'malformed',
        client: datagram.client,
        atMs: datagram.atMs,
        text: datagram.text,
        detail: parsed.reason,
      });
      continue;
    }
    const key = operationKey(datagram.client, parsed.value.id);
    const operation = byId.get(key);
    if (operation === undefined || datagram.atMs < operation.invokedMs) {
      anomalies.push({
        kind: 'unknown-id',
        client: datagram.client,
        id: parsed.value.id,
        atMs: datagram.atMs,
        text: datagram.text,
        detail:
          operation === undefined
            ? `an answer to id ${parsed.value.id}, which ${datagram.client} never sent`
            : `an answer to id ${parsed.value.id} before ${datagram.client} sent it`,
      });
      continue;
    }
    noteAnswer(key, operation, parsed.value, datagram.atMs);
  }
  return { anomalies, untrusted };
}

function entriesOf(data: HistoryData, untrusted: Set<string>): Entry[] {
  return data.operations.map((source) => {
    const response = untrusted.has(operationKey(source.client, source.id)) ? undefined : source.response;
    if (response === undefined) return { source, state: 'indeterminate', invokedMs: source.invokedMs };
    return {
      source,
      state: response.status === 'ERR' ? 'err' : 'ack',
      response,
      invokedMs: source.invokedMs,
      endMs: source.completedMs!,
    };
  });
}

/** Index of the last element of ascending `values` that is < limit (strict) or <= limit; -1 if none. */
function lastBelow(values: readonly number[], limit: number, inclusive: boolean): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    const value = values[middle]!;
    if (value < limit || (inclusive && value === limit)) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}

/** Writes that may explain a read, by invocation time. */
interface CandidateIndex {
  /**
   * True when one of them was sent at or before `sentBy` and did not complete before `notBefore`
   * (or never completed): it may take effect after a write sent at `notBefore` and before the read.
   */
  mayFollow(sentBy: number, notBefore: number): boolean;
}

function candidateIndex(entries: readonly Entry[]): CandidateIndex {
  const sorted = [...entries].sort((a, b) => a.invokedMs - b.invokedMs);
  const invoked = sorted.map((entry) => entry.invokedMs);
  const latestEnd: number[] = [];
  for (const entry of sorted)
    latestEnd.push(Math.max(latestEnd[latestEnd.length - 1] ?? -Infinity, entry.endMs ?? Infinity));
  return {
    mayFollow(sentBy, notBefore) {
      const index = lastBelow(invoked, sentBy, true);
      return index >= 0 && latestEnd[index]! >= notBefore;
    },
  };
}

/** The value an OK answer carries. */
const answerValue = (response: KvResponse) => (response.status === 'OK' ? response.value : undefined);

/** What an acknowledged write leaves in its key: a value, or null (absent). */
function writtenBy(entry: Entry): string | null {
  if (entry.source.op === 'PUT') return entry.source.value!;
  if (entry.source.op === 'INCR') return answerValue(entry.response!) ?? null;
  return null;
}

function checkRegisters(byKey: Map<string, Entry[]>, counters: ReadonlySet<string>): LostWrite[] {
  const lost = new Map<Entry, LostWrite>();
  for (const [key, entries] of byKey) {
    if (counters.has(key)) continue; // the counter rules are stronger there and report it once
    const constraining = entries
      .filter((entry) => entry.state === 'ack' && entry.source.op !== 'GET')
      .sort((a, b) => a.endMs! - b.endMs!);
    if (constraining.length === 0) continue;
    const ends = constraining.map((entry) => entry.endMs!);
    // latest[i]: the write invoked last among constraining[0..i] — the strongest constraint.
    const latest: Entry[] = [];
    for (const entry of constraining) {
      const previous = latest[latest.length - 1];
      latest.push(previous !== undefined && previous.invokedMs >= entry.invokedMs ? previous : entry);
    }
    const byValue = new Map<string, Entry[]>();
    const deletes: Entry[] = [];
    const anyInteger: Entry[] = [];
    for (const entry of entries) {
      const { op } = entry.source;
      if (op === 'DEL') deletes.push(entry);
      else if (op === 'PUT' || (op === 'INCR' && entry.state === 'ack')) {
        const value = op === 'PUT' ? entry.source.value! : answerValue(entry.response!)!;
        const list = byValue.get(value);
        if (list === undefined) byValue.set(value, [entry]);
        else list.push(entry);
      } else if (op === 'INCR') anyInteger.push(entry);
    }
    const deleteIndex = candidateIndex(deletes);
    const integerIndex = candidateIndex(anyInteger);
    const valueIndexes = new Map<string, CandidateIndex>();
    for (const read of entries) {
      if (read.source.op !== 'GET' || read.state !== 'ack') continue;
      const index = lastBelow(ends, read.invokedMs, false);
      if (index < 0) continue;
      const write = latest[index]!;
      const observed = answerValue(read.response!) ?? null;
      // The write's own effect; otherwise a candidate sent before the read completed that did not
      // complete before the write was sent (the write itself is never a candidate for another value).
      if (writtenBy(write) === observed) continue;
      const mayFollow = (candidates: CandidateIndex) => candidates.mayFollow(read.endMs!, write.invokedMs);
      if (observed === null) {
        if (mayFollow(deleteIndex)) continue;
      } else {
        let values = valueIndexes.get(observed);
        if (values === undefined) {
          values = candidateIndex(byValue.get(observed) ?? []);
          valueIndexes.set(observed, values);
        }
        if (mayFollow(values) || (isIntegerText(observed) && mayFollow(integerIndex))) continue;
      }
      const known = lost.get(write);
      if (known !== undefined) {
        known.witnesses++;
        continue;
      }
      const saw = observed === null ? 'NOTFOUND' : JSON.stringify(observed);
      lost.set(write, {
        key,
        write: write.source,
        read: read.source,
        observed,
        witnesses: 1,
        detail: `${describe(read.source)} saw ${saw} after ${describe(write.source)} was acknowledged; no write that can follow it ${observed === null ? 'deletes the key' : `writes ${saw}`}`,
      });
    }
  }
  return [...lost.values()];
}

interface Observation {
  entry: Entry;
  value: number;
  incr: boolean;
  completedMs: number;
}

/** The counter rules; also returns the keys they checked. */
function checkCounters(byKey: Map<string, Entry[]>): { anomalies: IncrAnomaly[]; checked: Set<string> } {
  const anomalies: IncrAnomaly[] = [];
  const checked = new Set<string>();
  for (const [key, entries] of byKey) {
    const incrs = entries.filter((entry) => entry.source.op === 'INCR');
    if (incrs.length === 0) continue;
    if (entries.some((entry) => entry.source.op === 'PUT')) continue; // mixed: the register rules only
    const firstIncrMs = incrs.reduce((least, entry) => Math.min(least, entry.invokedMs), Infinity);
    const deletes = entries.filter((entry) => entry.source.op === 'DEL');
    if (deletes.some((entry) => entry.endMs === undefined || entry.endMs >= firstIncrMs)) continue;
    checked.add(key);
    const resetMs = deletes.reduce((latest, entry) => Math.max(latest, entry.endMs!), -Infinity);
    const startsAbsent = deletes.some((entry) => entry.state === 'ack');
    const invoked = incrs.map((entry) => entry.invokedMs).sort((a, b) => a - b);
    const acknowledgedEnds = incrs
      .filter((entry) => entry.state === 'ack')
      .map((entry) => entry.endMs!)
      .sort((a, b) => a - b);

    const observations: Observation[] = [];
    const notNumbers: Entry[] = [];
    for (const entry of entries) {
      if (entry.state !== 'ack') continue;
      const incr = entry.source.op === 'INCR';
      if (!incr && (entry.source.op !== 'GET' || entry.invokedMs <= resetMs)) continue;
      const text = answerValue(entry.response!) ?? '0';
      if (!isIntegerText(text)) {
        if (startsAbsent || lastBelow(acknowledgedEnds, entry.invokedMs, false) >= 0) notNumbers.push(entry);
        continue;
      }
      const value = Number(text);
      if (!Number.isSafeInteger(value)) continue;
      observations.push({ entry, value, incr, completedMs: entry.endMs! });
    }
    const report = (kind: IncrAnomalyKind, operations: Entry[], count: number, detail: string) =>
      anomalies.push({ key, kind, operations: operations.map((entry) => entry.source), count, detail });
    if (notNumbers.length > 0)
      report(
        'not-a-number',
        notNumbers.slice(0, 1),
        notNumbers.length,
        `${describe(notNumbers[0]!.source)} read ${JSON.stringify(formatResponse(notNumbers[0]!.response!))} from a counter only INCR wrote`,
      );

    // Exactly once: acknowledged INCR results are distinct.
    const byResult = new Map<number, Entry>();
    for (const observation of observations) {
      if (!observation.incr) continue;
      const earlier = byResult.get(observation.value);
      if (earlier === undefined) byResult.set(observation.value, observation.entry);
      else
        report(
          'duplicate-result',
          [earlier, observation.entry],
          1,
          `${describe(earlier.source)} and ${describe(observation.entry.source)} both answered ${observation.value}`,
        );
    }

    // Bounds: after an observation, between `least` and `most` INCRs have been applied.
    let tooMany: { observation: Observation; most: number } | undefined;
    let tooFew: { observation: Observation; least: number } | undefined;
    let tooManyCount = 0;
    let tooFewCount = 0;
    let floor: { observation: Observation; bound: number } | undefined; // initial value >= bound
    let ceiling: { observation: Observation; bound: number } | undefined; // initial value <= bound
    for (const observation of observations) {
      const least =
        lastBelow(acknowledgedEnds, observation.entry.invokedMs, false) + 1 + (observation.incr ? 1 : 0);
      const most = lastBelow(invoked, observation.completedMs, true) + 1;
      if (startsAbsent) {
        if (observation.value > most) {
          tooManyCount++;
          tooMany ??= { observation, most };
        }
        if (observation.value < least) {
          tooFewCount++;
          tooFew ??= { observation, least };
        }
      } else {
        if (floor === undefined || observation.value - most > floor.bound)
          floor = { observation, bound: observation.value - most };
        if (ceiling === undefined || observation.value - least < ceiling.bound)
          ceiling = { observation, bound: observation.value - least };
      }
    }
    if (tooMany !== undefined)
      report(
        'too-many-increments',
        [tooMany.observation.entry],
        tooManyCount,
        `${describe(tooMany.observation.entry.source)} saw ${tooMany.observation.value}, but at most ${tooMany.most} INCRs of ${key} can have been applied by then: an INCR applied more than once`,
      );
    if (tooFew !== undefined)
      report(
        'too-few-increments',
        [tooFew.observation.entry],
        tooFewCount,
        `${describe(tooFew.observation.entry.source)} saw ${tooFew.observation.value}, but at least ${tooFew.least} INCRs of ${key} had been acknowledged by then: an acknowledged INCR was lost`,
      );
    if (floor !== undefined && ceiling !== undefined && floor.bound > ceiling.bound)
      report(
        'inconsistent',
        [floor.observation.entry, ceiling.observation.entry],
        1,
        `${describe(floor.observation.entry.source)} saw ${floor.observation.value} and ${describe(ceiling.observation.entry.source)} saw ${ceiling.observation.value}: no initial value of ${key} explains both with each INCR applied once`,
      );

    // Real-time order: a later observation never sees less (and a later INCR always more).
    const byCompletion = [...observations].sort((a, b) => a.completedMs - b.completedMs);
    const completions = byCompletion.map((observation) => observation.completedMs);
    const highest: Observation[] = [];
    for (const observation of byCompletion) {
      const previous = highest[highest.length - 1];
      highest.push(previous !== undefined && previous.value >= observation.value ? previous : observation);
    }
    let regression: [Observation, Observation] | undefined;
    let regressions = 0;
    for (const observation of observations) {
      const index = lastBelow(completions, observation.entry.invokedMs, false);
      if (index < 0) continue;
      const before = highest[index]!;
      if (before.value > observation.value || (observation.incr && before.value === observation.value)) {
        regressions++;
        regression ??= [before, observation];
      }
    }
    if (regression !== undefined)
      report(
        'not-monotonic',
        [regression[0].entry, regression[1].entry],
        regressions,
        `${describe(regression[1].entry.source)} saw ${regression[1].value} after ${describe(regression[0].entry.source)} had seen ${regression[0].value}`,
      );
  }
  return { anomalies, checked };
}

/** The longest stretch with requests outstanding throughout and no answer completing any of them. */
function longestGap(data: HistoryData): number {
  let endMs = data.endedMs ?? -Infinity;
  if (data.endedMs === undefined) {
    for (const operation of data.operations)
      endMs = Math.max(endMs, operation.completedMs ?? operation.invokedMs);
    for (const datagram of data.datagrams) endMs = Math.max(endMs, datagram.atMs);
  }
  const intervals = data.operations
    .map(
      (operation) =>
        [operation.invokedMs, operation.completedMs ?? Math.max(endMs, operation.invokedMs)] as const,
    )
    .sort((a, b) => a[0] - b[0]);
  const answers = data.operations
    .filter((operation) => operation.completedMs !== undefined)
    .map((operation) => operation.completedMs!)
    .sort((a, b) => a - b);
  let longest = 0;
  let next = 0; // index into answers
  let index = 0;
  while (index < intervals.length) {
    let [start, end] = intervals[index]!;
    index++;
    while (index < intervals.length && intervals[index]![0] <= end) {
      end = Math.max(end, intervals[index]![1]);
      index++;
    }
    while (next < answers.length && answers[next]! < start) next++;
    let last = start;
    while (next < answers.length && answers[next]! <= end) {
      longest = Math.max(longest, answers[next]! - last);
      last = answers[next]!;
      next++;
    }
    longest = Math.max(longest, end - last);
  }
  return longest;
}

/** Checks a history. Throws a ConfigError only for a history no recorder could write. */
export function checkHistory(data: HistoryData): Verdict {
  const byId = validate(data);
  const { anomalies: responseAnomalies, untrusted } = checkResponses(data, byId);
  const entries = entriesOf(data, untrusted);
  const byKey = new Map<string, Entry[]>();
  for (const entry of entries) {
    const list = byKey.get(entry.source.key);
    if (list === undefined) byKey.set(entry.source.key, [entry]);
    else list.push(entry);
  }
  const { anomalies: incrAnomalies, checked: counterKeys } = checkCounters(byKey);
  const lostWrites = checkRegisters(byKey, counterKeys);
  const answered = data.operations.filter((operation) => operation.response !== undefined);
  return {
    ok: lostWrites.length === 0 && incrAnomalies.length === 0 && responseAnomalies.length === 0,
    lostWrites,
    incrAnomalies,
    responseAnomalies,
    operations: data.operations.length,
    acknowledged: answered.length,
    indeterminate: data.operations.length - answered.length,
    errors: answered.filter((operation) => operation.response!.status === 'ERR').length,
    longestGapMs: longestGap(data),
    latencyMs: summarizeLatencies(answered.map((operation) => operation.completedMs! - operation.invokedMs)),
  };
}

/** A few lines for a person: the counts, then every anomaly. */
export function formatVerdict(verdict: Verdict): string {
  const latency = verdict.latencyMs;
  const lines = [
    `${verdict.ok ? 'OK' : 'ANOMALIES'}: ${verdict.operations} operations, ${verdict.acknowledged} acknowledged (${verdict.errors} ERR), ${verdict.indeterminate} indeterminate`,
    `longest gap ${verdict.longestGapMs.toFixed(1)} ms; latency ${latency === null ? 'n/a' : `p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms, max ${latency.max.toFixed(2)} ms`}`,
  ];
  for (const lost of verdict.lostWrites) lines.push(`lost write: ${lost.detail} (${lost.witnesses} reads)`);
  for (const anomaly of verdict.incrAnomalies)
    lines.push(`INCR ${anomaly.kind}: ${anomaly.detail} (${anomaly.count}×)`);
  for (const anomaly of verdict.responseAnomalies) lines.push(`response ${anomaly.kind}: ${anomaly.detail}`);
  return lines.join('\n');
}
