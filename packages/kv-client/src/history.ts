/**
 * A history: every operation the clients invoked (with its answer, if one came) and every datagram
 * they received. Plain data, so it can be saved as JSON, tampered with in a test, and checked later.
 */
import { ConfigError } from '@ftvm/core';
import { type KvOpName, type KvRequest, type KvResponse, parseResponse } from './protocol.js';

/**
 * One operation. Without a `response` it is indeterminate: it may or may not have taken effect, at
 * any time after `invokedMs`. Times are milliseconds on one monotonic clock shared by all clients.
 */
export interface KvOperation {
  /** The client (one UDP socket, so one server-side client) that sent it. */
  client: string;
  /** The request id; a retry reuses it, so (client, id) names one operation. */
  id: number;
  op: KvOpName;
  key: string;
  /** The PUT value. */
  value?: string;
  /** When the first datagram of the request was sent. */
  invokedMs: number;
  /** When the first matching answer arrived. */
  completedMs?: number;
  /** That answer. */
  response?: KvResponse;
  /** Datagrams sent for it (1 + retries). */
  attempts?: number;
}

/** A datagram a client received, parsed or not, matching a request or not. */
export interface ReceivedDatagram {
  client: string;
  atMs: number;
  text: string;
}

/** What {@link checkHistory} reads. */
export interface HistoryData {
  operations: KvOperation[];
  /** Every datagram received; may be empty when only the operations were recorded. */
  datagrams: ReceivedDatagram[];
  /** When recording stopped (the end of the last possible outage); defaults to the last timestamp. */
  endedMs?: number;
}

/** Records a history as clients run. Operations appear in invocation order. */
export class History implements HistoryData {
  readonly operations: KvOperation[] = [];
  readonly datagrams: ReceivedDatagram[] = [];
  endedMs: number | undefined;

  /** Records the invocation of `request` by `client` and returns the (live) operation record. */
  invoke(client: string, request: KvRequest, atMs: number): KvOperation {
    const operation: KvOperation = {
      client,
      id: request.id,
      op: request.op,
      key: request.key,
      invokedMs: atMs,
    };
    if (request.value !== undefined) operation.value = request.value;
    operation.attempts = 0;
    this.operations.push(operation);
    return operation;
  }

  /** Records the answer that completed `operation`. */
  complete(operation: KvOperation, response: KvResponse, atMs: number): void {
    if (operation.response !== undefined)
      throw new ConfigError(`kv: operation ${operation.id} already completed`);
    operation.response = response;
    operation.completedMs = atMs;
  }

  /** Records a received datagram (every one: matching, late, duplicated or garbage). */
  receive(client: string, text: string, atMs: number): void {
    this.datagrams.push({ client, text, atMs });
  }

  /** Marks the end of recording. */
  end(atMs: number): void {
    this.endedMs = atMs;
  }

  /** A deep copy as plain data (what `JSON.stringify` writes). */
  toJSON(): HistoryData {
    return cloneHistory(this);
  }

  /** A History holding a deep copy of `data` (for instance parsed JSON). */
  static from(data: HistoryData): History {
    const history = new History();
    const copy = cloneHistory(data);
    history.operations.push(...copy.operations);
    history.datagrams.push(...copy.datagrams);
    if (copy.endedMs !== undefined) history.endedMs = copy.endedMs;
    return history;
  }
}

/** A deep copy of a history as plain data. */
export function cloneHistory(data: HistoryData): HistoryData {
  const copy: HistoryData = {
    operations: data.operations.map((operation) => ({
      ...operation,
      ...(operation.response === undefined ? {} : { response: { ...operation.response } }),
    })),
    datagrams: data.datagrams.map((datagram) => ({ ...datagram })),
  };
  if (data.endedMs !== undefined) copy.endedMs = data.endedMs;
  return copy;
}

/**
 * Builds history data from datagram texts, as a test would write it by hand:
 * `[client, request text, invokedMs, answer text | undefined, completedMs?]`.
 * The answer is parsed strictly; an unparseable one becomes a received datagram only.
 */
export function historyFromTexts(
  rows: readonly (readonly [string, string, number, string | undefined, number?])[],
): HistoryData {
  const operations: KvOperation[] = [];
  const datagrams: ReceivedDatagram[] = [];
  for (const [client, request, invokedMs, answer, completedMs] of rows) {
    const [idText, op, key, value, ...extra] = request.split(' ');
    if (idText === undefined || op === undefined || key === undefined || extra.length > 0)
      throw new ConfigError(`kv: cannot read request ${JSON.stringify(request)}`);
    const operation: KvOperation = { client, id: Number(idText), op: op as KvOpName, key, invokedMs };
    if (value !== undefined) operation.value = value;
    operations.push(operation);
    if (answer === undefined) continue;
    const atMs = completedMs ?? invokedMs + 1;
    datagrams.push({ client, text: answer, atMs });
    const parsed = parseResponse(answer);
    if (parsed.ok) {
      operation.response = parsed.value;
      operation.completedMs = atMs;
    }
  }
  return { operations, datagrams };
}
