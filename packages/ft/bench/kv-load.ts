// The FT benchmark's kv load held on one VM (a pair, or FT off) for a while, for profilers: it
// prints requests per second, latency and each VM thread's CPU per request, with the VM threads'
// Linux thread ids (to pick them out of `perf script`). docs/benchmarks.md shows it under perf:
//
//   FT=1 CLIENTS=4 LOAD_SECONDS=8 node --perf-basic-prof --import tsx --conditions=@ftvm/source \
//     packages/ft/bench/kv-load.ts            (FT=0: the VM without fault tolerance)
//
// The load starts after WARM_SECONDS (default 6) of warm-up, as the benchmark's does.
import { readdirSync, readFileSync } from 'node:fs';
import { Cluster, type Host } from '../test/cluster.js';
import { BENCH_FT_CONFIG, KV_VM, putLoad } from './kv-put-load.js';

const ft = process.env.FT !== '0';
const clients = Number(process.env.CLIENTS ?? 4);
const seconds = Number(process.env.LOAD_SECONDS ?? 8);
const warmSeconds = Number(process.env.WARM_SECONDS ?? 6);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** This process's thread whose CPU time is closest to what `host` last reported for its VM thread. */
function threadId(host: Host): number | undefined {
  const reported = host.statistics?.thread?.cpuMs;
  if (reported === undefined) return undefined;
  let best: { tid: number; distance: number } | undefined;
  for (const tid of readdirSync('/proc/self/task')) {
    const cpuMs = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
    const distance = Math.abs(cpuMs - reported);
    if (!best || distance < best.distance) best = { tid: Number(tid), distance };
  }
  return best?.tid;
}

const cluster = new Cluster({ ...KV_VM, transport: 'tcp', config: BENCH_FT_CONFIG });
await cluster.start();
try {
  const vms: Host[] = [];
  if (ft) {
    const { primary, backup } = await cluster.startPair();
    vms.push(primary, backup);
  } else {
    const vm = cluster.startStandalone();
    while (vm.statistics === undefined) await sleep(50);
    vms.push(vm);
  }
  await putLoad(cluster.port, clients, warmSeconds * 1000);
  const before = vms.map((vm) => vm.statistics?.thread?.cpuMs ?? Number.NaN);
  const processBefore = process.cpuUsage();
  const measured = await putLoad(cluster.port, clients, seconds * 1000);
  const processCpu = process.cpuUsage(processBefore);
  await sleep(250); // the VMs' next statistics
  const threads = vms.map((vm, index) => ({
    role: ft ? (index === 0 ? 'primary' : 'backup') : 'standalone',
    tid: threadId(vm),
    cpuMsPerRequest:
      ((vm.statistics?.thread?.cpuMs ?? Number.NaN) - (before[index] as number)) / measured.answered,
  }));
  console.log(
    JSON.stringify({
      ft,
      clients,
      requestsPerSecond: Math.round(measured.answered / seconds),
      p50Ms: measured.p50Ms,
      p99Ms: measured.p99Ms,
      // Every thread of the process: the VMs, the gateway and switch, the clients.
      processCpuMsPerRequest: (processCpu.user + processCpu.system) / 1000 / measured.answered,
      threads,
    }),
  );
} finally {
  await cluster.close();
}
