// The fault-tolerance benchmark: FT on vs FT off, side by side in one run (the machine is shared
// and noisy: only ratios measured together mean something). Hosts are worker threads, the logging
// channel TCP on loopback, clients real UDP through the gateway.
//
//   npm run bench -w @ftvm/ft            (FTVM_BENCH_SECONDS=N to change the window per run,
//                                         FTVM_BENCH_PARTS=kv,failover to run some parts only)
//
// Prints each figure and writes them all to packages/ft/bench/results.json.
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { threadShares } from '../src/node/index.js';
import { Cluster, type ClusterOptions, type Host, until } from '../test/cluster.js';
import { CHECKPOINT_INTERVAL_STEPS, BENCH_FT_CONFIG as config, KV_VM, putLoad } from './kv-put-load.js';

const seconds = Number(process.env.FTVM_BENCH_SECONDS ?? 4);
const results: Record<string, unknown> = { date: new Date().toISOString(), windowSeconds: seconds };
/**
 * Load before each kv measurement, on both sides: the block compiler compiles the request path
 * over the first few seconds, and FT on has two machines (primary and backup) to warm up.
 */
const KV_WARM_UP_MS = 6000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] as number;
}

function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

async function withCluster<T>(options: ClusterOptions, body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const cluster = new Cluster(options);
  await cluster.start();
  try {
    return await body(cluster);
  } finally {
    await cluster.close();
  }
}

/**
 * Statistics arrive every 100 ms in the test cluster: wait this long after a window for the
 * figures that cover its end.
 */
const NEXT_STATISTICS_MS = 150;

/** A share as a percentage, `?` where it is not known. */
const percent = (value: number) => (Number.isNaN(value) ? '?' : `${(value * 100).toFixed(0)} %`);

/** A VM thread over a window: its share of a core, its wait for one, its CPU time. */
interface ThreadWindow {
  readonly cpuShare: number;
  /** Of the window, ready to run but waiting for a core (the machine has more busy threads than cores). */
  readonly runQueueWaitShare: number | undefined;
  readonly cpuMs: number;
}

/** What a VM did over a window. */
interface VmWindow {
  readonly instructions: number;
  readonly wallMs: number;
  /** Undefined where the host cannot say. */
  readonly thread?: ThreadWindow;
}

/**
 * What a VM did between now and when the returned function is called. From the VM's statistics,
 * so the window's edges are as coarse as their interval.
 */
function watchVm(host: Host): () => VmWindow {
  const icount = host.statistics?.icount ?? 0;
  const thread = host.statistics?.thread;
  const startedAt = performance.now();
  return () => {
    const wallMs = performance.now() - startedAt;
    const instructions = (host.statistics?.icount ?? 0) - icount;
    const end = host.statistics?.thread;
    if (!thread || !end) return { instructions, wallMs };
    const shares = threadShares(thread, end, wallMs);
    return {
      instructions,
      wallMs,
      thread: {
        cpuShare: shares.cpu,
        runQueueWaitShare: shares.runQueueWait,
        cpuMs: end.cpuMs - thread.cpuMs,
      },
    };
  };
}

/** A VM thread over a CPU-bound window: its shares, and how fast the guest ran per CPU-second. */
interface CpuBoundThread extends Omit<ThreadWindow, 'cpuMs'> {
  /** Millions of guest instructions per second of the thread's CPU time: speed with a core of its own. */
  readonly mipsPerCpuSecond: number;
}

function cpuBoundThread(window: VmWindow): CpuBoundThread | undefined {
  if (!window.thread || window.thread.cpuMs <= 0) return undefined;
  const { cpuMs, ...shares } = window.thread;
  return { ...shares, mipsPerCpuSecond: window.instructions / (cpuMs * 1000) };
}

/**
 * Guest MIPS of a host over the window (after a warm-up), from its statistics; with its VM thread's
 * figures (and those of `beside`, the backup or a twin).
 */
async function measureMips(
  host: Host,
  beside?: Host,
): Promise<{ mips: number; thread?: CpuBoundThread; besideThread?: CpuBoundThread }> {
  await until('the guest to run', () => (host.statistics?.icount ?? 0) > 0);
  await sleep(1000);
  const measuring = watchVm(host);
  const besideMeasuring = beside ? watchVm(beside) : undefined;
  await sleep(seconds * 1000);
  const measured = measuring();
  const besideMeasured = besideMeasuring?.();
  return {
    mips: measured.instructions / (measured.wallMs * 1000),
    thread: cpuBoundThread(measured),
    besideThread: besideMeasured && cpuBoundThread(besideMeasured),
  };
}

/**
 * Closed-loop kv clients (`@ftvm/kv-client`): each sends the next PUT when the last was answered.
 * Requests per second count the answered ones; latency is from the first send to the answer.
 */
async function kvLoad(
  port: number,
  clients: number,
  durationMs: number,
  vms: { primary?: Host; backup?: Host } = {},
) {
  // CPU time of the whole process (every thread: the hosts, the gateway, the clients).
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  const primaryWatch = vms.primary ? watchVm(vms.primary) : undefined;
  const backupWatch = vms.backup ? watchVm(vms.backup) : undefined;
  const { answered, p50Ms, p99Ms } = await putLoad(port, clients, durationMs);
  const cpu = process.cpuUsage(cpuBefore);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const wallMs = performance.now() - wallBefore;
  if (primaryWatch) await sleep(NEXT_STATISTICS_MS);
  const perRequest = (watch: typeof primaryWatch) => {
    const thread = watch?.().thread;
    if (!thread || answered === 0) return undefined;
    const { cpuMs, ...shares } = thread;
    return { cpuMsPerRequest: cpuMs / answered, ...shares };
  };
  return {
    requestsPerSecond: answered / (durationMs / 1000),
    p50Ms,
    p99Ms,
    /** Cores the process kept busy on average (this machine has os.availableParallelism()). */
    coresBusy: cpuMs / wallMs,
    cpuMsPerRequest: answered > 0 ? cpuMs / answered : Number.NaN,
    /** The VM threads: the primary's (or the standalone VM's) and the backup's. */
    primaryThread: perRequest(primaryWatch),
    backupThread: perRequest(backupWatch),
  };
}

/**
 * Log bytes per second the primary sent during `ms`. Both readings wait for statistics sent after
 * the moment they stand for: a reading taken at once is up to an interval old (the idle figure
 * used to start inside the load before it, and counted ~70 KB of it: 31 KiB/s of "idle" log).
 */
async function logRate(primary: Host, ms: number): Promise<number> {
  const bytes = () => Number(primary.statistics?.figures.logBytesSent ?? 0);
  await sleep(NEXT_STATISTICS_MS);
  const before = bytes();
  const started = performance.now();
  await sleep(ms);
  await sleep(NEXT_STATISTICS_MS);
  return ((bytes() - before) / (performance.now() - started)) * 1000;
}

/**
 * CPU-bound guest throughput, FT on against FT off. On a machine of few cores the backup takes a
 * core the primary would otherwise have had to itself (and shares caches and memory bandwidth with
 * it), which the paper's setup (the backup on another host) does not. So a third configuration
 * runs FT off beside a twin: a second standalone VM running the same image, as busy as a backup.
 * FT on against it is what fault tolerance itself costs; FT on against FT off alone is the goal's
 * figure on this machine.
 */
async function cpuBound(): Promise<void> {
  type Measured = Awaited<ReturnType<typeof measureMips>>;
  const offRuns: Measured[] = [];
  const offBesideTwinRuns: Measured[] = [];
  const onRuns: Measured[] = [];
  const standalone = {
    image: 'bench' as const,
    clock: 'host' as const,
    checkpointIntervalSteps: CHECKPOINT_INTERVAL_STEPS,
  };
  for (let round = 0; round < 2; round++) {
    offRuns.push(await withCluster(standalone, (cluster) => measureMips(cluster.startStandalone())));
    onRuns.push(
      await withCluster({ ...standalone, transport: 'tcp', config }, async (cluster) => {
        const { primary, backup } = await cluster.startPair();
        return measureMips(primary, backup);
      }),
    );
    offBesideTwinRuns.push(
      await withCluster(standalone, (cluster) => {
        const measured = cluster.startStandalone();
        const twin = cluster.startStandalone('host-twin');
        return measureMips(measured, twin);
      }),
    );
  }
  const off = offRuns.map((run) => run.mips);
  const on = onRuns.map((run) => run.mips);
  const offBesideTwin = offBesideTwinRuns.map((run) => run.mips);
  // Speed per CPU-second: what each would do with a core of its own (the paper's two hosts).
  const perCpuSecond = (runs: Measured[], side: 'thread' | 'besideThread') =>
    median(runs.map((run) => run[side]?.mipsPerCpuSecond ?? Number.NaN));
  const share = (runs: Measured[], side: 'thread' | 'besideThread', key: 'cpuShare' | 'runQueueWaitShare') =>
    median(runs.map((run) => run[side]?.[key] ?? Number.NaN));
  const ratio = median(on) / median(off);
  const ratioToTwin = median(on) / median(offBesideTwin);
  const perCpuSecondRatio = perCpuSecond(onRuns, 'thread') / perCpuSecond(offRuns, 'thread');
  results.cpuBound = {
    image: 'bench.elf',
    mipsFtOff: off,
    mipsFtOn: on,
    mipsFtOffBesideTwin: offBesideTwin,
    ratio,
    ratioToFtOffBesideTwin: ratioToTwin,
    threads: { ftOff: offRuns, ftOn: onRuns, ftOffBesideTwin: offBesideTwinRuns },
    mipsPerCpuSecondRatio: perCpuSecondRatio,
  };
  console.log(
    `cpu-bound (bench.elf): FT off ${median(off).toFixed(0)} MIPS, FT on ${median(on).toFixed(0)} MIPS, ratio ${ratio.toFixed(3)}; ` +
      `FT off beside a twin VM ${median(offBesideTwin).toFixed(0)} MIPS, FT on against it ${ratioToTwin.toFixed(3)}`,
  );
  const describe = (runs: Measured[], side: 'thread' | 'besideThread') =>
    `${share(runs, side, 'cpuShare').toFixed(2)} of a core, waited ${percent(share(runs, side, 'runQueueWaitShare'))} for one, ` +
    `${perCpuSecond(runs, side).toFixed(0)} M instructions per CPU-second`;
  console.log(
    `cpu-bound, VM threads: FT off ${describe(offRuns, 'thread')}; FT on: primary ${describe(onRuns, 'thread')}, ` +
      `backup ${describe(onRuns, 'besideThread')}; FT off beside a twin: ${describe(offBesideTwinRuns, 'thread')}`,
  );
  console.log(
    `cpu-bound, FT on / FT off per CPU-second of the VM thread (each side with a core of its own): ${perCpuSecondRatio.toFixed(3)}`,
  );
}

async function kv(): Promise<void> {
  type Load = Awaited<ReturnType<typeof kvLoad>>;
  const rounds: { off: Load; on: Load; offOneClient: Load; onOneClient: Load }[] = [];
  let idleLogBytesPerSecond = 0;
  let loadLogBytesPerSecond = 0;
  for (let round = 0; round < 2; round++) {
    let offOneClient: Load | undefined;
    let onOneClient: Load | undefined;
    const off = await withCluster(KV_VM, async (cluster) => {
      const vm = cluster.startStandalone();
      await kvLoad(cluster.port, 4, KV_WARM_UP_MS); // warm-up: compiled paths
      const measured = await kvLoad(cluster.port, 4, seconds * 1000, { primary: vm });
      offOneClient = await kvLoad(cluster.port, 1, 2000); // latency without queueing
      return measured;
    });
    const on = await withCluster({ ...KV_VM, transport: 'tcp', config }, async (cluster) => {
      const { primary, backup } = await cluster.startPair();
      await kvLoad(cluster.port, 4, KV_WARM_UP_MS);
      idleLogBytesPerSecond = await logRate(primary, 2000);
      const measuring = kvLoad(cluster.port, 4, seconds * 1000, { primary, backup });
      loadLogBytesPerSecond = await logRate(primary, seconds * 1000 - 400);
      const measured = await measuring;
      onOneClient = await kvLoad(cluster.port, 1, 2000);
      return measured;
    });
    rounds.push({ off, on, offOneClient: offOneClient as Load, onOneClient: onOneClient as Load });
  }
  type Pick = 'off' | 'on' | 'offOneClient' | 'onOneClient';
  const rps = (pick: Pick) => median(rounds.map((round) => round[pick].requestsPerSecond));
  const p = (pick: Pick, key: 'p50Ms' | 'p99Ms') => median(rounds.map((round) => round[pick][key]));
  const threadMs = (pick: 'off' | 'on', side: 'primaryThread' | 'backupThread') =>
    median(rounds.map((round) => round[pick][side]?.cpuMsPerRequest ?? Number.NaN));
  const threadWait = (pick: 'off' | 'on', side: 'primaryThread' | 'backupThread') =>
    median(rounds.map((round) => round[pick][side]?.runQueueWaitShare ?? Number.NaN));
  const primaryThreadRatio = threadMs('off', 'primaryThread') / threadMs('on', 'primaryThread');
  results.kv = {
    clients: 4,
    rounds,
    requestsPerSecondRatio: rps('on') / rps('off'),
    addedLatencyP50Ms: p('on', 'p50Ms') - p('off', 'p50Ms'),
    addedLatencyP99Ms: p('on', 'p99Ms') - p('off', 'p99Ms'),
    oneClientAddedLatencyP50Ms: p('onOneClient', 'p50Ms') - p('offOneClient', 'p50Ms'),
    oneClientAddedLatencyP99Ms: p('onOneClient', 'p99Ms') - p('offOneClient', 'p99Ms'),
    primaryThreadCpuMsPerRequestRatio: primaryThreadRatio,
    logBytesPerSecondIdle: idleLogBytesPerSecond,
    logBytesPerSecondUnderLoad: loadLogBytesPerSecond,
  };
  console.log(
    `kv: FT off ${rps('off').toFixed(0)} req/s (p50 ${p('off', 'p50Ms').toFixed(3)} ms, p99 ${p('off', 'p99Ms').toFixed(3)} ms), ` +
      `FT on ${rps('on').toFixed(0)} req/s (p50 ${p('on', 'p50Ms').toFixed(3)} ms, p99 ${p('on', 'p99Ms').toFixed(3)} ms), ratio ${(rps('on') / rps('off')).toFixed(3)}`,
  );
  const cpu = (pick: Pick, key: 'coresBusy' | 'cpuMsPerRequest') =>
    median(rounds.map((round) => round[pick][key]));
  console.log(
    `kv, CPU (all threads, ${availableParallelism()} cores): FT off ${cpu('off', 'coresBusy').toFixed(2)} cores busy, ${cpu('off', 'cpuMsPerRequest').toFixed(3)} ms per request; ` +
      `FT on ${cpu('on', 'coresBusy').toFixed(2)} cores busy, ${cpu('on', 'cpuMsPerRequest').toFixed(3)} ms per request`,
  );
  console.log(
    `kv, VM threads: FT off ${threadMs('off', 'primaryThread').toFixed(3)} ms per request (waited ${percent(threadWait('off', 'primaryThread'))} for a core); ` +
      `FT on: primary ${threadMs('on', 'primaryThread').toFixed(3)} ms (waited ${percent(threadWait('on', 'primaryThread'))}), ` +
      `backup ${threadMs('on', 'backupThread').toFixed(3)} ms (waited ${percent(threadWait('on', 'backupThread'))}); ` +
      `FT off / FT on for the primary's thread (the ratio with cores to spare) ${primaryThreadRatio.toFixed(3)}`,
  );
  console.log(
    `kv, one client (latency without queueing): FT off p50 ${p('offOneClient', 'p50Ms').toFixed(3)} ms p99 ${p('offOneClient', 'p99Ms').toFixed(3)} ms, ` +
      `FT on p50 ${p('onOneClient', 'p50Ms').toFixed(3)} ms p99 ${p('onOneClient', 'p99Ms').toFixed(3)} ms`,
  );
  console.log(
    `log bandwidth: idle ${(idleLogBytesPerSecond / 1024).toFixed(1)} KiB/s, under load ${(loadLogBytesPerSecond / 1024).toFixed(1)} KiB/s`,
  );
}

/**
 * From the fault to the first reply from the new primary, for a client sending every 2 ms. Two
 * faults: the primary's host dies (its TCP connection drops at once, as a crashed process's does),
 * and the primary's host hangs (its thread stands still for 3 s: nothing arrives, nothing
 * closes), which only the failure timeout can detect.
 */
async function failover(): Promise<void> {
  const measured: Record<string, number[]> = { killed: [], paused: [] };
  let spurious = 0;
  for (const fault of ['killed', 'paused'] as const) {
    for (let attempt = 0; (measured[fault]?.length ?? 0) < 3 && attempt < 8; attempt++) {
      const time = await withCluster({ ...KV_VM, transport: 'tcp', config }, async (cluster) => {
        const { primary, backup } = await cluster.startPair();
        await kvLoad(cluster.port, 2, 1500);
        const socket = createSocket('udp4');
        let firstReplyAfterFault: number | undefined;
        let faultAt = Number.POSITIVE_INFINITY;
        socket.on('message', () => {
          const now = performance.now();
          // Only the new primary's replies count: the old one's still on their way when the
          // fault came (a killed thread's last frames) would measure nothing. The backup's
          // went-live event reaches this thread before any reply of the new primary (that
          // crosses the gateway and a UDP socket), so it tells them apart.
          if (
            now > faultAt &&
            firstReplyAfterFault === undefined &&
            backup.events.some((event) => event.type === 'backup-went-live')
          ) {
            firstReplyAfterFault = now;
          }
        });
        let id = 1;
        const sender = setInterval(() => socket.send(`${id++} GET x`, cluster.port, '127.0.0.1'), 2);
        await sleep(300);
        if (primary.events.length > 0 || backup.events.length > 0) {
          // A failover before the fault (a host starved of CPU past the failure timeout on
          // this shared machine): this pair is not the one to measure.
          clearInterval(sender);
          socket.close();
          return undefined;
        }
        faultAt = performance.now();
        if (fault === 'killed') await primary.handle.kill();
        else primary.handle.pause(3000);
        await until('a reply from the new primary', () => firstReplyAfterFault !== undefined, 10_000);
        clearInterval(sender);
        socket.close();
        return (firstReplyAfterFault as number) - faultAt;
      });
      if (time === undefined) spurious++;
      else measured[fault]?.push(time);
    }
  }
  results.failover = {
    failureTimeoutMs: config.failureTimeoutMs,
    killedMs: measured.killed,
    pausedMs: measured.paused,
    medianKilledMs: median(measured.killed ?? []),
    medianPausedMs: median(measured.paused ?? []),
    spuriousFailoversBeforeTheFault: spurious,
  };
  console.log(`failover: ${spurious} pair(s) discarded after a failover before the fault`);
  for (const [fault, times] of Object.entries(measured)) {
    console.log(
      `failover, primary ${fault} (failure timeout ${config.failureTimeoutMs} ms): ${times.map((time) => time.toFixed(0)).join(', ')} ms, median ${median(times).toFixed(0)} ms`,
    );
  }
}

/** A new backup cloned from a running 64 MiB primary under kv load: total time and the primary's pause. */
async function restoreRedundancy(): Promise<void> {
  const reports: Record<string, number | string>[] = [];
  for (const image of ['kv', 'memtouch'] as const) {
    try {
      const report = await withCluster(
        { image, ramSizeBytes: 64 * 1024 * 1024, diskBytes: 4 * 1024 * 1024, transport: 'tcp', config },
        async (cluster) => {
          const primary = await cluster.startAlone();
          await until('the guest to run', () => (primary.statistics?.icount ?? 0) > 0);
          await sleep(image === 'memtouch' ? 4000 : 1000); // memtouch fills its RAM first
          const load = image === 'kv' ? kvLoad(cluster.port, 2, 3000) : sleep(0);
          await cluster.clone(primary, 'host-b', 1);
          await until(
            'the clone to finish',
            () => primary.events.some((event) => event.type === 'clone-finished'),
            30_000,
          );
          await load;
          const finished = primary.events.find((event) => event.type === 'clone-finished');
          return { ...(finished as unknown as Record<string, number>) };
        },
      );
      reports.push({ ...report, image });
      console.log(
        `restore redundancy (${image}, 64 MiB RAM): ${Number(report.totalMs).toFixed(0)} ms in all, primary paused ${Number(report.pauseMs).toFixed(1)} ms, ${report.pagesSent} pages in ${report.rounds} rounds`,
      );
    } catch (error) {
      console.log(`restore redundancy (${image}): skipped: ${(error as Error).message}`);
    }
  }
  results.restoreRedundancy = reports;
}

// FTVM_BENCH_PARTS=kv,failover runs only those parts (cpu, kv, failover, restore).
const parts = new Set((process.env.FTVM_BENCH_PARTS ?? 'cpu,kv,failover,restore').split(','));
if (parts.has('cpu')) await cpuBound();
if (parts.has('kv')) await kv();
if (parts.has('failover')) await failover();
if (parts.has('restore')) await restoreRedundancy();
const out = join(dirname(fileURLToPath(import.meta.url)), 'results.json');
mkdirSync(dirname(out), { recursive: true });
// A run of some parts replaces those parts' figures and keeps the others (each part says when it
// was measured).
let previous: Record<string, unknown> = {};
try {
  previous = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
} catch {
  // No figures yet, or unreadable ones: start afresh.
}
const { date, windowSeconds, ...measured } = results;
const merged: Record<string, unknown> = { ...previous, date, windowSeconds };
for (const [part, figures] of Object.entries(measured)) {
  merged[part] = { measuredAt: date, windowSeconds, figures };
}
writeFileSync(out, `${JSON.stringify(merged, null, 2)}\n`);
console.log(`figures written to ${out}`);
process.exit(0);
