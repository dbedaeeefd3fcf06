// What the FT benchmark (ft.ts) and the kv load held for profilers (kv-load.ts) share: the pair's
// limits, the kv VM, and the load itself.
import { summarizeLatencies } from '@ftvm/kv-client';
import { runKvLoad } from '@ftvm/kv-client/node';

/** The pair's limits in the benchmarks. */
export const BENCH_FT_CONFIG = { failureTimeoutMs: 300, heartbeatIntervalMs: 50 };

/**
 * Steps between state-hash checkpoints, as the cluster's hosts and the demo run their pairs (the
 * test cluster's default, 5 M, checks four times as often: a divergence shows sooner in a test).
 */
export const CHECKPOINT_INTERVAL_STEPS = 20_000_000;

/** The kv service's VM, as the benchmarks run it. */
export const KV_VM = {
  image: 'kv' as const,
  diskBytes: 4 * 1024 * 1024,
  checkpointIntervalSteps: CHECKPOINT_INTERVAL_STEPS,
};

/**
 * Closed-loop kv clients (`@ftvm/kv-client`) on the gateway's UDP `port`: each sends its next PUT
 * when the last was answered. Counts the answered ones; latency is from the first send to the
 * answer.
 */
export async function putLoad(port: number, clients: number, durationMs: number) {
  const { history } = await runKvLoad({
    target: { host: '127.0.0.1', port },
    clients,
    durationMs,
    mix: { put: 1 },
    keySpace: 16,
    resetCounters: false,
    finalReads: false,
    timeoutMs: 500,
    retries: 0,
  });
  const answered = history.operations.filter(
    (operation) => operation.response && operation.completedMs !== undefined,
  );
  const latency = summarizeLatencies(
    answered.map((operation) => (operation.completedMs as number) - operation.invokedMs),
  );
  return { answered: answered.length, p50Ms: latency?.p50 ?? Number.NaN, p99Ms: latency?.p99 ?? Number.NaN };
}
