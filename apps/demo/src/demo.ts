import { readFileSync } from 'node:fs';
import { ConfigError } from '@ftvm/core';
import { imagePath } from '@ftvm/guests';
import { checkHistory, type Verdict } from '@ftvm/kv-client';
import { KvClient, startKvLoad } from '@ftvm/kv-client/node';
import { type ClusterEvent, type DemoHost, InProcessCluster } from './cluster.js';
import type { DemoOptions, Fault } from './options.js';
import type {
  DemoReportData,
  HostSample,
  Sample,
  TimelineEvent,
  VerdictCheck,
} from './report/report-data.js';
import { createView, type DemoView } from './view.js';

/** How often the demo samples its hosts and clients. */
export const SAMPLE_INTERVAL_MS = 250;
/** After a failure, the orchestrator waits this long before cloning a new backup. */
export const RESTORE_DELAY_MS = 500;
/** RAM of the demo's guest; a kernel booted through a firmware (Linux) gets more. */
export const DEMO_RAM_BYTES = 32 * 1024 * 1024;
export const DEMO_FIRMWARE_RAM_BYTES = 64 * 1024 * 1024;
/** Its disk. */
export const DEMO_DISK_BYTES = 4 * 1024 * 1024;

export interface DemoResult {
  readonly ok: boolean;
  readonly report: DemoReportData;
  readonly verdict: Verdict | undefined;
}

/**
 * Runs the demo: a fault-tolerant pair serving kv under a client load, the scheduled faults, a new
 * backup cloned after each failure, then an independent verdict over the clients' history.
 */
export async function runDemo(
  options: DemoOptions,
  output: NodeJS.WritableStream = process.stdout,
): Promise<DemoResult> {
  const image = readImage(options.kernel);
  const firmware = options.bios === undefined ? undefined : readImage(options.bios, 'firmware');
  const cluster = new InProcessCluster({
    vmId: 'kv',
    image,
    firmware,
    ramSizeBytes: firmware ? DEMO_FIRMWARE_RAM_BYTES : DEMO_RAM_BYTES,
    diskBytes: DEMO_DISK_BYTES,
    diskMode: options.diskMode,
    transport: options.transport,
    failureTimeoutMs: options.failureTimeoutMs,
    listen: options.listen,
    ...(options.sabotage === undefined ? {} : { sabotage: options.sabotage }),
  });
  const startedAt = new Date();
  const start = performance.now();
  const now = () => performance.now() - start;
  const events: TimelineEvent[] = [];
  const samples: Sample[] = [];
  const view: DemoView = createView(output, options);
  const mark = (kind: string, text: string) => {
    const event = { atMs: Math.round(now()), kind, text };
    events.push(event);
    view.event(event);
  };
  const epochOwners = new Map<number, Set<string>>();
  const failovers: number[] = [];
  const restored: number[] = [];
  let restoring: ReturnType<typeof setTimeout> | undefined;

  /** The orchestrator's one rule: a primary without a backup gets a new one, cloned live. */
  const restoreRedundancy = () => {
    if (restoring || closed) return;
    restoring = setTimeout(async () => {
      restoring = undefined;
      if (closed || !cluster.primary || cluster.backup) return;
      const clone = await cluster.cloneBackup();
      if (clone)
        mark('clone-started', `cloning a new backup onto ${clone.name} from ${cluster.primary?.name}`);
    }, RESTORE_DELAY_MS);
  };

  cluster.onEvent((event: ClusterEvent) => {
    if (event.type === 'ft') {
      const ft = event.event;
      switch (ft.type) {
        case 'arbiter-won': {
          const owners = epochOwners.get(ft.epoch) ?? new Set<string>();
          owners.add(event.host);
          epochOwners.set(ft.epoch, owners);
          mark('note', `${event.host} won the arbiter: epoch ${ft.epoch}`);
          break;
        }
        case 'backup-went-live':
          failovers.push(now());
          mark(
            'go-live',
            `${event.host} went live as the primary of epoch ${ft.epoch} in ${ft.goLiveMs.toFixed(1)} ms`,
          );
          restoreRedundancy();
          break;
        case 'backup-dropped':
          mark('note', `${event.host} goes on alone (epoch ${ft.epoch}): ${ft.reason}`);
          restoreRedundancy();
          break;
        case 'clone-finished':
          restored.push(now());
          mark(
            'clone-finished',
            `redundancy restored: ${ft.pagesSent} pages in ${ft.rounds} round(s), ${ft.totalMs.toFixed(0)} ms in all, primary paused ${ft.pauseMs.toFixed(1)} ms`,
          );
          break;
        case 'primary-halted':
        case 'backup-halted':
          mark('halted', `${event.host} halted: ${ft.reason}`);
          break;
        case 'peer-suspected':
          mark('note', `${event.host} (${ft.role}) suspects its peer; asking the arbiter`);
          break;
        default:
          break;
      }
    } else if (event.type === 'clone-failed') {
      mark('halted', `the clone from ${event.host} failed: ${event.message}`);
    } else if (event.type === 'failed') {
      mark('halted', `${event.host} failed: ${event.message}`);
      restoreRedundancy();
    } else if (event.type === 'ended' && event.end !== 'killed') {
      mark('note', `${event.host} ended (${event.end}${event.detail ? `: ${event.detail}` : ''})`);
      restoreRedundancy();
    }
  });

  let closed = false;
  await cluster.start();
  view.started(cluster.port);
  await cluster.startPair();
  epochOwners.set(1, new Set([cluster.hosts[0]?.name ?? 'host-a']));

  // The clients start once the guest answers (it boots first), so its boot is no outage.
  // An operating system takes longer to boot than a bare-metal guest.
  await waitForService(cluster.port, firmware ? 300_000 : 30_000);
  mark('note', 'the kv service answers; the load starts');
  const durationMs = options.seconds * 1000;
  const load = options.load
    ? startKvLoad({
        target: { host: '127.0.0.1', port: cluster.port },
        clients: options.clients,
        durationMs,
        mix: { get: 4, put: 3, del: 1, incr: 2 },
        keySpace: 16,
        seed: options.seed,
        timeoutMs: Math.max(100, Math.floor(options.failureTimeoutMs / 2)),
        retries: 1000,
      })
    : undefined;

  const timers = options.faults.map((fault) => setTimeout(() => void inject(fault), fault.atMs));
  const inject = async (fault: Fault) => {
    if (fault.kind === 'partition') {
      mark('fault', `partition: the logging channel carries nothing for ${fault.forMs} ms`);
      await cluster.partition(fault.forMs);
      mark('note', 'the partition heals');
      return;
    }
    const target: DemoHost | undefined = fault.target === 'primary' ? cluster.primary : cluster.backup;
    if (!target) {
      mark('note', `no ${fault.target} to ${fault.kind} now`);
      return;
    }
    if (fault.kind === 'kill') {
      mark('fault', `kill ${target.name} (the ${fault.target})`);
      await cluster.kill(target);
      if (fault.target === 'backup') restoreRedundancy();
    } else {
      mark('fault', `pause ${target.name} (the ${fault.target}) for ${fault.forMs} ms`);
      cluster.pause(target, fault.forMs);
    }
  };

  // Sampling and the live view.
  const previous = new Map<string, { icount: number; logBytes: number; atMs: number }>();
  const sample = () => {
    const atMs = Math.round(now());
    const hosts: HostSample[] = cluster.hosts
      .filter((host) => host.alive || previous.has(host.name))
      .map((host) => {
        const figures = host.statistics?.figures ?? {};
        const icount = host.statistics?.icount ?? 0;
        const logBytes = Number(figures.logBytesSent ?? 0);
        const before = previous.get(host.name);
        const seconds = before ? (atMs - before.atMs) / 1000 : 0;
        previous.set(host.name, { icount, logBytes, atMs });
        if (!host.alive) previous.delete(host.name);
        return {
          name: host.name,
          role: host.role,
          epoch: host.epoch,
          mips: before && seconds > 0 ? (icount - before.icount) / seconds / 1e6 : 0,
          executionLagMs: Number(figures.executionLagMs ?? 0),
          logBytesPerSecond: before && seconds > 0 ? Math.max(0, logBytes - before.logBytes) / seconds : 0,
          heldOutputs: Number(figures.heldOutputs ?? 0),
          oldestHeldOutputMs: Number(figures.oldestHeldOutputMs ?? 0),
        };
      });
    const counters = load?.counters();
    const client = {
      opsPerSecond: counters?.recentOpsPerSecond ?? 0,
      latencyP50Ms: counters?.latencyMs?.p50 ?? 0,
      latencyP99Ms: counters?.latencyMs?.p99 ?? 0,
      inFlight: counters?.inFlight ?? 0,
    };
    const entry = { atMs, hosts, client };
    samples.push(entry);
    view.sample(entry);
  };
  const sampler = setInterval(sample, SAMPLE_INTERVAL_MS);

  await new Promise((resolve) => setTimeout(resolve, durationMs));
  closed = true;
  clearInterval(sampler);
  for (const timer of timers) clearTimeout(timer);
  if (restoring) clearTimeout(restoring);
  load?.stop();
  const history = load ? (await load.done).history : undefined;
  const finalRecord = await cluster.arbiter.read('kv');
  await cluster.close();

  const verdict = history ? checkHistory(history) : undefined;
  const checks = verdictChecks(
    verdict,
    epochOwners,
    failovers,
    restored,
    options,
    durationMs,
    finalRecord.epoch,
  );
  const ok = checks.every((check) => check.ok);
  const report: DemoReportData = {
    title: 'ftvm demo: a fault-tolerant kv service',
    command: options.command,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(now()),
    seed: options.seed,
    settings: {
      seconds: options.seconds,
      clients: options.clients,
      kernel: options.kernel ?? 'kv.elf',
      'disk mode': options.diskMode,
      transport: options.transport,
      'failure timeout (ms)': options.failureTimeoutMs,
      faults: options.faults.map(describeFault).join(', ') || 'none',
      'gateway port': cluster.port,
      ...(options.sabotage === undefined
        ? {}
        : { sabotage: `${options.sabotage} (the output rule broken on purpose)` }),
    },
    samples,
    events,
    verdict: { ok, checks },
  };
  view.finished(report);
  return { ok, report, verdict };
}

/** Asks the service until it answers (a GET of a key nobody writes). */
async function waitForService(port: number, timeoutMs: number): Promise<void> {
  const client = await KvClient.open({ target: { host: '127.0.0.1', port }, timeoutMs: 200, retries: 0 });
  const started = performance.now();
  try {
    for (;;) {
      if ((await client.get('demo.ready')) !== undefined) return;
      if (performance.now() - started > timeoutMs)
        throw new ConfigError('the guest did not answer on udp port 5555');
    }
  } finally {
    await client.close();
  }
}

function readImage(file: string | undefined, what: 'kernel' | 'firmware' = 'kernel'): Uint8Array {
  const path = file ?? imagePath('kv');
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new ConfigError(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

export function describeFault(fault: Fault): string {
  const seconds = (ms: number) => `${ms / 1000}s`;
  if (fault.kind === 'partition') return `partition ${seconds(fault.atMs)}+${seconds(fault.forMs)}`;
  if (fault.kind === 'pause') return `pause ${fault.target}@${seconds(fault.atMs)}+${seconds(fault.forMs)}`;
  return `kill ${fault.target}@${seconds(fault.atMs)}`;
}

/** The verdict: what the independent checker found in the clients' history, and the cluster's own rules. */
function verdictChecks(
  verdict: Verdict | undefined,
  epochOwners: ReadonlyMap<number, ReadonlySet<string>>,
  failovers: readonly number[],
  restored: readonly number[],
  options: DemoOptions,
  durationMs: number,
  finalEpoch: number,
): VerdictCheck[] {
  const checks: VerdictCheck[] = [];
  if (verdict) {
    checks.push({
      name: 'acknowledged writes lost',
      ok: verdict.lostWrites.length === 0,
      detail: `${verdict.lostWrites.length} lost of ${verdict.acknowledged} acknowledged operations`,
    });
    checks.push({
      name: 'INCR exactly once',
      ok: verdict.incrAnomalies.length === 0,
      detail:
        verdict.incrAnomalies.length === 0
          ? 'every counter moved once per request'
          : `${verdict.incrAnomalies.length} anomalies`,
    });
    checks.push({
      name: 'answers consistent',
      ok: verdict.responseAnomalies.length === 0,
      detail: `${verdict.responseAnomalies.length} duplicated, mismatched or malformed answers`,
    });
    checks.push({
      name: 'the service answered',
      ok: verdict.acknowledged > 0,
      detail: `${verdict.acknowledged} acknowledged, ${verdict.indeterminate} indeterminate`,
    });
    const outageBoundMs =
      options.failureTimeoutMs +
      1500 +
      Math.max(0, ...options.faults.map((f) => ('forMs' in f ? f.forMs : 0)));
    checks.push({
      name: 'visible outage',
      ok: verdict.longestGapMs <= outageBoundMs,
      detail: `longest gap between replies ${verdict.longestGapMs.toFixed(0)} ms (bound ${outageBoundMs} ms)`,
    });
  }
  const shared = [...epochOwners].filter(([, owners]) => owners.size > 1);
  checks.push({
    name: 'one primary per epoch',
    ok: shared.length === 0,
    detail:
      shared.length === 0
        ? `epochs 1–${finalEpoch}, each won once`
        : shared.map(([epoch, owners]) => `epoch ${epoch}: ${[...owners].join(', ')}`).join('; '),
  });
  // Every failover early enough to be restored before the end must have been followed by a clone.
  const restorable = failovers.filter((at) => at < durationMs - 5000);
  const unrestored = restorable.filter((at) => !restored.some((when) => when > at));
  checks.push({
    name: 'redundancy restored after each failover',
    ok: unrestored.length === 0,
    detail: `${failovers.length} failover(s), ${restored.length} clone(s) finished`,
  });
  return checks;
}
