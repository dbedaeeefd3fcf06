// The nemesis: a real cluster on loopback (orchestrators, three hosts and the gateway as `ftvm`
// processes; with --store etcd also three etcd members and two orchestrators), a kv client load
// through the gateway with a recorded history, and in each trial faults chosen by a seeded PRNG:
// kill -9 of the primary's or the backup's host, of an orchestrator, of an etcd member, SIGSTOP of
// a host for longer than the failure timeout, a partition of the logging channel, and (when the
// hosts' data directories can be tmpfs mounts: root) a full data directory on the primary's or the
// backup's host. After each trial it checks the history (no
// acknowledged write lost, INCR exactly once, per-key linearizable), at most one primary per epoch,
// and that the VM was fault tolerant again within the orchestrator's promise.
//
//   npm run nemesis -- --trials 6 --seed 1 [--store etcd] [--memory 64M] [--results DIR]
//                      [--disk-mode shared|separate] [--faults disk-full,kill-host,…]
//
// One line per trial, then `nemesis: N trials, F failed`; exit status 0 only when F is 0. Each
// failing trial's logs, history (JSON) and observations are kept in DIR/seed-S/trial-K/ (a rerun
// with the same seed replaces them), and the next trial starts on a fresh cluster. The same seed
// gives the same schedule (which role's host, which fault, every delay); which host that role is
// on, and how the cluster reacts, are the run's own.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkHistory, formatVerdict, type HistoryData, seededRandom, type Verdict } from '@ftvm/kv-client';
import { type KvLoad, startKvLoad } from '@ftvm/kv-client/node';
import { Command, InvalidArgumentError } from 'commander';
import {
  ApiClient,
  HOST_LEASE_MS,
  type HostView,
  loadCredentials,
  REDUNDANCY_RESTORED_WITHIN_MS,
} from '../src/index.js';
import { clusterSkipReason, ProcessCluster } from '../test/harness.js';
import { EtcdNodes } from './etcd.js';
import { Observer, type TimelineEntry, type Violation } from './observer.js';
import {
  describeFault,
  FAULT_KINDS,
  type Fault,
  type FaultKind,
  planTrial,
  type ScheduleShape,
  type Step,
  type TrialPlan,
} from './schedule.js';
import { isMounted, TmpfsDataDirs, tmpfsSkipReason, unmountIfMounted } from './tmpfs.js';

/**
 * The orchestrator's promise: after a fault (one host, one orchestrator, one etcd member, or a host
 * and one of the others together), the VM is fault tolerant again within this, counted from the
 * fault.
 */
export const FAULT_TOLERANT_AGAIN_WITHIN_MS = REDUNDANCY_RESTORED_WITHIN_MS;
/** "Fault tolerant again" counts once the view has said so without a break for this long. */
const STABLE_MS = 3_000;
/** Before faults, and after them, the load must see this many more acknowledged operations… */
const PROGRESS_OPS = 100;
/** …within this. */
const PROGRESS_WITHIN_MS = 30_000;
const VM = 'kv';
const HOSTS = ['h1', 'h2', 'h3'];

export interface NemesisOptions {
  readonly trials: number;
  readonly seed: number;
  /** `embedded` (a directory, one orchestrator) or `etcd` (three etcd members, two orchestrators). */
  readonly store?: 'embedded' | 'etcd';
  /** The kv VM's RAM (`ftvm vm create -m`); default 64M. */
  readonly memory?: string;
  /** Failing trials are kept in RESULTS/seed-S/trial-K/; default ./nemesis-results. */
  readonly results?: string;
  /**
   * The kv VM's disk (`ftvm vm create --disk-mode`): `shared` (default; the image is on shared
   * storage, so a full data directory holds only the host's own files) or `separate` (each host
   * keeps its copy in its data directory, where `disk-full` reaches the VM's disk writes).
   */
  readonly diskMode?: 'shared' | 'separate';
  /** Only these fault kinds are drawn (default: all that the cluster allows). */
  readonly faults?: readonly FaultKind[];
  /** Each line of output; default stdout. */
  readonly log?: (line: string) => void;
}

export interface TrialResult {
  readonly trial: number;
  readonly ok: boolean;
  readonly line: string;
  readonly failures: readonly string[];
  /** Where its logs and history are kept (failing trials only). */
  readonly kept?: string;
  /** The faults injected, with the process each hit. */
  readonly faults: readonly {
    readonly kind: FaultKind;
    readonly target?: string;
    readonly detail?: string;
  }[];
  /** The hosts the orchestrator saw alive at the end of the trial. */
  readonly aliveHosts: readonly string[];
}

export interface NemesisResult {
  readonly trials: number;
  readonly failed: number;
  readonly results: readonly TrialResult[];
  /** Where failing trials are kept. */
  readonly resultsDir: string;
  /** Every tmpfs mount point the nemesis made (all unmounted when it returns). */
  readonly mounts: readonly string[];
  /** Why `disk-full` was not injected, when it could not be. */
  readonly diskFullSkipped?: string;
}

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A cluster the nemesis works on: etcd members (etcd mode), the processes, the kv VM, the observer. */
class Deployment {
  readonly dir: string;
  readonly cluster: ProcessCluster;
  readonly etcd: EtcdNodes | undefined;
  readonly observer: Observer;
  /** The hosts' data directories as tmpfs mounts (disk-full faults), when they could be mounted. */
  readonly dataDirs: TmpfsDataDirs | undefined;
  /** Processes the nemesis has taken down on purpose (the supervisor leaves them alone). */
  readonly down = new Set<string>();
  /** Processes that exited by themselves (and were restarted), since the last take. */
  exits: { name: string; status: string; expected: boolean }[] = [];
  port = 0;
  #supervisor: NodeJS.Timeout | undefined;
  #restarting = new Map<string, Promise<unknown>>();
  #stopping = false;

  private constructor(
    dir: string,
    cluster: ProcessCluster,
    etcd: EtcdNodes | undefined,
    dataDirs: TmpfsDataDirs | undefined,
  ) {
    this.dir = dir;
    this.cluster = cluster;
    this.etcd = etcd;
    this.dataDirs = dataDirs;
    this.observer = new Observer(cluster, VM);
  }

  get orchestrators(): number {
    return [...this.cluster.processes.keys()].filter((name) => name.startsWith('orchestrator')).length;
  }

  /** `mounts`: mount each host's data directory on a tmpfs (recorded in `mounted`). */
  static async start(
    store: 'embedded' | 'etcd',
    memory: string,
    diskMode: 'shared' | 'separate',
    mounts: boolean,
    mounted: string[],
  ): Promise<Deployment> {
    const dir = await mkdtemp(join(tmpdir(), 'ftvm-nemesis-'));
    let etcd: EtcdNodes | undefined;
    let cluster: ProcessCluster | undefined;
    const dataDirs = mounts ? new TmpfsDataDirs() : undefined;
    try {
      if (store === 'etcd') etcd = await EtcdNodes.start(dir);
      cluster = new ProcessCluster({
        dir,
        faultInjection: true,
        hosts: HOSTS.length,
        ...(etcd ? { store: etcd.storeUrl, orchestrators: 2 } : {}),
      });
      if (dataDirs) {
        for (const host of HOSTS) {
          const path = cluster.dataDir(host);
          mounted.push(path);
          await dataDirs.mount(path);
        }
      }
      await cluster.start();
      const created = await cluster.createVm(VM, [
        '--memory',
        memory,
        '--drive',
        'size=16M',
        '--disk-mode',
        diskMode,
        '--forward',
        'udp:127.0.0.1:0-:5555',
      ]);
      if (created.status !== 0) throw new Error(`ftvm vm create failed: ${created.stderr || created.stdout}`);
      const deployment = new Deployment(dir, cluster, etcd, dataDirs);
      deployment.port = await cluster.forwardPort(VM);
      deployment.observer.start();
      deployment.#supervisor = setInterval(() => deployment.#supervise(), 250);
      return deployment;
    } catch (error) {
      try {
        await cluster?.stop({ keep: true });
        await etcd?.stop();
      } finally {
        // The processes are gone: nothing holds the mounts any more.
        await dataDirs?.unmountAll(true);
      }
      throw Object.assign(error as Error, { dir });
    }
  }

  /** Restarts processes that exited although the nemesis did not take them down. */
  #supervise(): void {
    if (this.#stopping) return;
    for (const [name, proc] of this.cluster.processes) {
      if (!proc.exited || this.down.has(name) || this.#restarting.has(name)) continue;
      const code = proc.child.exitCode;
      // An orchestrator that lost the leadership exits (75) so that another leads: by design.
      const expected = name.startsWith('orchestrator') && code === 75;
      this.exits.push({ name, status: code === null ? String(proc.child.signalCode) : `${code}`, expected });
      this.#restarting.set(
        name,
        this.cluster
          .restart(name)
          .catch(() => {})
          .finally(() => this.#restarting.delete(name)),
      );
    }
  }

  /** Stops everything; the directory is removed, or moved to `keepAs`. */
  async stop(keepAs?: string): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#supervisor);
    try {
      await Promise.all(this.#restarting.values());
      await this.observer.stop();
      await this.cluster.stop({ keep: true });
      await this.etcd?.stop();
    } finally {
      // On every way out: the hosts are dead, so their data directories can go (kept: copied out).
      await this.dataDirs?.unmountAll(keepAs !== undefined);
    }
    if (keepAs === undefined) {
      await rm(this.dir, { recursive: true, force: true });
      return;
    }
    await moveDir(this.dir, keepAs);
  }
}

/** Moves a directory (copies it when it is on another file system). */
async function moveDir(from: string, to: string): Promise<void> {
  await mkdir(join(to, '..'), { recursive: true });
  try {
    renameSync(from, to);
  } catch {
    await cp(from, to, { recursive: true });
    await rm(from, { recursive: true, force: true });
  }
}

interface TrialRecord {
  failures: string[];
  notes: string[];
  faults: {
    step: number;
    fault: Fault;
    target?: string;
    injectedAtMs: number;
    healedAtMs?: number;
    /** What the fault did (disk-full: the filler's size, and what the host logged about it). */
    detail?: string;
  }[];
  recoveries: { step: number; ms: number | null; lost: boolean }[];
  verdict?: Verdict;
  history?: HistoryData;
  violations: Violation[];
  timeline: TimelineEntry[];
  epochs: { before: number; after: number };
  /** The hosts seen alive at the end. */
  aliveHosts: string[];
  operations?: { total: number; acknowledged: number; indeterminate: number; errors: number };
}

/** Waits until `check` holds, polling; false after `timeoutMs`. */
async function waitFor(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * Waits until the VM is fault tolerant again after a fault injected at `injectedAt` and healed at
 * `healedAt` (performance.now()): the view must say so without a break for STABLE_MS after the
 * orchestrator has surely noticed the fault (its host lease, or the healed process's first
 * report). Resolves with the ms from the fault to the start of that stretch (0 when it never
 * broke), and whether the stretch started after the fault; or null when it did not come within
 * the promise.
 */
async function waitFaultTolerant(
  deployment: Deployment,
  injectedAt: number,
  healedAt: number,
): Promise<{ ms: number; lost: boolean } | null> {
  const noticed = Math.max(healedAt + 500, injectedAt + HOST_LEASE_MS + 1_000);
  const giveUp = Math.max(injectedAt + FAULT_TOLERANT_AGAIN_WITHIN_MS, noticed) + STABLE_MS + 1_000;
  for (;;) {
    const now = performance.now();
    const since = deployment.observer.faultTolerantSince;
    if (since !== undefined && now - Math.max(since, noticed) >= STABLE_MS) {
      return { ms: Math.max(0, since - injectedAt), lost: since > injectedAt };
    }
    if (now > giveUp) return null;
    await sleep(50);
  }
}

/** The host running `role` now (`spare`: the one running neither). */
function hostOf(deployment: Deployment, role: 'primary' | 'backup' | 'spare'): string {
  const view = deployment.observer.view;
  const primary = view?.primary?.host;
  const backup = view?.backup?.host;
  if (role === 'primary' && primary) return primary;
  if (role === 'backup' && backup) return backup;
  const spare = HOSTS.find((host) => host !== primary && host !== backup);
  if (role === 'spare' && spare) return spare;
  throw new Error(
    `the VM has no ${role} now (${JSON.stringify(view?.primary)}, ${JSON.stringify(view?.backup)})`,
  );
}

/** Injects `fault` and heals it (restart, SIGCONT); resolves once healed. */
async function inject(
  deployment: Deployment,
  fault: Fault,
  entry: TrialRecord['faults'][number],
  origin: number,
): Promise<void> {
  const { cluster, etcd } = deployment;
  const takeDown = async (name: string, restartAfterMs: number) => {
    deployment.down.add(name);
    try {
      cluster.kill(name, 'SIGKILL');
      await cluster.exited(name);
      await sleep(restartAfterMs);
      await cluster.restart(name);
    } finally {
      deployment.down.delete(name);
    }
  };
  switch (fault.kind) {
    case 'kill-host':
    case 'kill-orchestrator':
      await takeDown(entry.target as string, fault.restartAfterMs);
      break;
    case 'pause-host': {
      const name = entry.target as string;
      deployment.down.add(name);
      try {
        cluster.pause(name);
        await sleep(fault.pauseMs);
      } finally {
        cluster.resume(name);
        deployment.down.delete(name);
      }
      break;
    }
    case 'partition': {
      // The primary's host holds its proxy of the logging channel (hosts run with --fault-injection).
      // Its address comes from the orchestrator, which a fault of the same step may be killing.
      let host: HostView | undefined;
      // A restarted orchestrator answers before the hosts have registered again: ask until it
      // knows the host (about 10 s at most).
      for (let attempt = 0; host === undefined && attempt < 100; attempt++) {
        try {
          host = (await (await cluster.client()).call<HostView[]>('GET', '/v1/hosts')).find(
            (candidate) => candidate.name === entry.target,
          );
        } catch {
          cluster.forgetClient();
        }
        if (host === undefined) await sleep(100);
      }
      if (!host) throw new Error(`host ${entry.target} is not known`);
      const client = new ApiClient(loadCredentials(cluster.certs, 'operator'), host.address);
      try {
        await client.call('POST', '/v1/faults/partition', { vm: VM, ms: fault.ms });
      } finally {
        client.close();
      }
      await sleep(fault.ms);
      break;
    }
    case 'kill-etcd': {
      if (!etcd) throw new Error('no etcd in this cluster');
      await etcd.kill(entry.target as string);
      await sleep(fault.restartAfterMs);
      await etcd.restart(entry.target as string);
      break;
    }
    case 'disk-full': {
      const dataDirs = deployment.dataDirs;
      if (!dataDirs) throw new Error('disk-full needs the data directories on tmpfs');
      const dir = cluster.dataDir(entry.target as string);
      try {
        const filled = await dataDirs.fill(dir);
        entry.detail = `${(filled.fillerBytes / 2 ** 20).toFixed(1)} MiB filler, ${filled.freeBytes} bytes left`;
        await sleep(fault.ms);
      } finally {
        await dataDirs.unfill(dir);
      }
      break;
    }
  }
  entry.healedAtMs = Math.round(performance.now() - origin);
}

function targetOf(deployment: Deployment, fault: Fault): string {
  switch (fault.kind) {
    case 'kill-host':
    case 'pause-host':
    case 'disk-full':
      return hostOf(deployment, fault.role);
    case 'partition':
      return hostOf(deployment, 'primary');
    case 'kill-orchestrator':
      return `orchestrator${Math.min(fault.index, deployment.orchestrators)}`;
    case 'kill-etcd':
      return `e${fault.index}`;
  }
}

async function runStep(
  deployment: Deployment,
  step: Step,
  index: number,
  record: TrialRecord,
  origin: number,
  described: string[],
): Promise<void> {
  await sleep(step.delayMs);
  const entries: TrialRecord['faults'] = step.faults.map((fault) => ({
    step: index + 1,
    fault,
    target: targetOf(deployment, fault),
    injectedAtMs: Math.round(performance.now() - origin),
  }));
  record.faults.push(...entries);
  const text = step.faults
    // A host fault's line names the host; a control-plane fault's names its process already.
    .map((fault, at) =>
      describeFault(
        fault,
        fault.kind === 'kill-orchestrator' || fault.kind === 'kill-etcd' ? undefined : entries[at]?.target,
      ),
    )
    .join(' + ');
  described.push(text);
  const injectedAt = performance.now();
  // Where each host's log stood: what it says about a full data directory from here on is reported.
  const logFrom = entries.map((entry) =>
    entry.fault.kind === 'disk-full'
      ? (deployment.cluster.processes.get(entry.target ?? '')?.lines.length ?? 0)
      : 0,
  );
  // Every fault is healed (or has failed) before the step ends: nothing restarts a process later.
  const injected = await Promise.allSettled(
    step.faults.map((fault, at) => inject(deployment, fault, entries[at]!, origin)),
  );
  for (const outcome of injected) if (outcome.status === 'rejected') throw outcome.reason;
  const recovery = await waitFaultTolerant(deployment, injectedAt, performance.now());
  for (const [at, entry] of entries.entries()) {
    if (entry.fault.kind !== 'disk-full') continue;
    const said = new Set(
      (deployment.cluster.processes.get(entry.target ?? '')?.lines.slice(logFrom[at]) ?? [])
        .map((line) => String(line.msg ?? ''))
        .filter((msg) => msg.startsWith('data directory')),
    );
    const host = said.size > 0 ? `${entry.target}: ${[...said].join('; ')}` : `${entry.target} said nothing`;
    entry.detail = `${entry.detail ?? 'not filled'}; ${host}`;
    record.notes.push(`disk-full on ${entry.target}: ${entry.detail}`);
  }
  if (recovery === null) {
    record.recoveries.push({ step: index + 1, ms: null, lost: true });
    record.failures.push(
      `step ${index + 1} (${text}): not fault tolerant again within ${seconds(FAULT_TOLERANT_AGAIN_WITHIN_MS)}`,
    );
  } else {
    record.recoveries.push({ step: index + 1, ms: Math.round(recovery.ms), lost: recovery.lost });
    if (recovery.ms > FAULT_TOLERANT_AGAIN_WITHIN_MS) {
      record.failures.push(
        `step ${index + 1} (${text}): fault tolerant again only after ${seconds(recovery.ms)}, over the promised ${seconds(
          FAULT_TOLERANT_AGAIN_WITHIN_MS,
        )}`,
      );
    }
  }
}

async function runTrial(
  deployment: Deployment,
  plan: TrialPlan,
): Promise<{ record: TrialRecord; line: string }> {
  const origin = performance.now();
  const record: TrialRecord = {
    failures: [],
    notes: [],
    faults: [],
    recoveries: [],
    violations: [],
    timeline: [],
    epochs: { before: deployment.observer.highestEpoch, after: 0 },
    aliveHosts: [],
  };
  deployment.observer.take();
  deployment.exits = [];
  const described: string[] = [];
  let load: KvLoad | undefined;
  try {
    const ready = await waitFaultTolerant(deployment, performance.now() - HOST_LEASE_MS - 1_000, 0);
    if (ready === null) throw new Error('the VM was not fault tolerant at the start of the trial');
    record.epochs.before = deployment.observer.highestEpoch;
    load = startKvLoad({
      target: { host: '127.0.0.1', port: deployment.port },
      clients: 4,
      durationMs: 600_000,
      timeoutMs: 250,
      retries: 40,
      seed: plan.loadSeed,
      keyPrefix: `t${plan.trial}`,
    });
    const running = load;
    if (!(await waitFor(() => running.counters().acknowledged >= PROGRESS_OPS, PROGRESS_WITHIN_MS))) {
      throw new Error(`the load had no ${PROGRESS_OPS} answers within ${seconds(PROGRESS_WITHIN_MS)}`);
    }
    for (const [index, step] of plan.steps.entries()) {
      await runStep(deployment, step, index, record, origin, described);
      if (record.failures.length > 0) break;
    }
    const before = running.counters().acknowledged;
    if (
      !(await waitFor(() => running.counters().acknowledged >= before + PROGRESS_OPS, PROGRESS_WITHIN_MS))
    ) {
      record.failures.push(
        `the load had no ${PROGRESS_OPS} more answers within ${seconds(PROGRESS_WITHIN_MS)} after the faults`,
      );
    }
  } catch (error) {
    record.failures.push((error as Error).message);
  }
  if (load) {
    load.stop();
    const result = await load.done.catch((error: Error) => {
      record.failures.push(`the load failed: ${error.message}`);
      return undefined;
    });
    const history = (result?.history ?? load.history).toJSON();
    record.history = history;
    const verdict = checkHistory(history);
    record.verdict = verdict;
    record.operations = {
      total: verdict.operations,
      acknowledged: verdict.acknowledged,
      indeterminate: verdict.indeterminate,
      errors: verdict.errors,
    };
    if (!verdict.ok) record.failures.push(`the history checker: ${formatVerdict(verdict).split('\n')[0]}`);
  }
  const observed = deployment.observer.take();
  record.violations = observed.violations;
  record.timeline = observed.timeline;
  record.epochs.after = deployment.observer.highestEpoch;
  record.aliveHosts = [...deployment.observer.aliveHosts];
  for (const violation of observed.violations) record.failures.push(`${violation.kind}: ${violation.detail}`);
  for (const exit of deployment.exits) {
    const text = `${exit.name} exited by itself (${exit.status}) and was restarted`;
    if (exit.expected) record.notes.push(text);
    else record.failures.push(text);
  }
  const faults = described.length > 0 ? described.join('; then ') : 'no fault injected';
  const recoveries = record.recoveries
    .map((recovery) => (recovery.ms === null ? 'never' : recovery.lost ? seconds(recovery.ms) : 'never lost'))
    .join(', ');
  const figures = record.operations
    ? `${record.operations.total} ops, ${record.operations.indeterminate} indeterminate, ${record.operations.errors} ERR, epoch ${record.epochs.before}→${record.epochs.after}, fault tolerant again: ${recoveries || '-'}`
    : 'no load';
  const notes = record.notes.length > 0 ? `; ${record.notes.join('; ')}` : '';
  const verdictText =
    record.failures.length === 0
      ? `ok (${figures}${notes})`
      : `FAILED: ${record.failures[0]}${record.failures.length > 1 ? ` (and ${record.failures.length - 1} more)` : ''} (${figures})`;
  return { record, line: `trial ${plan.trial}: ${faults} → ${verdictText}` };
}

/** Runs the nemesis; see the file comment. */
export async function runNemesis(options: NemesisOptions): Promise<NemesisResult> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const store = options.store ?? 'embedded';
  const memory = options.memory ?? '64M';
  const diskMode = options.diskMode ?? 'shared';
  const resultsDir = resolve(options.results ?? 'nemesis-results', `seed-${options.seed}`);
  const skip = clusterSkipReason();
  if (skip) throw new Error(skip);
  rmSync(resultsDir, { recursive: true, force: true });
  const random = seededRandom(options.seed);
  for (const kind of options.faults ?? []) {
    if (!FAULT_KINDS.includes(kind)) throw new Error(`unknown fault kind ${JSON.stringify(kind)}`);
  }
  // disk-full needs the data directories on tmpfs: tried once, and said once when it cannot be.
  const wantsDiskFull = options.faults === undefined || options.faults.includes('disk-full');
  const diskFullSkipped = wantsDiskFull ? await tmpfsSkipReason() : undefined;
  const mounts = wantsDiskFull && diskFullSkipped === undefined;
  const shape: ScheduleShape = {
    orchestrators: store === 'etcd' ? 2 : 1,
    etcdMembers: store === 'etcd' ? 3 : 0,
    diskFull: mounts,
    ...(options.faults ? { kinds: options.faults } : {}),
  };
  log(
    `nemesis: seed ${options.seed}, ${options.trials} trials, ${store === 'etcd' ? 'etcd store (3 members), 2 orchestrators' : 'embedded store, 1 orchestrator'}, 3 hosts${mounts ? ' (data directories on tmpfs)' : ''}, a ${memory} kv VM with a ${diskMode} disk; promise: fault tolerant again within ${seconds(FAULT_TOLERANT_AGAIN_WITHIN_MS)}`,
  );
  if (diskFullSkipped) log(`nemesis: disk-full faults skipped: ${diskFullSkipped}`);
  // Fails here, before any cluster starts, when the kinds asked for leave nothing to inject.
  planTrial(1, seededRandom(0), shape);
  const mounted: string[] = [];
  const results: TrialResult[] = [];
  let deployment: Deployment | undefined;
  const stopOnSignal = () => {
    // Also while a cluster is starting (no deployment yet): its mounts must not outlive us.
    void Promise.resolve(deployment?.stop())
      .catch(() => {})
      .finally(async () => {
        for (const path of mounted) await unmountIfMounted(path).catch(() => {});
        process.exit(130);
      });
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  try {
    for (let trial = 1; trial <= options.trials; trial++) {
      const plan = planTrial(trial, random.fork(trial), shape);
      const trialDir = join(resultsDir, `trial-${trial}`);
      if (!deployment) {
        try {
          deployment = await Deployment.start(store, memory, diskMode, mounts, mounted);
        } catch (error) {
          const line = `trial ${trial}: FAILED: the cluster did not start: ${(error as Error).message}`;
          const dir = (error as { dir?: string }).dir;
          if (dir) await moveDir(dir, join(trialDir, 'cluster'));
          log(line);
          results.push({
            trial,
            ok: false,
            line,
            failures: [line],
            kept: trialDir,
            faults: [],
            aliveHosts: [],
          });
          continue;
        }
      }
      const { record, line } = await runTrial(deployment, plan);
      const ok = record.failures.length === 0;
      let kept: string | undefined;
      if (!ok) {
        // Keep the failing trial: its history, what was seen, and the whole cluster (logs, state);
        // the next trial starts on a fresh cluster.
        kept = trialDir;
        const current = deployment;
        deployment = undefined;
        await current.stop(join(trialDir, 'cluster'));
        // Results are not sources: git ignores them (lint tools should too).
        writeFileSync(join(resultsDir, '..', '.gitignore'), '*\n');
        const { history, ...rest } = record;
        writeFileSync(join(trialDir, 'history.json'), `${JSON.stringify(history ?? null)}\n`);
        writeFileSync(
          join(trialDir, 'trial.json'),
          `${JSON.stringify({ seed: options.seed, store, plan, ...rest }, null, 2)}\n`,
        );
        if (record.verdict)
          writeFileSync(join(trialDir, 'verdict.txt'), `${formatVerdict(record.verdict)}\n`);
      }
      log(kept ? `${line} [kept in ${kept}]` : line);
      results.push({
        trial,
        ok,
        line,
        failures: record.failures,
        ...(kept ? { kept } : {}),
        faults: record.faults.map((entry) => ({
          kind: entry.fault.kind,
          ...(entry.target ? { target: entry.target } : {}),
          ...(entry.detail ? { detail: entry.detail } : {}),
        })),
        aliveHosts: record.aliveHosts,
      });
    }
  } finally {
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
    await deployment?.stop();
  }
  // A mount left behind would outlive the nemesis: say so loudly (it does not happen on any path
  // that reaches here; the check is the promise).
  for (const path of mounted) {
    if (await isMounted(path)) log(`nemesis: ${path} is still mounted; unmount it with umount ${path}`);
  }
  const failed = results.filter((result) => !result.ok).length;
  if (failed > 0) log(`nemesis: failing trials' logs and histories are in ${resultsDir}`);
  log(`nemesis: ${options.trials} trials, ${failed} failed`);
  return {
    trials: options.trials,
    failed,
    results,
    resultsDir,
    mounts: mounted,
    ...(diskFullSkipped ? { diskFullSkipped } : {}),
  };
}

function integer(name: string, min: number, max = 2 ** 32 - 1) {
  return (value: string): number => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return number;
  };
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('nemesis')
    .description('inject seeded faults into a real ftvm cluster on loopback under kv load, and check it')
    .option('--trials <n>', 'how many trials', integer('--trials', 1, 10_000), 10)
    .option('--seed <s>', 'the PRNG seed (default: from the clock; printed)', integer('--seed', 0))
    .option('--store <kind>', 'embedded, or etcd (three members, two orchestrators)', 'embedded')
    .option('--memory <size>', "the kv VM's RAM", '64M')
    .option('--results <dir>', "where failing trials' logs and histories are kept", 'nemesis-results')
    .option(
      '--disk-mode <mode>',
      "the kv VM's disk: shared, or separate (a copy in each host's data directory)",
      'shared',
    )
    .option('--faults <kinds>', `only these fault kinds, comma-separated (${FAULT_KINDS.join(', ')})`)
    .parse([...argv], { from: 'user' });
  const flags = program.opts<{
    trials: number;
    seed?: number;
    store: string;
    memory: string;
    results: string;
    diskMode: string;
    faults?: string;
  }>();
  if (flags.store !== 'embedded' && flags.store !== 'etcd') {
    program.error(`--store must be embedded or etcd, not ${JSON.stringify(flags.store)}`);
  }
  if (flags.diskMode !== 'shared' && flags.diskMode !== 'separate') {
    program.error(`--disk-mode must be shared or separate, not ${JSON.stringify(flags.diskMode)}`);
  }
  const faults = flags.faults?.split(',').map((kind) => kind.trim()) as FaultKind[] | undefined;
  for (const kind of faults ?? []) {
    if (!FAULT_KINDS.includes(kind)) {
      program.error(`--faults: ${JSON.stringify(kind)} is not one of ${FAULT_KINDS.join(', ')}`);
    }
  }
  const result = await runNemesis({
    trials: flags.trials,
    // Only the default seed comes from the clock; every choice after it comes from the seeded PRNG.
    seed: flags.seed ?? Date.now() % 1_000_000,
    store: flags.store as 'embedded' | 'etcd',
    memory: flags.memory,
    results: flags.results,
    diskMode: flags.diskMode as 'shared' | 'separate',
    ...(faults ? { faults } : {}),
  });
  return result.failed === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (status) => process.exit(status),
    (error: Error) => {
      process.stderr.write(`nemesis: ${error.stack ?? error.message}\n`);
      process.exit(2);
    },
  );
}
