import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ApiClient,
  type Credentials,
  type HostView,
  loadClusterCredentials,
  type VmView,
} from '../src/index.js';

/**
 * A cluster of real processes on loopback, started through the `ftvm` command exactly as a user
 * types it (the built CLI): an orchestrator, hosts, a gateway. Every process logs JSON lines into
 * the cluster's directory; the harness reads them to learn the ports each one bound (all listen on
 * port 0, so clusters never collide). Used by the tests and the nemesis.
 */

export const FTVM_BIN = fileURLToPath(new URL('../../../apps/cli/bin/ftvm.js', import.meta.url));
export const KV_IMAGE = fileURLToPath(new URL('../../guests/images/kv.elf', import.meta.url));

/** Why a cluster cannot start here, or undefined. */
export function clusterSkipReason(): string | undefined {
  const built = fileURLToPath(new URL('../../../apps/cli/dist/index.js', import.meta.url));
  return existsSync(built) ? undefined : `the ftvm command is not built (${built}); run npm run build`;
}

export interface ClusterProcess {
  readonly name: string;
  /** The `ftvm` arguments it was started with (a restart uses them again). */
  readonly args: readonly string[];
  readonly child: ChildProcess;
  readonly logPath: string;
  /** JSON log lines so far. */
  readonly lines: Record<string, unknown>[];
  exited: boolean;
  /** Resolves with the first log line that `match` accepts. */
  waitFor(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
}

export interface ClusterOptions {
  readonly hosts?: number;
  /** `--store`: default a directory in the cluster's directory; or `etcd://…`. */
  readonly store?: string;
  /** Orchestrators (with etcd, more than one can run). */
  readonly orchestrators?: number;
  readonly dashboard?: boolean;
  /** Hosts accept injected partitions of their logging channels (`--fault-injection`). */
  readonly faultInjection?: boolean;
  /** Keep the directory when the cluster stops (the nemesis keeps failing trials' logs). */
  readonly dir?: string;
  /**
   * How the processes authenticate: the cluster CA's certificates (`--certs`, the default), or a
   * pre-shared key (`--psk`, made with `ftvm certs psk`).
   */
  readonly auth?: 'certs' | 'psk';
}

export class ProcessCluster {
  readonly dir: string;
  readonly certs: string;
  /** The pre-shared key file (with `auth: 'psk'`). */
  readonly psk: string;
  readonly processes = new Map<string, ClusterProcess>();
  orchestratorAddresses: string[] = [];
  dashboardPort = 0;
  #client: ApiClient | undefined;
  readonly #options: ClusterOptions;

  constructor(options: ClusterOptions = {}) {
    this.#options = options;
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ftvm-cluster-'));
    mkdirSync(this.dir, { recursive: true });
    this.certs = join(this.dir, 'certs');
    this.psk = join(this.dir, 'cluster.psk');
  }

  /** The flags that give a process its credentials: `--certs DIR` or `--psk FILE`. */
  get authFlags(): readonly string[] {
    return this.#options.auth === 'psk' ? ['--psk', this.psk] : ['--certs', this.certs];
  }

  /** Component `name`'s credentials, as the processes of this cluster load theirs. */
  credentials(name: string): Credentials {
    return loadClusterCredentials(
      this.#options.auth === 'psk' ? { psk: this.psk } : { certs: this.certs },
      name,
    );
  }

  get orchestrator(): string {
    return this.orchestratorAddresses.join(',');
  }

  /** Runs `ftvm ARGS` to completion; resolves with its status and output. */
  run(
    args: readonly string[],
    timeoutMs = 180_000,
  ): Promise<{ status: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [FTVM_BIN, ...args], {
        cwd: this.dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`ftvm ${args.join(' ')} did not finish in ${timeoutMs} ms`));
      }, timeoutMs);
      // 'close': every byte the command wrote has been read ('exit' can come first).
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status: status ?? -1, stdout, stderr });
      });
    });
  }

  /** `ftvm vm ARGS` against this cluster's orchestrators, with the operator's credentials. */
  runVm(args: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
    return this.run(['vm', ...args, '--orchestrator', this.orchestrator, ...this.authFlags]);
  }

  /** `ftvm vm create NAME --kernel kv.elf FLAGS… --json`, as a user types it. */
  createVm(
    name: string,
    flags: readonly string[],
  ): Promise<{ status: number; stdout: string; stderr: string }> {
    return this.runVm(['create', name, '--kernel', KV_IMAGE, ...flags, '--json']);
  }

  /** Starts a long-running `ftvm` process named `name`. */
  spawn(name: string, args: readonly string[]): ClusterProcess {
    const logPath = join(this.dir, `${name}.log`);
    const log: WriteStream = createWriteStream(logPath, { flags: 'a' });
    const child = spawn(process.execPath, [FTVM_BIN, ...args], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    const waiters = new Set<{
      match: (line: Record<string, unknown>) => boolean;
      resolve: (line: Record<string, unknown>) => void;
    }>();
    let partial = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      for (const text of complete) {
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          continue;
        }
        lines.push(line);
        for (const waiter of waiters) {
          if (waiter.match(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
    const proc: ClusterProcess = {
      name,
      args: [...args],
      child,
      logPath,
      lines,
      exited: false,
      waitFor(match, timeoutMs = 30_000) {
        const found = lines.find(match);
        if (found) return Promise.resolve(found);
        return new Promise((resolve, reject) => {
          const waiter = { match, resolve };
          waiters.add(waiter);
          const timer = setTimeout(() => {
            waiters.delete(waiter);
            reject(new Error(`${name}: no matching log line in ${timeoutMs} ms (see ${logPath})`));
          }, timeoutMs);
          timer.unref();
          child.once('exit', () => {
            if (waiters.delete(waiter)) reject(new Error(`${name} exited (see ${logPath})`));
          });
        });
      },
    };
    child.on('exit', () => {
      proc.exited = true;
      log.end();
    });
    this.processes.set(name, proc);
    return proc;
  }

  async start(): Promise<void> {
    const init = await this.run(
      this.#options.auth === 'psk'
        ? ['certs', 'psk', '--out', this.psk]
        : ['certs', 'init', '--dir', this.certs],
    );
    if (init.status !== 0) throw new Error(`ftvm certs failed: ${init.stderr}`);
    const orchestrators = this.#options.orchestrators ?? 1;
    for (let index = 1; index <= orchestrators; index++) await this.startOrchestrator(index);
    const hosts = this.#options.hosts ?? 3;
    await Promise.all(Array.from({ length: hosts }, (_, index) => this.startHost(`h${index + 1}`)));
    await this.startGateway();
    await this.until(
      async () => (await this.hosts()).filter((host) => host.alive).length === hosts,
      30_000,
      'hosts registered',
    );
  }

  async startOrchestrator(index: number): Promise<ClusterProcess> {
    const store = this.#options.store ?? join(this.dir, 'state');
    const args = [
      'orchestrator',
      '--listen',
      '127.0.0.1:0',
      '--store',
      store,
      ...this.authFlags,
      '--name',
      `o${index}`,
    ];
    if (store.startsWith('etcd://')) args.push('--shared', join(this.dir, 'shared'));
    if (this.#options.dashboard && index === 1) args.push('--dashboard', '127.0.0.1:0');
    const proc = this.spawn(`orchestrator${index}`, args);
    const listening = await proc.waitFor((line) => line.msg === 'orchestrator listening');
    const address = String(listening.listen);
    if (!this.orchestratorAddresses.includes(address)) this.orchestratorAddresses.push(address);
    if (this.#options.dashboard && index === 1) {
      const dashboard = await proc.waitFor((line) => line.msg === 'dashboard');
      this.dashboardPort = Number(new URL(String(dashboard.dashboard)).port);
    }
    return proc;
  }

  /** Host `name`'s `--data` directory. */
  dataDir(name: string): string {
    return join(this.dir, `${name}-data`);
  }

  async startHost(name: string): Promise<ClusterProcess> {
    const proc = this.spawn(name, [
      'host',
      '--name',
      name,
      '--listen',
      '127.0.0.1:0',
      '--data',
      this.dataDir(name),
      '--orchestrator',
      this.orchestrator,
      ...this.authFlags,
      ...(this.#options.faultInjection ? ['--fault-injection'] : []),
    ]);
    await proc.waitFor((line) => line.msg === 'host listening');
    return proc;
  }

  async startGateway(): Promise<ClusterProcess> {
    const proc = this.spawn('gateway', [
      'gateway',
      '--listen',
      '127.0.0.1:0',
      '--orchestrator',
      this.orchestrator,
      ...this.authFlags,
    ]);
    await proc.waitFor((line) => line.msg === 'gateway listening for host links');
    return proc;
  }

  /** The UDP port the gateway bound for `vm`'s first forward. */
  async forwardPort(vm: string): Promise<number> {
    const gateway = this.processes.get('gateway');
    if (!gateway) throw new Error('no gateway');
    const line = await gateway.waitFor((entry) => entry.msg === 'VM network up' && entry.vm === vm);
    const forwards = line.forwards as string[];
    return Number(forwards[0]?.split(':').pop());
  }

  /** The operator's API client, on the leading orchestrator. */
  async client(): Promise<ApiClient> {
    if (this.#client) return this.#client;
    const credentials = this.credentials('operator');
    for (const address of this.orchestratorAddresses) {
      const client = new ApiClient(credentials, address, { timeoutMs: 10_000 });
      try {
        await client.call('GET', '/v1/vms');
        this.#client = client;
        return client;
      } catch {
        client.close();
      }
    }
    throw new Error('no orchestrator leads');
  }

  forgetClient(): void {
    this.#client?.close();
    this.#client = undefined;
  }

  async hosts(): Promise<HostView[]> {
    return (await this.client()).call<HostView[]>('GET', '/v1/hosts');
  }

  async inspect(vm: string): Promise<VmView> {
    return (await this.client()).call<VmView>('GET', `/v1/vms/${vm}`);
  }

  /** Polls `check` until it holds; throws after `timeoutMs`. */
  async until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        if (await check()) return;
      } catch (error) {
        last = error;
      }
      if (performance.now() > deadline) {
        throw new Error(
          `not ${what} within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''} (logs in ${this.dir})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** `kill -9` of a process (a host dying). */
  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): void {
    this.processes.get(name)?.child.kill(signal);
  }

  /** Resolves once `name`'s process has exited (at once if it has). */
  exited(name: string): Promise<void> {
    const proc = this.processes.get(name);
    if (!proc || proc.exited || proc.child.exitCode !== null || proc.child.signalCode !== null)
      return Promise.resolve();
    return new Promise((resolve) => proc.child.once('exit', () => resolve()));
  }

  /** `SIGSTOP` of a process: it stays, silent (a host that hangs, or a long pause). */
  pause(name: string): void {
    this.kill(name, 'SIGSTOP');
  }

  /** `SIGCONT` of a process paused with {@link pause}. */
  resume(name: string): void {
    this.kill(name, 'SIGCONT');
  }

  /**
   * Starts `name` again with the command line it was started with (a host keeps its --name and
   * --data), after killing it with SIGKILL if it still runs; resolves once it says it listens. An
   * orchestrator started on port 0 comes back on the port it bound before: hosts and the gateway
   * know it by that address.
   */
  async restart(name: string, timeoutMs = 30_000): Promise<ClusterProcess> {
    const old = this.processes.get(name);
    if (!old) throw new Error(`no process named ${name}`);
    if (!old.exited) {
      old.child.kill('SIGCONT');
      old.child.kill('SIGKILL');
      await this.exited(name);
    }
    const args = [...old.args];
    const command = args[0];
    if (command === 'orchestrator') {
      const listening = old.lines.find((line) => line.msg === 'orchestrator listening');
      const listen = args.indexOf('--listen');
      if (listening && listen >= 0) args[listen + 1] = String(listening.listen);
    }
    const proc = this.spawn(name, args);
    const ready: Record<string, string> = {
      orchestrator: 'orchestrator listening',
      host: 'host listening',
      gateway: 'gateway listening for host links',
    };
    const message = command === undefined ? undefined : ready[command];
    if (message) await proc.waitFor((line) => line.msg === message, timeoutMs);
    if (command === 'orchestrator' && args.includes('--dashboard')) {
      const dashboard = await proc.waitFor((line) => line.msg === 'dashboard', timeoutMs);
      this.dashboardPort = Number(new URL(String(dashboard.dashboard)).port);
    }
    return proc;
  }

  async stop(options: { keep?: boolean } = {}): Promise<void> {
    this.forgetClient();
    const exits = [...this.processes.values()]
      .filter((proc) => !proc.exited)
      .map(
        (proc) =>
          new Promise<void>((resolve) => {
            proc.child.once('exit', () => resolve());
            proc.child.kill('SIGCONT');
            proc.child.kill('SIGKILL');
          }),
      );
    await Promise.all(exits);
    if (!options.keep) rmSync(this.dir, { recursive: true, force: true });
  }
}
