/**
 * A throwaway single-member etcd for tests: `startEtcd()` runs the `etcd` binary (Debian's
 * `etcd-server`, which `node scripts/setup.mjs` installs) on free loopback ports with a fresh data
 * directory, waits until it is healthy, and `stop()` kills it and removes the directory.
 *
 * Node-only. Tests that need it should skip, saying why, when {@link findEtcdBinary} finds nothing:
 *
 * ```ts
 * const skipReason = etcdSkipReason();
 * describe.skipIf(skipReason !== undefined)('against etcd', () => { ... });
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface StartEtcdOptions {
  /** The etcd binary; default the `etcd` found on PATH. */
  binary?: string;
  /** How long to wait for it to become healthy; default 20 s. */
  startTimeoutMs?: number;
  /** More command-line flags, appended after the helper's own. */
  extraArgs?: readonly string[];
}

/** A running test etcd. */
export interface EtcdServer {
  /** The client URL, such as `http://127.0.0.1:41234`. */
  readonly endpoint: string;
  /** The peer URL. */
  readonly peerUrl: string;
  /** Its data directory (removed by `stop`). */
  readonly dataDir: string;
  /** The etcd process id. */
  readonly pid: number;
  /** Kills etcd (SIGKILL), waits for it to exit and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The flags every test etcd runs with, after its naming and URL flags: fast elections and short
 * minimum lease TTLs (1 s), warnings only, on stderr.
 */
export const ETCD_TEST_ARGS: readonly string[] = [
  '--heartbeat-interval',
  '50',
  '--election-timeout',
  '500',
  '--logger',
  'zap',
  '--log-outputs',
  'stderr',
  '--log-level',
  'warn',
];

/** The path of the `etcd` binary on PATH, or undefined. */
export function findEtcdBinary(): string | undefined {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (!directory) continue;
    const candidate = join(directory, 'etcd');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why tests that need etcd must skip, or undefined when they can run. */
export function etcdSkipReason(): string | undefined {
  return findEtcdBinary() === undefined
    ? 'the etcd binary is not on PATH (Debian package etcd-server; `node scripts/setup.mjs` installs it)'
    : undefined;
}

/** Starts a single-member etcd on free loopback ports with a fresh temporary data directory. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const binary = options.binary ?? findEtcdBinary();
  if (binary === undefined) throw new Error(`cannot start etcd: ${etcdSkipReason()}`);
  await access(binary, constants.X_OK);
  const [clientPort, peerPort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'ftvm-etcd-'));
  const args = [
    '--name',
    'default',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    endpoint,
    '--advertise-client-urls',
    endpoint,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `default=${peerUrl}`,
    '--initial-cluster-state',
    'new',
    ...ETCD_TEST_ARGS,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    log = (log + text).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    await waitEtcdHealthy(endpoint, child, options.startTimeoutMs ?? 20_000, () => log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, peerUrl, dataDir, pid: child.pid ?? -1, stop };
}

/**
 * Waits until the etcd at `endpoint` (the process `child`) answers its health check; throws if it
 * exits first or after `timeoutMs`, with `log()` in the message.
 */
export async function waitEtcdHealthy(
  endpoint: string,
  child: ChildProcess,
  timeoutMs: number,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`etcd exited (${child.exitCode ?? child.signalCode}) before it was healthy:\n${log()}`);
    }
    try {
      const response = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await response.json()) as { health?: unknown };
      if (response.ok && (body.health === 'true' || body.health === true)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() >= deadline) {
      throw new Error(`etcd at ${endpoint} was not healthy within ${timeoutMs} ms:\n${log()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `count` distinct free TCP ports on 127.0.0.1 (held open together, so they differ). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
