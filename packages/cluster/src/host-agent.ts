import { mkdirSync } from 'node:fs';
import { open, statfs } from 'node:fs/promises';
import type { Server } from 'node:https';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { EtcdArbiter, FileArbiter } from '@ftvm/arbiter/node';
import type { Arbiter } from '@ftvm/core';
import {
  serveArbiter,
  startVmWorker,
  type ThreadTimes,
  threadShares,
  type VmWorkerHandle,
  type VmWorkerMessage,
} from '@ftvm/ft/node';
import { LinkProxy } from '@ftvm/transport/node';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import { type ArbiterLocation, CLONE_TO, NAME, type RoleStatus, START_ROLE, type StartRole } from './api.js';
import { channelTls } from './auth.js';
import type { Credentials } from './certs.js';
import { HostFrameLink } from './frame-link.js';
import { ApiClient, ApiError, type Listening, parseBody, type Route, serveApi } from './http.js';

/**
 * The host daemon (`ftvm host`): runs the roles of VMs the orchestrator gives it, each VM in its
 * own worker thread; plugs each VM's network into the gateway over an authenticated link; serves
 * the arbiter to its workers (files on shared storage, or etcd); reports what it runs in a
 * heartbeat to every orchestrator it knows (its lease); and exports Prometheus metrics.
 */

const HEARTBEAT_INTERVAL_MS = 300;
const STATISTICS_INTERVAL_MS = 500;
/**
 * Below this much free space in the data directory, a write to a host's own copy of a disk may
 * fail (ENOSPC). A backup whose write fails is no longer an exact copy, and nothing tells it so
 * (it replays the primary's completion and drops its own outcome): such a host ends its backups
 * and refuses new roles with their own copy until space comes back.
 */
export const DATA_DIR_FREE_MIN_BYTES = 1 << 20;
/** The fence file of a host's own copy is given a first block ahead (see `#disk`). */
const FENCE_RESERVED_BYTES = 512;

export interface HostAgentOptions {
  readonly name: string;
  readonly listen: { host: string; port: number };
  /** The address others reach this host at (default: `listen`). */
  readonly advertise?: string;
  readonly dataDir: string;
  /** Every orchestrator's address; heartbeats go to each (one leads). */
  readonly orchestrators: readonly string[];
  readonly credentials: Credentials;
  readonly logger: Logger;
  /**
   * Fault injection (tests, the nemesis): a primary's logging channel goes through a proxy of
   * this host that `POST /v1/faults/partition` can hold. Off by default.
   */
  readonly faultInjection?: boolean;
}

/** A partition to inject (`POST /v1/faults/partition`). */
const PARTITION = z.object({ vm: NAME, ms: z.number().int().min(1).max(600_000) });

interface RunningRole {
  readonly vm: string;
  role: RoleStatus['role'];
  epoch: number;
  state: string;
  icount: number;
  mips: number;
  executionLagMs: number;
  logBytesPerSecond: number;
  heldOutputs: number;
  oldestHeldOutputMs: number;
  threadCpuShare?: number;
  runQueueWaitShare?: number;
  failovers: number;
  clones: number;
  lastClone?: { totalMs: number; pauseMs: number };
  ended?: string;
  readonly handle: VmWorkerHandle;
  /** Logs with the VM and its current epoch on every line. */
  logger: Logger;
  readonly release: () => void;
  previous?: { atMs: number; icount: number; logBytes: number; thread: ThreadTimes | undefined };
  /** The role label its metrics carry now. */
  exportedRole?: RoleStatus['role'];
  listening: Promise<number>;
  /** With fault injection: proxies in front of the logging channels this role opened. */
  readonly proxies: LinkProxy[];
  /** Whether the role's disk is this host's own copy, in the data directory (`--disk-mode separate`). */
  readonly ownDisk: boolean;
}

/** The host's data directory is too full for what it was asked to write there. */
export class DataDirFullError extends ApiError {
  constructor(message: string) {
    super(507, 'insufficient-storage', message);
  }
}

export class HostAgent {
  readonly #options: HostAgentOptions;
  readonly #roles = new Map<string, RunningRole>();
  readonly #orchestrators: ApiClient[];
  readonly #arbiters = new Map<string, Arbiter>();
  readonly #incarnation = Date.now();
  readonly #registry = new Registry();
  readonly #metrics;
  #server: Listening<Server> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #registered = new Set<string>();
  /** Orchestrators this host told the operator it has not reached (before ever registering). */
  #notReached = new Set<string>();
  /** A check of the data directory's free space is running (one at a time). */
  #checkingDataDir = false;

  constructor(options: HostAgentOptions) {
    this.#options = options;
    mkdirSync(join(options.dataDir, 'disks'), { recursive: true });
    this.#orchestrators = options.orchestrators.map(
      (address) => new ApiClient(options.credentials, address, { timeoutMs: 2_000 }),
    );
    const labels = ['vm', 'role'] as const;
    const gauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: labels, registers: [this.#registry] });
    this.#metrics = {
      epoch: gauge('ftvm_vm_epoch', 'The epoch of the role this host runs for the VM'),
      mips: gauge('ftvm_vm_guest_mips', 'Guest instructions per second, in millions'),
      lag: gauge('ftvm_vm_execution_lag_ms', "The backup's execution lag behind the primary, in ms"),
      logBytes: gauge('ftvm_vm_log_bytes_per_second', 'Log bytes sent to the backup per second'),
      held: gauge('ftvm_vm_outputs_held', 'Outputs held until the backup acknowledges their log position'),
      heldWait: gauge('ftvm_vm_oldest_output_wait_ms', 'How long the oldest held output has waited, in ms'),
      threadCpu: gauge('ftvm_vm_thread_cpu_share', "The VM thread's share of one CPU core"),
      runQueueWait: gauge(
        'ftvm_vm_thread_runqueue_wait_share',
        'The share of time the VM thread was ready to run but waited for a core (the host is overcommitted)',
      ),
      failovers: new Counter({
        name: 'ftvm_failovers_total',
        help: 'Backups on this host that went live',
        labelNames: ['vm'],
        registers: [this.#registry],
      }),
      clones: new Counter({
        name: 'ftvm_clones_total',
        help: 'Backups cloned from primaries on this host',
        labelNames: ['vm'],
        registers: [this.#registry],
      }),
    };
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  get address(): string {
    return this.#options.advertise ?? `${this.#options.listen.host}:${this.port}`;
  }

  async start(): Promise<void> {
    const orchestrator = ['orchestrator'];
    const routes: Route[] = [
      {
        method: 'POST',
        path: '/v1/roles',
        peers: orchestrator,
        handle: async (request) => ({ json: await this.#start(parseBody(START_ROLE, request.body)) }),
      },
      {
        method: 'POST',
        path: '/v1/vms/:name/clone',
        peers: orchestrator,
        handle: async (request) => {
          const to = parseBody(CLONE_TO, request.body);
          const running = this.#running(request.params.name ?? '');
          if (running.role !== 'primary') {
            throw new ApiError(409, 'not-primary', `this host runs the ${running.role} of ${running.vm}`);
          }
          running.handle.clone(await this.#channelTarget(running.proxies, to));
          return { status: 202, json: {} };
        },
      },
      {
        method: 'POST',
        path: '/v1/vms/:name/stop',
        peers: orchestrator,
        handle: async (request) => {
          const running = this.#roles.get(request.params.name ?? '');
          if (running) await this.#end(running, 'stopped by the orchestrator', true);
          return { json: {} };
        },
      },
      {
        method: 'POST',
        path: '/v1/vms/:name/kill',
        peers: orchestrator,
        handle: async (request) => {
          await this.#end(this.#running(request.params.name ?? ''), 'killed for a failover', false);
          return { json: {} };
        },
      },
      { method: 'GET', path: '/v1/vms', peers: '*', handle: () => ({ json: this.#statuses() }) },
      ...(this.#options.faultInjection
        ? [
            {
              method: 'POST' as const,
              path: '/v1/faults/partition',
              peers: ['operator'],
              handle: (request: { body: unknown }) => {
                const { vm, ms } = parseBody(PARTITION, request.body);
                const running = this.#running(vm);
                if (running.proxies.length === 0) {
                  throw new ApiError(
                    409,
                    'no-channel',
                    `the ${running.role} of ${vm} opened no logging channel here`,
                  );
                }
                for (const proxy of running.proxies) proxy.hold(ms);
                running.logger.warn({ ms }, 'fault injection: logging channel partitioned');
                return { json: {} };
              },
            },
          ]
        : []),
      {
        method: 'GET',
        path: '/metrics',
        peers: '*',
        handle: async () => ({ text: await this.#registry.metrics() }),
      },
    ];
    this.#server = await serveApi(this.#options.credentials, this.#options.listen, routes);
    this.#options.logger.info({ listen: this.address }, 'host listening');
    this.#timer = setInterval(() => void this.#heartbeat(), HEARTBEAT_INTERVAL_MS);
    void this.#heartbeat();
  }

  /** Stops every role in order, then the API. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(
      [...this.#roles.values()].map((running) => this.#end(running, 'host shutting down', true)),
    );
    await this.#server?.close();
    for (const client of this.#orchestrators) client.close();
    for (const arbiter of this.#arbiters.values()) await arbiter.close?.();
  }

  #running(vm: string): RunningRole {
    const running = this.#roles.get(vm);
    if (!running || running.role === 'ended')
      throw new ApiError(404, 'not-found', `this host runs no role of ${vm}`);
    return running;
  }

  async #start(order: StartRole): Promise<{ port?: number }> {
    const existing = this.#roles.get(order.vm);
    if (existing && existing.role !== 'ended') {
      throw new ApiError(409, 'busy', `this host already runs the ${existing.role} of ${order.vm}`);
    }
    const logger = this.#options.logger.child({ vm: order.vm, epoch: order.epoch });
    // Assigned below: the gateway link's callbacks log with the role's current epoch once it is.
    let running: RunningRole | undefined;
    const disk = await this.#disk(order, logger);
    const arbiterChannel = new MessageChannel();
    serveArbiter(this.#arbiter(order.arbiter), arbiterChannel.port1);
    const network = new MessageChannel();
    const link = order.gateway
      ? new HostFrameLink(
          this.#options.credentials,
          order.gateway,
          { vm: order.vm, host: this.#options.name },
          (frame) => network.port1.postMessage({ frame }),
          (connected, error) =>
            connected
              ? (running?.logger ?? logger).info('network linked to the gateway')
              : (running?.logger ?? logger).warn({ error }, 'gateway link down'),
        )
      : undefined;
    network.port1.on('message', (message: { frame?: Uint8Array }) => {
      if (message.frame) link?.send(message.frame);
    });
    const failureTimeoutMs = order.failureTimeoutMs;
    const proxies: LinkProxy[] = [];
    const handle = startVmWorker({
      role: order.role,
      vmId: order.vm,
      host: this.#options.name,
      epoch: order.epoch,
      image: order.image === undefined ? undefined : new Uint8Array(Buffer.from(order.image, 'base64')),
      firmware:
        order.firmware === undefined ? undefined : new Uint8Array(Buffer.from(order.firmware, 'base64')),
      ramSizeBytes: order.ramBytes,
      clock: 'host',
      checkpointIntervalSteps: 20_000_000,
      disk,
      network: true,
      config: { failureTimeoutMs, heartbeatIntervalMs: Math.max(10, Math.floor(failureTimeoutMs / 6)) },
      logTcp: order.peer
        ? await this.#channelTarget(proxies, order.peer)
        : { host: this.#options.listen.host },
      logTls: channelTls(this.#options.credentials),
      networkPort: network.port2,
      arbiterPort: arbiterChannel.port2,
      statisticsIntervalMs: STATISTICS_INTERVAL_MS,
    });
    let listened: (port: number) => void = () => {};
    let refused: (error: Error) => void = () => {};
    const listening = new Promise<number>((resolve, reject) => {
      listened = resolve;
      refused = reject;
    });
    // Only a backup's or a clone's start waits on this; a primary's end must not be unhandled.
    listening.catch(() => {});
    running = {
      vm: order.vm,
      role: order.role,
      epoch: order.epoch,
      state: 'starting',
      icount: 0,
      mips: 0,
      executionLagMs: 0,
      logBytesPerSecond: 0,
      heldOutputs: 0,
      oldestHeldOutputMs: 0,
      failovers: 0,
      clones: 0,
      handle,
      logger,
      listening,
      proxies,
      ownDisk: disk !== undefined && order.disk.path === undefined,
      release: () => {
        for (const proxy of proxies) proxy.close();
        link?.close();
        network.port1.close();
        arbiterChannel.port1.close();
      },
    };
    this.#roles.set(order.vm, running);
    handle.onMessage((message) => {
      if (message.type === 'listening') listened(message.port);
      if (message.type === 'failed' || message.type === 'ended')
        refused(new Error(message.type === 'failed' ? message.message : message.end));
      this.#onWorker(running, message);
    });
    void handle.exited.then(() => {
      refused(new Error('the role ended'));
      if (running.role !== 'ended') {
        running.role = 'ended';
        running.ended ??= 'exited';
      }
      running.release();
    });
    logger.info({ role: order.role }, 'role started');
    if (order.role === 'primary') return {};
    const port = await Promise.race([
      listening,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('did not listen within 10 s')), 10_000),
      ),
    ]).catch(async (error: Error) => {
      await this.#end(running, error.message, false);
      throw new ApiError(
        500,
        'start-failed',
        `the ${order.role} of ${order.vm} did not start: ${error.message}`,
      );
    });
    return { port };
  }

  /**
   * Where a role connects its logging channel: the peer, or (fault injection) a proxy to it, kept
   * in `proxies`.
   */
  async #channelTarget(
    proxies: LinkProxy[],
    peer: { host: string; port: number },
  ): Promise<{ host: string; port: number }> {
    if (!this.#options.faultInjection) return peer;
    const proxy = await LinkProxy.open(peer);
    proxies.push(proxy);
    return { host: '127.0.0.1', port: proxy.port };
  }

  /**
   * The disk the role uses: the shared image, or this host's own copy (made empty). Preparing the
   * copy fails with a typed error (507), logged, when the data directory is too full: the
   * orchestrator then places the role elsewhere.
   */
  async #disk(
    order: StartRole,
    logger: Logger,
  ): Promise<{ path: string; mode: StartRole['disk']['mode'] } | undefined> {
    if (order.disk.bytes === 0) return undefined;
    if (order.disk.path) return { path: order.disk.path, mode: order.disk.mode };
    const free = await this.#freeBytes();
    if (free !== undefined && free < DATA_DIR_FREE_MIN_BYTES) {
      logger.warn(
        { dataDir: this.#options.dataDir, freeBytes: free, role: order.role },
        'data directory full: refusing a role with its own copy of the disk',
      );
      throw new DataDirFullError(
        `the data directory of ${this.#options.name} has ${free} bytes free, under ${DATA_DIR_FREE_MIN_BYTES}: no room for a copy of the disk`,
      );
    }
    const path = join(this.#options.dataDir, 'disks', `${order.vm}.img`);
    try {
      const handle = await open(path, 'a+');
      try {
        // A pair boots from an empty disk, and a clone's copy starts empty (its primary sends the
        // rest): what an earlier role left in this host's copy must not survive.
        await handle.truncate(0);
        await handle.truncate(order.disk.bytes);
      } finally {
        await handle.close();
      }
      // Only this host writes its copy: no fence from an earlier role applies to it. The fence
      // file starts blank (no epoch) but with its first block written, so that the epoch a go-live
      // writes over it needs no new space: a backup going live on a full data directory must not
      // fail for want of a block (a failed fence write ends the role).
      const fence = await open(`${path}.fence`, 'w');
      try {
        await fence.write(Buffer.alloc(FENCE_RESERVED_BYTES, ' '), 0, FENCE_RESERVED_BYTES, 0);
      } finally {
        await fence.close();
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      logger.error(
        { dataDir: this.#options.dataDir, code, error: (error as Error).message },
        'data directory: cannot prepare the copy of the disk',
      );
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new DataDirFullError(`no room for a copy of the disk in ${this.#options.dataDir}: ${code}`);
      }
      throw new ApiError(
        500,
        'data-dir',
        `cannot prepare a copy of the disk in ${this.#options.dataDir}: ${code ?? (error as Error).message}`,
      );
    }
    return { path, mode: order.disk.mode };
  }

  /** Free bytes in the data directory for this process; undefined when it cannot be read. */
  async #freeBytes(): Promise<number | undefined> {
    try {
      const stats = await statfs(this.#options.dataDir);
      return stats.bavail * stats.bsize;
    } catch {
      return undefined;
    }
  }

  /**
   * Ends this host's backups (and clones in progress) that keep their own copy of the disk when
   * the data directory is too full: one of their writes may fail, unseen (see
   * DATA_DIR_FREE_MIN_BYTES), and a backup that is not an exact copy must not go live. The
   * primary goes on alone and the orchestrator clones a new backup elsewhere. A primary stays:
   * its failed writes reach the guest as virtio-blk IOERR, logged for its backup.
   */
  async #checkDataDir(): Promise<void> {
    const exposed = () =>
      [...this.#roles.values()].filter(
        (running) => running.ownDisk && (running.role === 'backup' || running.role === 'clone'),
      );
    if (this.#checkingDataDir || exposed().length === 0) return;
    this.#checkingDataDir = true;
    try {
      const free = await this.#freeBytes();
      if (free === undefined || free >= DATA_DIR_FREE_MIN_BYTES) return;
      // Looked up again: a backup may have gone live meanwhile (a primary stays).
      for (const running of exposed()) {
        const why = `data directory full (${free} bytes free): this backup's own copy of the disk may miss writes`;
        running.logger.error(
          { dataDir: this.#options.dataDir, freeBytes: free, role: running.role },
          'data directory full: ending the backup, whose own copy of the disk may miss writes',
        );
        await this.#end(running, why, false);
      }
    } finally {
      this.#checkingDataDir = false;
    }
  }

  #arbiter(location: ArbiterLocation): Arbiter {
    const key = JSON.stringify(location);
    let arbiter = this.#arbiters.get(key);
    if (!arbiter) {
      arbiter =
        location.kind === 'file'
          ? new FileArbiter(location.dir)
          : new EtcdArbiter({ hosts: location.endpoints });
      this.#arbiters.set(key, arbiter);
    }
    return arbiter;
  }

  #onWorker(running: RunningRole, message: VmWorkerMessage): void {
    switch (message.type) {
      case 'statistics': {
        const now = performance.now();
        const figures = message.figures;
        const logBytes = Number(figures.logBytesSent ?? 0);
        if (running.previous && now > running.previous.atMs) {
          const seconds = (now - running.previous.atMs) / 1000;
          running.mips = (message.icount - running.previous.icount) / seconds / 1e6;
          running.logBytesPerSecond = Math.max(0, (logBytes - running.previous.logBytes) / seconds);
          if (running.previous.thread && message.thread) {
            const shares = threadShares(running.previous.thread, message.thread, now - running.previous.atMs);
            running.threadCpuShare = shares.cpu;
            running.runQueueWaitShare = shares.runQueueWait;
          }
        }
        running.previous = { atMs: now, icount: message.icount, logBytes, thread: message.thread };
        if (message.epoch > running.epoch) {
          running.epoch = message.epoch;
          running.logger = this.#options.logger.child({ vm: running.vm, epoch: message.epoch });
        }
        running.state = message.state;
        running.icount = message.icount;
        if (message.role === 'primary') running.role = 'primary';
        else if (running.role === 'clone' && message.state !== 'receiving-state') running.role = 'backup';
        running.executionLagMs = Number(figures.executionLagMs ?? 0);
        running.heldOutputs = Number(figures.heldOutputs ?? 0);
        running.oldestHeldOutputMs = Number(figures.oldestHeldOutputMs ?? 0);
        this.#exportMetrics(running);
        break;
      }
      case 'event': {
        const { type, epoch, ...detail } = message.event;
        if ((type === 'backup-went-live' || type === 'arbiter-won') && epoch > running.epoch) {
          running.epoch = epoch;
          running.logger = this.#options.logger.child({ vm: running.vm, epoch });
        }
        running.logger.info({ event: type, ...detail }, `ft: ${type}`);
        if (type === 'backup-went-live') {
          running.role = 'primary';
          running.failovers++;
          this.#metrics.failovers.inc({ vm: running.vm });
        }
        break;
      }
      case 'clone-finished':
        running.clones++;
        running.lastClone = {
          totalMs: Math.round(message.report.totalMs ?? 0),
          pauseMs: Math.round(message.report.pauseMs ?? 0),
        };
        this.#metrics.clones.inc({ vm: running.vm });
        running.logger.info(running.lastClone, 'clone finished');
        break;
      case 'clone-failed':
        running.logger.warn({ reason: message.message }, 'clone failed');
        break;
      case 'ended':
      case 'failed': {
        const why =
          message.type === 'ended'
            ? `${message.end}${message.detail ? `: ${message.detail}` : ''}`
            : message.message;
        running.logger.info({ role: running.role, why }, 'role ended');
        running.role = 'ended';
        running.ended = why;
        this.#exportMetrics(running);
        void running.handle.kill();
        break;
      }
      default:
        break;
    }
  }

  /** The role's figures as Prometheus gauges; a role that changed (a backup went live) or ended drops its old series. */
  #exportMetrics(running: RunningRole): void {
    const gauges = [
      this.#metrics.epoch,
      this.#metrics.mips,
      this.#metrics.lag,
      this.#metrics.logBytes,
      this.#metrics.held,
      this.#metrics.heldWait,
      this.#metrics.threadCpu,
      this.#metrics.runQueueWait,
    ];
    if (running.exportedRole !== undefined && running.exportedRole !== running.role) {
      for (const gauge of gauges) gauge.remove({ vm: running.vm, role: running.exportedRole });
      running.exportedRole = undefined;
    }
    if (running.role === 'ended') return;
    const labels = { vm: running.vm, role: running.role };
    this.#metrics.epoch.set(labels, running.epoch);
    this.#metrics.mips.set(labels, running.mips);
    this.#metrics.lag.set(labels, running.executionLagMs);
    this.#metrics.logBytes.set(labels, running.logBytesPerSecond);
    this.#metrics.held.set(labels, running.heldOutputs);
    this.#metrics.heldWait.set(labels, running.oldestHeldOutputMs);
    if (running.threadCpuShare !== undefined) this.#metrics.threadCpu.set(labels, running.threadCpuShare);
    if (running.runQueueWaitShare !== undefined)
      this.#metrics.runQueueWait.set(labels, running.runQueueWaitShare);
    running.exportedRole = running.role;
  }

  /** Ends a role: in order (a goodbye to its peer) or at once (as a host failure). */
  async #end(running: RunningRole, why: string, orderly: boolean): Promise<void> {
    if (running.role !== 'ended') running.logger.info({ why }, 'ending role');
    running.role = 'ended';
    running.ended ??= why;
    this.#exportMetrics(running);
    if (orderly) {
      running.handle.stop();
      const stopped = await Promise.race([
        running.handle.exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000)),
      ]);
      if (stopped) return;
    }
    await running.handle.kill();
  }

  #statuses(): RoleStatus[] {
    return [...this.#roles.values()].map((running) => ({
      vm: running.vm,
      role: running.role,
      epoch: running.epoch,
      state: running.state,
      icount: running.icount,
      mips: running.mips,
      executionLagMs: running.executionLagMs,
      logBytesPerSecond: running.logBytesPerSecond,
      heldOutputs: running.heldOutputs,
      oldestHeldOutputMs: running.oldestHeldOutputMs,
      threadCpuShare: running.threadCpuShare,
      runQueueWaitShare: running.runQueueWaitShare,
      failovers: running.failovers,
      clones: running.clones,
      lastClone: running.lastClone,
      ended: running.ended,
    }));
  }

  async #heartbeat(): Promise<void> {
    this.#checkDataDir().catch((error: Error) =>
      this.#options.logger.error({ error: error.message }, 'data directory check failed'),
    );
    // Ended roles are reported once more, then forgotten.
    const statuses = this.#statuses();
    for (const [vm, running] of this.#roles) if (running.role === 'ended') this.#roles.delete(vm);
    const beat = {
      name: this.#options.name,
      address: this.address,
      incarnation: this.#incarnation,
      roles: statuses,
    };
    await Promise.all(
      this.#orchestrators.map(async (client) => {
        try {
          const answer = await client.call<{ stop?: string[] }>('POST', '/v1/hosts/heartbeat', beat);
          if (!this.#registered.has(client.address)) {
            this.#registered.add(client.address);
            this.#options.logger.info({ orchestrator: client.address }, 'registered with the orchestrator');
          }
          for (const vm of answer.stop ?? []) {
            const running = this.#roles.get(vm);
            if (running && running.role !== 'ended')
              await this.#end(running, 'not assigned to this host', true);
          }
        } catch (error) {
          if (this.#registered.delete(client.address)) {
            this.#options.logger.warn(
              { orchestrator: client.address, error: (error as Error).message },
              'orchestrator unreachable',
            );
          } else if (!this.#notReached.has(client.address)) {
            // Said once: a host that never registers (a wrong key, a wrong address) says why.
            this.#notReached.add(client.address);
            this.#options.logger.warn(
              { orchestrator: client.address, error: (error as Error).message },
              'orchestrator not reached yet',
            );
          }
        }
      }),
    );
  }
}
