/**
 * Test support (not exported): simulates clients against the reference store with delays and lost
 * datagrams, and records the history they would see. Each operation takes effect at one instant
 * between its invocation and its answer, so the history is linearizable by construction — unless a
 * fault that breaks the service's promises is injected.
 */
import type { HistoryData, KvOperation, ReceivedDatagram } from './history.js';
import { formatResponse, type KvOpName, type KvRequest, type KvResponse } from './protocol.js';
import { KvReferenceStore } from './reference.js';

export type NetworkFault = 'none' | 'lost-reply' | 'lost-request' | 'duplicate-reply';
/** Faults of the service itself (a correct service never shows them). */
export type ServiceFault = 'none' | 'double-apply' | 'forget';

export interface PlannedOp {
  client: number;
  /** INCR on the client's own counter, or on a shared key with `INCR-shared`. */
  kind: KvOpName | 'INCR-shared';
  key: number;
  thinkMs: number;
  applyDelayMs: number;
  replyDelayMs: number;
  fault: NetworkFault;
  service?: ServiceFault;
}

export interface Simulated {
  history: HistoryData;
  /** End of everything (the last answer of the final reads). */
  endMs: number;
}

export const sharedKey = (index: number) => `k${index}`;
export const counterKey = (client: number) => `n${client}`;

interface Timed {
  operation: KvOperation;
  request: KvRequest;
  applyAt?: number;
  service: ServiceFault;
  replied: boolean;
  duplicate: boolean;
  order: number;
}

const TIMEOUT_MS = 20;

/**
 * Runs `plan` with `clients` clients on `keys` shared keys: every client first DELs its counter,
 * then runs its planned operations one at a time, then (after everything has settled) reads its
 * counter and client 0 reads every shared key.
 */
export function simulate(clients: number, keys: number, plan: readonly PlannedOp[]): Simulated {
  const store = new KvReferenceStore();
  const timed: Timed[] = [];
  const nextId = Array.from({ length: clients }, () => 1);
  const clock = Array.from({ length: clients }, () => 0);
  let order = 0;
  const schedule = (
    client: number,
    request: Omit<KvRequest, 'id'>,
    step: Omit<PlannedOp, 'client' | 'kind' | 'key'>,
  ) => {
    const id = nextId[client]!++;
    const full: KvRequest = { id, ...request };
    const invokedMs = clock[client]! + step.thinkMs;
    const operation: KvOperation = { client: `c${client}`, id, op: request.op, key: request.key, invokedMs };
    if (request.value !== undefined) operation.value = request.value;
    const applied = step.fault !== 'lost-request';
    const applyAt = invokedMs + step.applyDelayMs;
    const replied = step.fault === 'none' || step.fault === 'duplicate-reply';
    const entry: Timed = {
      operation,
      request: full,
      service: step.service ?? 'none',
      replied,
      duplicate: step.fault === 'duplicate-reply',
      order: order++,
    };
    if (applied) entry.applyAt = applyAt;
    if (replied) operation.completedMs = applyAt + step.replyDelayMs;
    clock[client] = replied ? operation.completedMs! : invokedMs + TIMEOUT_MS;
    timed.push(entry);
  };
  const calm = { thinkMs: 1, applyDelayMs: 1, replyDelayMs: 1, fault: 'none' as const };
  for (let client = 0; client < clients; client++)
    schedule(client, { op: 'DEL', key: counterKey(client) }, calm);
  for (const step of plan) {
    const client = step.client % clients;
    const key = sharedKey(step.key % keys);
    if (step.kind === 'INCR') schedule(client, { op: 'INCR', key: counterKey(client) }, step);
    else if (step.kind === 'INCR-shared') schedule(client, { op: 'INCR', key }, step);
    else if (step.kind === 'PUT')
      schedule(client, { op: 'PUT', key, value: `v${client}.${nextId[client]}` }, step);
    else schedule(client, { op: step.kind, key }, step);
  }
  // Final reads, after every planned operation has taken effect (or never will).
  let settled = Math.max(0, ...clock);
  for (const entry of timed)
    settled = Math.max(settled, entry.applyAt ?? 0, entry.operation.completedMs ?? 0);
  settled += 10;
  clock.fill(settled);
  for (let client = 0; client < clients; client++)
    schedule(client, { op: 'GET', key: counterKey(client) }, calm);
  for (let key = 0; key < keys; key++) schedule(0, { op: 'GET', key: sharedKey(key) }, calm);

  // Apply in effect order and answer.
  const effects = timed.filter((entry) => entry.applyAt !== undefined);
  effects.sort((a, b) => a.applyAt! - b.applyAt! || a.order - b.order);
  const responses = new Map<Timed, KvResponse>();
  for (const entry of effects) {
    if (entry.service === 'forget') {
      // Answers as if applied, then loses the effect.
      const before = store.data.get(entry.request.key);
      responses.set(entry, store.apply(entry.request));
      if (before === undefined) store.data.delete(entry.request.key);
      else store.data.set(entry.request.key, before);
      continue;
    }
    responses.set(entry, store.apply(entry.request));
    if (entry.service === 'double-apply') store.apply(entry.request);
  }
  const datagrams: ReceivedDatagram[] = [];
  let endMs = 0;
  for (const entry of timed) {
    const { operation } = entry;
    endMs = Math.max(endMs, operation.completedMs ?? operation.invokedMs);
    if (!entry.replied) continue;
    const response = responses.get(entry)!;
    operation.response = response;
    const text = formatResponse(response);
    datagrams.push({ client: operation.client, atMs: operation.completedMs!, text });
    if (entry.duplicate) datagrams.push({ client: operation.client, atMs: operation.completedMs! + 3, text });
  }
  return {
    history: { operations: timed.map((entry) => entry.operation), datagrams, endedMs: endMs + 5 },
    endMs,
  };
}

/** Appends operations answered as given, one after the other, after `afterMs`. */
export function append(
  history: HistoryData,
  afterMs: number,
  rows: readonly { client: string; request: KvRequest; answer: string | undefined }[],
): KvOperation[] {
  let now = afterMs;
  const added: KvOperation[] = [];
  for (const { client, request, answer } of rows) {
    const operation: KvOperation = {
      client,
      id: request.id,
      op: request.op,
      key: request.key,
      invokedMs: now + 1,
    };
    if (request.value !== undefined) operation.value = request.value;
    now += 3;
    if (answer !== undefined) {
      const [, status, ...rest] = answer.split(' ');
      operation.completedMs = now;
      operation.response =
        status === 'NOTFOUND'
          ? { id: request.id, status: 'NOTFOUND' }
          : status === 'ERR'
            ? { id: request.id, status: 'ERR', reason: rest.join(' ') }
            : rest.length === 0
              ? { id: request.id, status: 'OK' }
              : { id: request.id, status: 'OK', value: rest.join(' ') };
      history.datagrams.push({ client, atMs: now, text: answer });
    }
    history.operations.push(operation);
    added.push(operation);
  }
  history.endedMs = Math.max(history.endedMs ?? 0, now + 1);
  return added;
}
