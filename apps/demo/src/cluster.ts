import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { MemoryArbiter } from '@ftvm/arbiter';
import type { FtEvent, FtSabotage } from '@ftvm/ft';
import {
  hostPorts,
  type SharedDiskBuffers,
  SharedMemoryDisk,
  startVmWorker,
  type VmWorkerHandle,
  type VmWorkerMessage,
  type VmWorkerSpec,
} from '@ftvm/ft/node';
import { UserGateway, VirtualSwitch } from '@ftvm/net';
import { UdpGatewayHost } from '@ftvm/net/node';
import { LinkProxy } from '@ftvm/transport/node';
import type { DemoTransport, DiskMode } from './options.js';

/**
 * The demo's cluster, in one process: every host is a worker thread running one role of the VM;
 * the guest network is a virtual switch with the user-mode gateway on a real UDP port; the
 * arbiter is in memory, served to the hosts over ports; the shared disk is shared memory. Logging
 * channels go through this thread (a port relay, or a TCP proxy for TCP and TLS) so that a
 * partition can hold them.
 */

export interface ClusterSettings {
  readonly vmId: string;
  readonly image: Uint8Array;
  readonly firmware?: Uint8Array;
  readonly ramSizeBytes: number;
  readonly diskBytes: number;
  readonly diskMode: DiskMode;
  readonly transport: DemoTransport;
  readonly failureTimeoutMs: number;
  readonly listen: { readonly host: string; readonly port: number };
  /** Every host breaks the output rule this way (the demo's `--sabotage`). */
  readonly sabotage?: FtSabotage;
}

/** A host as the demo sees it. */
export interface DemoHost {
  readonly name: string;
  readonly handle: VmWorkerHandle;
  /** The role it was started with; a backup that went live is `primary` from then on. */
  role: 'primary' | 'backup' | 'clone' | 'halted' | 'dead';
  epoch: number;
  statistics: Extract<VmWorkerMessage, { type: 'statistics' }> | undefined;
  readonly console: number[];
  alive: boolean;
}

export type ClusterEvent =
  | { readonly type: 'ft'; readonly host: string; readonly event: FtEvent }
  | { readonly type: 'ended'; readonly host: string; readonly end: string; readonly detail?: string }
  | { readonly type: 'failed'; readonly host: string; readonly message: string }
  | { readonly type: 'clone-failed'; readonly host: string; readonly message: string };

/** A logging link that can be held (a partition) and released. */
interface HeldLink {
  hold(): void;
  release(): void;
  close(): void;
}

export class InProcessCluster {
  readonly switch = new VirtualSwitch();
  readonly arbiter = new MemoryArbiter();
  readonly hosts: DemoHost[] = [];
  readonly #settings: ClusterSettings;
  readonly #sharedDisk: SharedDiskBuffers | undefined;
  readonly #links = new Set<HeldLink>();
  #gatewayHost: UdpGatewayHost | undefined;
  #tls: { ca: string; key: string; cert: string } | undefined;
  #partitioned = false;
  #nextHost = 0;
  #listener: (event: ClusterEvent) => void = () => {};
  /** The gateway's kv port, as bound. */
  port = 0;

  constructor(settings: ClusterSettings) {
    this.#settings = settings;
    this.#sharedDisk =
      settings.diskMode === 'separate' ? undefined : SharedMemoryDisk.create(settings.diskBytes);
  }

  onEvent(listener: (event: ClusterEvent) => void): void {
    this.#listener = listener;
  }

  async start(): Promise<void> {
    const { host, port } = this.#settings.listen;
    const gateway = UserGateway.fromNetdevSpec(`user,hostfwd=udp:${host}:${port}-:5555`);
    const link = this.switch.attach({ deliver: (frame) => gateway.deliver(frame) });
    gateway.connect({ send: (frame) => link.send(frame) });
    this.#gatewayHost = await UdpGatewayHost.open(gateway);
    this.port = this.#gatewayHost.boundForwards[0]?.port ?? 0;
    if (this.#settings.transport === 'tls') this.#tls = makeCertificates();
  }

  get primary(): DemoHost | undefined {
    return this.hosts.find((host) => host.alive && host.role === 'primary');
  }

  get backup(): DemoHost | undefined {
    return this.hosts.find((host) => host.alive && (host.role === 'backup' || host.role === 'clone'));
  }

  /** A primary and its backup, booted together at epoch 1. */
  async startPair(): Promise<void> {
    const primaryName = this.#newHostName();
    await this.arbiter.testAndSet(this.#settings.vmId, 0, primaryName);
    const backupName = this.#newHostName();
    if (this.#settings.transport === 'memory') {
      const [primaryEnd, backupEnd] = this.#portLink();
      this.#spawn(primaryName, 'primary', 1, { logPort: primaryEnd });
      this.#spawn(backupName, 'backup', 1, { logPort: backupEnd });
      return;
    }
    const backup = this.#spawn(backupName, 'backup', 1, { logTcp: { host: '127.0.0.1' }, logTls: this.#tls });
    const port = await this.#proxyTo(await backup.listening);
    this.#spawn(primaryName, 'primary', 1, { logTcp: { host: '127.0.0.1', port }, logTls: this.#tls });
  }

  /** Clones a new backup onto a new host from the running primary. */
  async cloneBackup(): Promise<DemoHost | undefined> {
    const primary = this.primary;
    if (!primary) return undefined;
    const name = this.#newHostName();
    if (this.#settings.transport === 'memory') {
      const [primaryEnd, cloneEnd] = this.#portLink();
      const clone = this.#spawn(name, 'clone', primary.epoch, { logPort: cloneEnd });
      primary.handle.clone(primaryEnd);
      return clone.host;
    }
    const clone = this.#spawn(name, 'clone', primary.epoch, {
      logTcp: { host: '127.0.0.1' },
      logTls: this.#tls,
    });
    const port = await this.#proxyTo(await clone.listening);
    primary.handle.clone({ host: '127.0.0.1', port });
    return clone.host;
  }

  async kill(host: DemoHost): Promise<void> {
    host.alive = false;
    host.role = 'dead';
    await host.handle.kill();
  }

  pause(host: DemoHost, ms: number): void {
    host.handle.pause(ms);
  }

  /** Holds every logging link (both ways) for `ms`: a partition between primary and backup. */
  partition(ms: number): Promise<void> {
    this.#partitioned = true;
    for (const link of this.#links) link.hold();
    return new Promise((resolve) =>
      setTimeout(() => {
        this.#partitioned = false;
        for (const link of this.#links) link.release();
        resolve();
      }, ms),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((host) => host.handle.kill()));
    for (const link of this.#links) link.close();
    await this.#gatewayHost?.close();
  }

  // ---- internals ----

  #newHostName(): string {
    return `host-${String.fromCharCode(97 + (this.#nextHost++ % 26))}${this.#nextHost > 26 ? this.#nextHost : ''}`;
  }

  #spawn(
    name: string,
    role: 'primary' | 'backup' | 'clone',
    epoch: number,
    log: Pick<VmWorkerSpec, 'logPort' | 'logTcp' | 'logTls'>,
  ): { host: DemoHost; listening: Promise<number> } {
    const ports = hostPorts(this.switch, this.arbiter);
    // Separate disks: each host has its own copy (the pair starts from the same empty disk).
    const disk = this.#sharedDisk ?? SharedMemoryDisk.create(this.#settings.diskBytes);
    const handle = startVmWorker({
      role,
      vmId: this.#settings.vmId,
      host: name,
      epoch,
      image: role === 'clone' ? undefined : this.#settings.image,
      firmware: role === 'clone' ? undefined : this.#settings.firmware,
      ramSizeBytes: this.#settings.ramSizeBytes,
      clock: 'host',
      checkpointIntervalSteps: 20_000_000,
      disk: { buffers: disk, mode: this.#settings.diskMode },
      network: true,
      config: {
        failureTimeoutMs: this.#settings.failureTimeoutMs,
        heartbeatIntervalMs: Math.max(10, Math.floor(this.#settings.failureTimeoutMs / 6)),
      },
      ...log,
      networkPort: ports.networkPort,
      arbiterPort: ports.arbiterPort,
      statisticsIntervalMs: 200,
      ...(this.#settings.sabotage === undefined ? {} : { sabotage: this.#settings.sabotage }),
    });
    const host: DemoHost = { name, handle, role, epoch, statistics: undefined, console: [], alive: true };
    let listened: (port: number) => void = () => {};
    const listening = new Promise<number>((resolve) => {
      listened = resolve;
    });
    handle.onMessage((message) => {
      switch (message.type) {
        case 'event':
          this.#track(host, message.event);
          this.#listener({ type: 'ft', host: name, event: message.event });
          break;
        case 'statistics':
          host.statistics = message;
          host.epoch = message.epoch || host.epoch;
          break;
        case 'console':
          for (const byte of message.data) host.console.push(byte);
          break;
        case 'listening':
          listened(message.port);
          break;
        case 'ended':
          host.alive = false;
          host.role = message.end === 'halted' ? 'halted' : 'dead';
          this.#listener({ type: 'ended', host: name, end: message.end, detail: message.detail });
          void handle.kill();
          break;
        case 'failed':
          host.alive = false;
          host.role = 'dead';
          this.#listener({ type: 'failed', host: name, message: message.message });
          void handle.kill();
          break;
        case 'clone-failed':
          this.#listener({ type: 'clone-failed', host: name, message: message.message });
          break;
        default:
          break;
      }
    });
    void handle.exited.then(() => {
      host.alive = false;
      ports.release();
    });
    this.hosts.push(host);
    return { host, listening };
  }

  /** Roles follow the FT events: a backup that went live is the primary; a clone that finished is a backup. */
  #track(host: DemoHost, event: FtEvent): void {
    if (event.type === 'backup-went-live') {
      host.role = 'primary';
      host.epoch = event.epoch;
    }
    if (event.type === 'arbiter-won') host.epoch = event.epoch;
    if (event.type === 'clone-finished') {
      const clone = this.hosts.find((other) => other.alive && other.role === 'clone');
      if (clone) clone.role = 'backup';
    }
  }

  /** Two ports joined through this thread, held during a partition. */
  #portLink(): [MessagePort, MessagePort] {
    const left = new MessageChannel();
    const right = new MessageChannel();
    const pending: [MessagePort, unknown][] = [];
    let held = this.#partitioned;
    const forward = (to: MessagePort) => (message: unknown) => {
      if (held) pending.push([to, message]);
      else to.postMessage(message);
    };
    left.port2.on('message', forward(right.port1));
    right.port1.on('message', forward(left.port2));
    // A port closed at one end (its host died) closes the relay's other side too.
    left.port2.on('close', () => right.port1.close());
    right.port1.on('close', () => left.port2.close());
    const link: HeldLink = {
      hold: () => {
        held = true;
      },
      release: () => {
        held = false;
        for (const [to, message] of pending.splice(0)) to.postMessage(message);
      },
      close: () => {
        left.port2.close();
        right.port1.close();
      },
    };
    this.#links.add(link);
    return [left.port1, right.port2];
  }

  /** A TCP proxy on loopback to `port`, held during a partition (bytes wait, as TCP retransmits). */
  async #proxyTo(port: number): Promise<number> {
    const proxy = await LinkProxy.open({ host: '127.0.0.1', port });
    if (this.#partitioned) proxy.hold();
    this.#links.add(proxy);
    return proxy.port;
  }
}

/** A CA and one certificate for 127.0.0.1 that every host presents (openssl, in a temporary directory). */
function makeCertificates(): { ca: string; key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ftvm-demo-tls-'));
  try {
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    writeFileSync(
      join(dir, 'leaf.cnf'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
    );
    run(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-subj',
      '/CN=ftvm demo CA',
      '-days',
      '1',
    );
    run('req', ...ecKey, '-keyout', 'host.key', '-out', 'host.csr', '-subj', '/CN=ftvm demo host');
    run(
      'x509',
      '-req',
      '-in',
      'host.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'host.crt',
      '-days',
      '1',
      '-extfile',
      'leaf.cnf',
    );
    const read = (file: string) => readFileSync(join(dir, file), 'utf8');
    return { ca: read('ca.crt'), key: read('host.key'), cert: read('host.crt') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
