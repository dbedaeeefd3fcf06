/** A seeded, closed-loop mixed workload against the kv service, recorded into one History. */
import { ConfigError } from '@ftvm/core';
import { History, type KvOperation } from '../history.js';
import { type LatencySummary, summarizeLatencies } from '../latency.js';
import { isValidKey, type KvOpName } from '../protocol.js';
import { type SeededRandom, seededRandom } from '../random.js';
import { KvClient, type KvTarget } from './client.js';

/** Relative weights of the operations (they need not sum to 1). */
export interface KvLoadMix {
  get: number;
  put: number;
  del: number;
  incr: number;
}

export const DEFAULT_KV_LOAD_MIX: Readonly<KvLoadMix> = { get: 4, put: 3, del: 1, incr: 2 };

export interface KvLoadOptions {
  target: KvTarget;
  /** Concurrent clients, each on its own UDP socket with one request in flight; default 4 (at most 64). */
  clients?: number;
  /** How long the mixed phase runs. */
  durationMs: number;
  /** Operation weights; missing ones are 0 when `mix` is given, else {@link DEFAULT_KV_LOAD_MIX}. */
  mix?: Partial<KvLoadMix>;
  /** How many shared keys PUT, GET and DEL pick from; default 8. */
  keySpace?: number;
  /** Seeds the choice of operations and keys; default 1. */
  seed?: number;
  /** Keys are `<prefix>.k<i>` (shared) and `<prefix>.n<client>` (each client's counter); default `load`. */
  keyPrefix?: string;
  /** PUT values are at least this long (padded with `_`); default 0 (values like `c1.1x2k9a`). */
  valueBytes?: number;
  /** Per-attempt timeout and retries of each client (see KvClient); defaults 250 ms and 4. */
  timeoutMs?: number;
  retries?: number;
  /** First DEL each counter, so the checker knows INCRs start from 0; default true. */
  resetCounters?: boolean;
  /** After the mixed phase, read every counter and shared key once more; default true. */
  finalReads?: boolean;
  /** Called as each operation finishes (answered or indeterminate). */
  onOperation?: (operation: KvOperation, counters: KvLoadCounters) => void;
  /** Ends the mixed phase early. */
  signal?: AbortSignal;
}

/** Live counters of a running load. */
export interface KvLoadCounters {
  elapsedMs: number;
  operations: number;
  acknowledged: number;
  indeterminate: number;
  /** Requests in flight now. */
  inFlight: number;
  /** Finished operations per second since the start. */
  opsPerSecond: number;
  /** Finished operations in the last second (computed when read). */
  recentOpsPerSecond: number;
  /** Latency of the last 1000 acknowledged operations (computed when read). */
  latencyMs: LatencySummary | null;
  /** Answers that contradicted an earlier answer to the same id, as the clients saw them live. */
  contradictions: number;
}

export interface KvLoadResult {
  history: History;
  counters: KvLoadCounters;
  /** The keys used: shared ones and each client's counter. */
  keys: { shared: string[]; counters: string[] };
}

/** A running load. */
export interface KvLoad {
  readonly history: History;
  counters(): KvLoadCounters;
  /** Ends the mixed phase now (the final reads still run). */
  stop(): void;
  readonly done: Promise<KvLoadResult>;
}

const RECENT = 1000;

/** Starts a load; see {@link runKvLoad}. */
export function startKvLoad(options: KvLoadOptions): KvLoad {
  const clientCount = options.clients ?? 4;
  const keySpace = options.keySpace ?? 8;
  const prefix = options.keyPrefix ?? 'load';
  const valueBytes = options.valueBytes ?? 0;
  const mix =
    options.mix === undefined ? DEFAULT_KV_LOAD_MIX : { get: 0, put: 0, del: 0, incr: 0, ...options.mix };
  const weights: [KvOpName, number][] = [
    ['GET', mix.get],
    ['PUT', mix.put],
    ['DEL', mix.del],
    ['INCR', mix.incr],
  ];
  const totalWeight = weights.reduce((sum, [, weight]) => sum + weight, 0);
  if (!Number.isInteger(clientCount) || clientCount < 1 || clientCount > 64)
    throw new ConfigError(`kv load: clients must be 1..64, not ${clientCount}`);
  if (!Number.isInteger(keySpace) || keySpace < 1 || keySpace > 400)
    throw new ConfigError(`kv load: keySpace must be 1..400, not ${keySpace}`);
  if (weights.some(([, weight]) => !(weight >= 0)) || !(totalWeight > 0))
    throw new ConfigError('kv load: mix weights must be >= 0 with a positive sum');
  if (!(options.durationMs >= 0)) throw new ConfigError(`kv load: bad durationMs ${options.durationMs}`);
  if (!Number.isInteger(valueBytes) || valueBytes < 0 || valueBytes > 1024)
    throw new ConfigError(`kv load: valueBytes must be 0..1024, not ${valueBytes}`);
  const shared = Array.from({ length: keySpace }, (_, index) => `${prefix}.k${index}`);
  const counterKeys = Array.from({ length: clientCount }, (_, index) => `${prefix}.n${index}`);
  for (const key of [...shared, ...counterKeys])
    if (!isValidKey(key))
      throw new ConfigError(`kv load: key prefix ${JSON.stringify(prefix)} makes bad keys`);

  const history = new History();
  const origin = performance.now();
  const clock = () => performance.now() - origin;
  const random = seededRandom(options.seed ?? 1);
  const clients: KvClient[] = [];
  const latencies: number[] = [];
  const finishedAt: number[] = [];
  let operations = 0;
  let acknowledged = 0;
  let stopped = false;

  // Cheap to make on every operation: the costlier numbers are getters, computed when read.
  const counters = (): KvLoadCounters => {
    const elapsedMs = clock();
    return {
      elapsedMs,
      operations,
      acknowledged,
      indeterminate: operations - acknowledged,
      inFlight: clients.reduce((sum, client) => sum + client.outstanding, 0),
      opsPerSecond: elapsedMs > 0 ? (operations * 1000) / elapsedMs : 0,
      get recentOpsPerSecond() {
        let recent = 0;
        for (let index = finishedAt.length - 1; index >= 0 && finishedAt[index]! > elapsedMs - 1000; index--)
          recent++;
        return recent;
      },
      get latencyMs() {
        return summarizeLatencies(latencies);
      },
      contradictions: clients.reduce((sum, client) => sum + client.contradictions, 0),
    };
  };

  const finish = (operation: KvOperation) => {
    operations++;
    if (operation.completedMs !== undefined) {
      acknowledged++;
      latencies.push(operation.completedMs - operation.invokedMs);
      if (latencies.length > RECENT) latencies.shift();
    }
    finishedAt.push(clock());
    if (finishedAt.length > 20_000) finishedAt.splice(0, 10_000);
    options.onOperation?.(operation, counters());
  };

  const stop = () => {
    stopped = true;
  };
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted) stop();

  const pickOp = (stream: SeededRandom): KvOpName => {
    let point = stream.float() * totalWeight;
    for (const [op, weight] of weights) {
      if (point < weight) return op;
      point -= weight;
    }
    return weights.filter(([, weight]) => weight > 0).pop()![0];
  };

  const done = (async (): Promise<KvLoadResult> => {
    try {
      for (let index = 0; index < clientCount; index++)
        clients.push(
          await KvClient.open({
            target: options.target,
            name: `c${index}`,
            history,
            clock,
            ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
            ...(options.retries === undefined ? {} : { retries: options.retries }),
          }),
        );
      const run = async (op: KvOpName, client: KvClient, key: string, value?: string) =>
        finish(await client.request(op, key, value));
      if (options.resetCounters ?? true)
        await Promise.all(clients.map((client, index) => run('DEL', client, counterKeys[index]!)));
      const mixedStart = clock();
      await Promise.all(
        clients.map(async (client, index) => {
          const stream = random.fork(index);
          while (!stopped && clock() - mixedStart < options.durationMs) {
            const op = pickOp(stream);
            if (op === 'INCR') {
              await run(op, client, counterKeys[index]!);
              continue;
            }
            const key = shared[stream.below(keySpace)]!;
            if (op !== 'PUT') {
              await run(op, client, key);
              continue;
            }
            const value = `c${index}.${client.nextRequestId.toString(36)}`;
            await run(op, client, key, value.padEnd(valueBytes, '_'));
          }
        }),
      );
      if (options.finalReads ?? true)
        await Promise.all(
          clients.map(async (client, index) => {
            await run('GET', client, counterKeys[index]!);
            for (let key = index; key < keySpace; key += clientCount) await run('GET', client, shared[key]!);
          }),
        );
      return { history, counters: counters(), keys: { shared, counters: counterKeys } };
    } finally {
      options.signal?.removeEventListener('abort', stop);
      history.end(clock());
      await Promise.all(clients.map((client) => client.close()));
    }
  })();
  return { history, counters, stop, done };
}

/**
 * Runs a seeded mixed workload: `clients` clients (one UDP socket each, one request in flight),
 * first a DEL of each client's counter key, then for `durationMs` PUT/GET/DEL on `keySpace` shared
 * keys and INCR on each client's own counter in proportions `mix`, then one GET of every key. PUT
 * values are unique (`c<client>.<request id in base 36>`, ids start at a random point), so a read names the write it saw. Resolves with the
 * recorded History (for {@link checkHistory}) and the final counters.
 */
export function runKvLoad(options: KvLoadOptions): Promise<KvLoadResult> {
  return startKvLoad(options).done;
}
