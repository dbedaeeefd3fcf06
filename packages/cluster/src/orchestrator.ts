import { mkdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import type { Server } from 'node:https';
import { join } from 'node:path';
import { EtcdArbiter, FileArbiter } from '@ftvm/arbiter/node';
import type { Arbiter } from '@ftvm/core';
import type { Logger } from 'pino';
import {
  type ArbiterLocation,
  type ClusterEvent,
  GATEWAY_HEARTBEAT,
  HEARTBEAT,
  type Heartbeat,
  type HostView,
  MIGRATE,
  type RoleStatus,
  STARTED,
  type StartRole,
  VM_CREATE,
  type VmCreate,
  type VmView,
} from './api.js';
import type { Credentials } from './certs.js';
import { serveDashboard } from './dashboard.js';
import {
  ApiClient,
  ApiError,
  type Listening,
  parseBody,
  type Route,
  serveApi,
  splitAddress,
} from './http.js';
import type { ClusterStore } from './store.js';

/**
 * The cluster service (the paper's §3.1 "restoring redundancy" and placement): it keeps the
 * desired state of VMs in a store, sees the hosts through their heartbeats (a lease), places a
 * VM's primary and backup on different hosts by load, and after a failover or a lost backup has a
 * new backup cloned onto another host. It never decides who is primary: the arbiter does, and the
 * hosts' reports say who won. After its own restart it waits one lease for the hosts to report,
 * then reconciles from what they run.
 */

/**
 * What the orchestrator promises: after a failure, a VM is fault tolerant again within this when a
 * host is free for its new backup (the nemesis holds it to that).
 */
export const REDUNDANCY_RESTORED_WITHIN_MS = 30_000;

/** A host counts as alive while its heartbeats arrive within this. */
export const HOST_LEASE_MS = 4_000;
/** How often the orchestrator looks at every VM. */
const RECONCILE_INTERVAL_MS = 250;
/** After a clone failed to start on a host, other hosts are tried first for this long. */
const CLONE_AVOID_MS = 15_000;
/** A clone that has not finished in this time is abandoned and tried again elsewhere. */
const CLONE_DEADLINE_MS = 60_000;
/** A clone whose primary has not connected in this time is abandoned. */
const CLONE_CONNECT_MS = 5_000;
const EVENTS_KEPT = 200;

export interface OrchestratorOptions {
  readonly listen: { host: string; port: number };
  readonly credentials: Credentials;
  readonly store: ClusterStore;
  /** Shared storage every host reaches: VM disks and, without etcd, the arbiter's files. */
  readonly sharedDir: string;
  /** With etcd: the arbiter is an etcd transaction on these endpoints. */
  readonly etcdEndpoints?: readonly string[];
  readonly logger: Logger;
  /** This orchestrator's name, for leader election. */
  readonly name?: string;
  /** Serve the dashboard (read-only, plain HTTP) here. */
  readonly dashboard?: { host: string; port: number };
}

/** What the store keeps per VM. */
/** What the store keeps of a VM's guest: the image and the firmware that boots it, base64. */
interface BootImages {
  readonly image: string;
  readonly firmware?: string;
}

interface VmRecord {
  readonly spec: Omit<VmCreate, 'image' | 'firmware'>;
  state: 'placing' | 'running' | 'stopped' | 'lost';
  /** Hosts the orchestrator told to run a role of this VM (a host cannot claim others). */
  assigned: string[];
  failovers: number;
  clones: number;
  lastClone: { totalMs: number; pauseMs: number } | null;
  events: ClusterEvent[];
  /** The primary last seen (kept so that a failover while no orchestrator ran is still counted). */
  lastPrimary?: { host: string; epoch: number };
}

interface HostState {
  address: string;
  incarnation: number;
  lastSeenMs: number;
  roles: RoleStatus[];
  client: ApiClient;
}

/** Work in flight for a VM, in memory only (a restart finds clones in progress from the hosts' reports). */
interface VmProgress {
  placing?: boolean;
  cloning?: { host: string; sinceMs: number };
  /**
   * Until then the VM is left alone: roles were just started, and the hosts' next heartbeats
   * have not said so yet (acting earlier would see a primary without its backup).
   */
  settleUntilMs?: number;
  preferHost?: string;
  moveThePrimaryTo?: string;
  lostSinceMs?: number;
  /**
   * Hosts where a clone just failed to start (e.g. a data directory too full for a copy of the
   * disk): the next clone goes to another host if there is one, or else tries them again.
   */
  avoid?: Map<string, number>;
}

export class Orchestrator {
  readonly #options: OrchestratorOptions;
  readonly #hosts = new Map<string, HostState>();
  readonly #progress = new Map<string, VmProgress>();
  readonly #records = new Map<string, VmRecord>();
  readonly #arbiter: Arbiter;
  readonly #startedMs = performance.now();
  #gateway: { address: string; lastSeenMs: number } | undefined;
  #server: Listening<Server> | undefined;
  #dashboard: Listening<HttpServer> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #reconciling = false;
  /** `host/vm` of stops in flight (one at a time each). */
  readonly #stopping = new Set<string>();
  #leading = false;
  #leadingSinceMs = 0;

  constructor(options: OrchestratorOptions) {
    this.#options = options;
    mkdirSync(join(options.sharedDir, 'disks'), { recursive: true });
    if (!options.etcdEndpoints) mkdirSync(join(options.sharedDir, 'arbiter'), { recursive: true });
    this.#arbiter = options.etcdEndpoints
      ? new EtcdArbiter({ hosts: [...options.etcdEndpoints] })
      : new FileArbiter(join(options.sharedDir, 'arbiter'));
  }

  get port(): number {
    return this.#server?.port ?? 0;
  }

  get dashboardPort(): number {
    return this.#dashboard?.port ?? 0;
  }

  get arbiterLocation(): ArbiterLocation {
    return this.#options.etcdEndpoints
      ? { kind: 'etcd', endpoints: [...this.#options.etcdEndpoints] }
      : { kind: 'file', dir: join(this.#options.sharedDir, 'arbiter') };
  }

  /** Serves the API at once (followers answer reads from the store); reconciles once it leads. */
  async start(): Promise<void> {
    this.#server = await serveApi(this.#options.credentials, this.#options.listen, this.#routes());
    const log = this.#options.logger;
    if (this.#options.dashboard) {
      this.#dashboard = await serveDashboard(this.#options.dashboard, () => this.#stateView());
      log.info({ dashboard: `http://${this.#options.dashboard.host}:${this.#dashboard.port}/` }, 'dashboard');
    }
    log.info(
      { listen: `${this.#options.listen.host}:${this.port}`, store: this.#options.store.description },
      'orchestrator listening',
    );
    await this.#options.store.lead(this.#options.name ?? `orchestrator-${process.pid}`, (reason) => {
      log.error({ reason }, 'lost the leadership; exiting so that another orchestrator leads');
      process.exitCode = 75;
      void this.close().then(() => process.exit(75));
    });
    // The VMs first: a heartbeat answered by a leader that has not loaded them would tell hosts
    // to end roles it merely does not know yet.
    for (const [key, record] of await this.#options.store.list<VmRecord>('vms/')) {
      this.#records.set(key.slice('vms/'.length), record);
    }
    this.#leading = true;
    this.#leadingSinceMs = performance.now();
    log.info({ vms: this.#records.size }, 'leading: reconciling after one host lease');
    this.#timer = setInterval(() => void this.#reconcileAll(), RECONCILE_INTERVAL_MS);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#server?.close();
    await this.#dashboard?.close();
    for (const host of this.#hosts.values()) host.client.close();
    await this.#options.store.close();
    await (this.#arbiter as { close?: () => Promise<void> }).close?.();
  }

  // ---- the API ----

  #routes(): Route[] {
    const operators = ['operator', 'orchestrator'];
    const readers = '*';
    return [
      { method: 'GET', path: '/v1/state', peers: readers, handle: () => ({ json: this.#stateView() }) },
      {
        method: 'POST',
        path: '/v1/hosts/heartbeat',
        peers: '*',
        handle: (request) => {
          const beat = parseBody(HEARTBEAT, request.body);
          if (beat.name !== request.peer) {
            throw new ApiError(
              403,
              'forbidden',
              `a host with ${request.peer}'s certificate cannot speak for ${beat.name}`,
            );
          }
          return { json: this.#heartbeat(beat) };
        },
      },
      {
        method: 'POST',
        path: '/v1/gateway/heartbeat',
        peers: ['gateway'],
        handle: (request) => {
          const { address } = parseBody(GATEWAY_HEARTBEAT, request.body);
          this.#gateway = { address, lastSeenMs: performance.now() };
          return { json: { vms: this.#gatewayView() } };
        },
      },
      { method: 'GET', path: '/v1/hosts', peers: readers, handle: () => ({ json: this.#hostViews() }) },
      {
        method: 'GET',
        path: '/v1/vms',
        peers: readers,
        handle: () => {
          this.#requireLeader();
          return { json: this.#vmViews() };
        },
      },
      {
        method: 'GET',
        path: '/v1/vms/:name',
        peers: readers,
        handle: (request) => {
          this.#requireLeader();
          return { json: this.#vmView(this.#record(request.params.name ?? '')) };
        },
      },
      {
        method: 'POST',
        path: '/v1/vms',
        peers: operators,
        handle: async (request) => ({
          status: 201,
          json: await this.#create(parseBody(VM_CREATE, request.body)),
        }),
      },
      {
        method: 'DELETE',
        path: '/v1/vms/:name',
        peers: operators,
        handle: async (request) => ({ json: await this.#stop(request.params.name ?? '') }),
      },
      {
        method: 'POST',
        path: '/v1/vms/:name/failover',
        peers: operators,
        handle: async (request) => ({ json: await this.#failover(request.params.name ?? '') }),
      },
      {
        method: 'POST',
        path: '/v1/vms/:name/migrate',
        peers: operators,
        handle: async (request) => {
          const { host, role } = parseBody(MIGRATE, request.body);
          return { json: await this.#migrate(request.params.name ?? '', host, role) };
        },
      },
    ];
  }

  #requireLeader(): void {
    if (!this.#leading)
      throw new ApiError(503, 'not-leader', 'this orchestrator is not the leader; try another');
  }

  #record(name: string): [string, VmRecord] {
    const record = this.#records.get(name);
    if (!record) throw new ApiError(404, 'not-found', `no VM named ${JSON.stringify(name)}`);
    return [name, record];
  }

  #heartbeat(beat: Heartbeat): { leaseMs: number; stop: string[] } {
    const now = performance.now();
    let host = this.#hosts.get(beat.name);
    if (!host || host.address !== beat.address || host.incarnation !== beat.incarnation) {
      host?.client.close();
      if (!host) this.#options.logger.info({ host: beat.name, address: beat.address }, 'host registered');
      else if (host.incarnation !== beat.incarnation)
        this.#options.logger.info({ host: beat.name }, 'host restarted');
      host = {
        address: beat.address,
        incarnation: beat.incarnation,
        lastSeenMs: now,
        roles: beat.roles,
        client: new ApiClient(this.#options.credentials, beat.address, { timeoutMs: 15_000 }),
      };
      this.#hosts.set(beat.name, host);
    }
    host.lastSeenMs = now;
    host.roles = beat.roles;
    // Roles of VMs this host was never given (or that were stopped) end: a host cannot claim a VM.
    // Only the leader decides (a follower has not loaded the VMs).
    // Nor in its first lease, while hosts that run what an earlier leader placed report in.
    if (!this.#leading || performance.now() - this.#leadingSinceMs < HOST_LEASE_MS) {
      return { leaseMs: HOST_LEASE_MS, stop: [] };
    }
    const stop = beat.roles
      .filter((role) => {
        const record = this.#records.get(role.vm);
        return (
          role.role !== 'ended' &&
          (!record || record.state === 'stopped' || !record.assigned.includes(beat.name))
        );
      })
      .map((role) => role.vm);
    return { leaseMs: HOST_LEASE_MS, stop };
  }

  async #create(request: VmCreate): Promise<VmView> {
    this.#requireLeader();
    if (this.#records.has(request.name) && this.#records.get(request.name)?.state !== 'stopped') {
      throw new ApiError(409, 'exists', `a VM named ${request.name} exists`);
    }
    const { image, firmware, ...spec } = request;
    if (spec.diskBytes > 0) await this.#createDisk(spec.name, spec.diskBytes);
    await this.#options.store.put(`images/${spec.name}`, firmware ? { image, firmware } : { image });
    const record: VmRecord = {
      spec,
      state: 'placing',
      assigned: [],
      failovers: 0,
      clones: 0,
      lastClone: null,
      events: [],
    };
    await this.#save(spec.name, record);
    this.#options.logger.info({ vm: spec.name }, 'VM created');
    return this.#vmView([spec.name, record]);
  }

  /** An empty (sparse) disk image of `bytes` on shared storage; an existing one of that size is kept. */
  async #createDisk(name: string, bytes: number): Promise<void> {
    const handle = await open(this.#diskPath(name), 'a+');
    try {
      const { size } = await handle.stat();
      if (size !== bytes) await handle.truncate(bytes);
    } finally {
      await handle.close();
    }
  }

  #diskPath(name: string): string {
    return join(this.#options.sharedDir, 'disks', `${name}.img`);
  }

  async #stop(name: string): Promise<VmView> {
    this.#requireLeader();
    const [, record] = this.#record(name);
    record.state = 'stopped';
    await this.#save(name, record);
    for (const [hostName, host] of this.#hosts) {
      if (host.roles.some((role) => role.vm === name)) {
        await host.client
          .call('POST', `/v1/vms/${name}/stop`)
          .catch((error: Error) =>
            this.#options.logger.warn({ vm: name, host: hostName, error: error.message }, 'stop failed'),
          );
      }
    }
    return this.#vmView([name, record]);
  }

  async #failover(name: string): Promise<VmView> {
    this.#requireLeader();
    const [, record] = this.#record(name);
    const { primary, backup } = this.#observe(name);
    // A backup still receiving its state (a clone) could not go live.
    if (!primary || !backup || backup.status.state === 'receiving-state') {
      const why = !primary
        ? 'no live primary is seen (its host missed its lease?)'
        : !backup
          ? 'no live backup is seen'
          : `the backup on ${backup.host} is still receiving its state`;
      throw new ApiError(409, 'not-fault-tolerant', `${name} has no backup in place to go live: ${why}`);
    }
    // The primary's role ends abruptly, as if its host died: the backup goes live after the
    // failure timeout, and a new backup is cloned as after any failure.
    await this.#client(primary.host).call('POST', `/v1/vms/${name}/kill`);
    this.#event(record, name, 'failover', `failover requested: ${primary.host} → ${backup.host}`);
    await this.#save(name, record);
    return this.#vmView([name, record]);
  }

  async #migrate(name: string, target: string, role: 'backup' | 'primary'): Promise<VmView> {
    this.#requireLeader();
    const [, record] = this.#record(name);
    const host = this.#hosts.get(target);
    if (!host || !this.#alive(host)) throw new ApiError(409, 'no-host', `host ${target} is not alive`);
    const { primary, backup } = this.#observe(name);
    const progress = this.#progressOf(name);
    if (primary?.host === target) {
      if (role === 'primary') return this.#vmView([name, record]);
      throw new ApiError(409, 'same-host', `${target} runs the primary; the backup must be on another host`);
    }
    if (role === 'primary') progress.moveThePrimaryTo = target;
    if (backup?.host === target) {
      if (role === 'primary') return this.#failover(name);
      return this.#vmView([name, record]);
    }
    progress.preferHost = target;
    if (backup) await this.#client(backup.host).call('POST', `/v1/vms/${name}/stop`);
    return this.#vmView([name, record]);
  }

  // ---- reconciling ----

  async #reconcileAll(): Promise<void> {
    if (this.#reconciling || !this.#leading) return;
    // After a restart: one lease for the hosts to report what they run.
    if (performance.now() - this.#startedMs < HOST_LEASE_MS) return;
    this.#reconciling = true;
    try {
      for (const [name, record] of this.#records) {
        try {
          await this.#reconcile(name, record);
        } catch (error) {
          this.#options.logger.warn(
            { vm: name, error: (error as Error).message },
            'reconcile failed; will retry',
          );
        }
      }
    } finally {
      this.#reconciling = false;
    }
  }

  async #reconcile(name: string, record: VmRecord): Promise<void> {
    if (record.state === 'stopped') return;
    const progress = this.#progressOf(name);
    const { primary, backup, clone, stale } = this.#observe(name);
    // Old epochs' roles are told to end, without waiting: their host may hang (a stopped process),
    // and the reconciling of everything else must not wait for it.
    for (const role of stale) {
      const key = `${role.host}/${name}`;
      if (this.#stopping.has(key)) continue;
      this.#stopping.add(key);
      void this.#client(role.host)
        .call('POST', `/v1/vms/${name}/stop`)
        .catch(() => {})
        .finally(() => this.#stopping.delete(key));
    }
    if (progress.settleUntilMs !== undefined && performance.now() < progress.settleUntilMs) return;
    if (record.state === 'placing' || (record.state === 'lost' && !primary && !backup)) {
      if (record.state === 'placing' && !progress.placing) await this.#place(name, record, progress);
      return;
    }
    if (primary) {
      progress.lostSinceMs = undefined;
      if (record.state === 'lost') record.state = 'running';
      const last = record.lastPrimary;
      if (!last || primary.status.epoch !== last.epoch || primary.host !== last.host) {
        record.lastPrimary = { host: primary.host, epoch: primary.status.epoch };
        await this.#save(name, record);
      }
      if (last && primary.status.epoch > last.epoch) {
        if (primary.host !== last.host) {
          record.failovers++;
          this.#event(record, name, 'failover', `${primary.host} went live at epoch ${primary.status.epoch}`);
        } else {
          this.#event(
            record,
            name,
            'backup-lost',
            `${primary.host} went on alone at epoch ${primary.status.epoch}`,
          );
        }
        await this.#save(name, record);
      }
    } else if (!backup) {
      progress.lostSinceMs ??= performance.now();
      if (performance.now() - progress.lostSinceMs > HOST_LEASE_MS * 2 && record.state !== 'lost') {
        record.state = 'lost';
        this.#event(record, name, 'lost', 'no host runs the primary or a backup');
        await this.#save(name, record);
      }
      return;
    }
    // A clone found running (an earlier leader started it) is watched like one started here.
    if (!progress.cloning && clone) progress.cloning = { host: clone.host, sinceMs: performance.now() };
    // The clone in progress: finished, failed, or still going.
    if (progress.cloning) {
      const target = progress.cloning.host;
      const elapsedMs = performance.now() - progress.cloning.sinceMs;
      // A clone whose primary never connected (the order to clone was lost) waits for ever.
      const neverConnected =
        clone?.host === target && clone.status.state === 'starting' && elapsedMs > CLONE_CONNECT_MS;
      if (backup?.host === target) {
        record.clones++;
        const report = backup.status.lastClone ?? primary?.status.lastClone;
        record.lastClone = report ?? null;
        this.#event(
          record,
          name,
          'clone-finished',
          `new backup on ${target}${report ? ` in ${report.totalMs} ms, pause ${report.pauseMs} ms` : ''}`,
        );
        await this.#save(name, record);
        progress.cloning = undefined;
        if (progress.preferHost === target) progress.preferHost = undefined;
      } else if (
        !clone ||
        clone.host !== target ||
        elapsedMs > CLONE_DEADLINE_MS ||
        !primary ||
        neverConnected
      ) {
        if (elapsedMs > 3_000 || !primary || neverConnected) {
          this.#event(record, name, 'clone-failed', `the clone on ${target} did not finish`);
          await this.#client(target)
            .call('POST', `/v1/vms/${name}/stop`)
            .catch(() => {});
          progress.cloning = undefined;
        }
      }
      return;
    }
    if (primary && !backup && !clone) {
      await this.#cloneBackup(name, record, progress, primary.host, primary.status.epoch);
    }
    if (primary && backup && progress.moveThePrimaryTo === backup.host) {
      progress.moveThePrimaryTo = undefined;
      await this.#failover(name);
    }
  }

  /** Who runs what for `name`, from the live hosts' reports. */
  #observe(name: string): {
    primary?: { host: string; status: RoleStatus };
    backup?: { host: string; status: RoleStatus };
    clone?: { host: string; status: RoleStatus };
    stale: { host: string; status: RoleStatus }[];
  } {
    const roles: { host: string; status: RoleStatus }[] = [];
    for (const [hostName, host] of this.#hosts) {
      if (!this.#alive(host)) continue;
      for (const status of host.roles)
        if (status.vm === name && status.role !== 'ended') roles.push({ host: hostName, status });
    }
    const primaries = roles
      .filter((role) => role.status.role === 'primary')
      .sort((a, b) => b.status.epoch - a.status.epoch);
    const primary = primaries[0];
    const epoch = primary?.status.epoch ?? Math.max(0, ...roles.map((role) => role.status.epoch));
    const backup = roles.find(
      (role) => role.status.role === 'backup' && role.status.epoch === epoch && role.host !== primary?.host,
    );
    const clone = roles.find(
      (role) => role.status.role === 'clone' && role.status.epoch === epoch && role.host !== primary?.host,
    );
    const stale = roles.filter(
      (role) => role !== primary && role !== backup && role !== clone && role.status.epoch < epoch,
    );
    return { primary, backup, clone, stale };
  }

  async #place(name: string, record: VmRecord, progress: VmProgress): Promise<void> {
    if (record.spec.forwards.length > 0 && !this.#gatewayAlive()) return;
    const hosts = this.#leastLoaded([]);
    if (hosts.length < 2) return;
    const [primaryHost, backupHost] = hosts as [string, string];
    progress.placing = true;
    try {
      const current = await this.#arbiter.read(name);
      const won = await this.#arbiter.testAndSet(name, current.epoch, primaryHost);
      if (!won.won) throw new Error(`the arbiter moved ${name} meanwhile`);
      const epoch = won.record.epoch;
      record.assigned = [...new Set([...record.assigned, primaryHost, backupHost])];
      await this.#save(name, record);
      const image = await this.#options.store.get<BootImages>(`images/${name}`);
      if (!image?.image) throw new Error(`the image of ${name} is missing from the store`);
      const started = await this.#startRole(backupHost, name, record, 'backup', epoch, image);
      if (started.port === undefined) throw new Error(`${backupHost} did not say where its backup listens`);
      await this.#startRole(primaryHost, name, record, 'primary', epoch, image, {
        host: splitAddress(this.#hosts.get(backupHost)?.address ?? '').host,
        port: started.port,
      });
      record.state = 'running';
      record.lastPrimary = { host: primaryHost, epoch };
      progress.settleUntilMs = performance.now() + HOST_LEASE_MS;
      this.#event(
        record,
        name,
        'placed',
        `primary on ${primaryHost}, backup on ${backupHost}, epoch ${epoch}`,
      );
      await this.#save(name, record);
    } catch (error) {
      this.#options.logger.warn({ vm: name, error: (error as Error).message }, 'placing failed; will retry');
      for (const host of [primaryHost, backupHost]) {
        await this.#client(host)
          .call('POST', `/v1/vms/${name}/stop`)
          .catch(() => {});
      }
    } finally {
      progress.placing = false;
    }
  }

  async #cloneBackup(
    name: string,
    record: VmRecord,
    progress: VmProgress,
    primaryHost: string,
    epoch: number,
  ): Promise<void> {
    const busy = [...this.#hosts]
      .filter(([, host]) => host.roles.some((role) => role.vm === name && role.role !== 'ended'))
      .map(([hostName]) => hostName);
    const now = performance.now();
    for (const [host, untilMs] of progress.avoid ?? []) if (untilMs <= now) progress.avoid?.delete(host);
    const all = this.#leastLoaded([primaryHost, ...busy]);
    const fresh = all.filter((host) => !progress.avoid?.has(host));
    const candidates = fresh.length > 0 ? fresh : all;
    const target =
      progress.preferHost && candidates.includes(progress.preferHost) ? progress.preferHost : candidates[0];
    if (!target) return;
    progress.cloning = { host: target, sinceMs: performance.now() };
    record.assigned = [...new Set([...record.assigned, target])];
    await this.#save(name, record);
    this.#event(record, name, 'clone-started', `cloning a backup onto ${target} from ${primaryHost}`);
    let started: { port?: number } | undefined;
    try {
      started = await this.#startRole(target, name, record, 'clone', epoch);
      if (started.port === undefined) throw new Error(`${target} did not say where its clone listens`);
      await this.#client(primaryHost).call('POST', `/v1/vms/${name}/clone`, {
        host: splitAddress(this.#hosts.get(target)?.address ?? '').host,
        port: started.port,
      });
    } catch (error) {
      this.#event(record, name, 'clone-failed', `cloning onto ${target}: ${(error as Error).message}`);
      progress.avoid ??= new Map();
      progress.avoid.set(target, performance.now() + CLONE_AVOID_MS);
      await this.#client(target)
        .call('POST', `/v1/vms/${name}/stop`)
        .catch(() => {});
      progress.cloning = undefined;
    }
  }

  #startRole(
    hostName: string,
    name: string,
    record: VmRecord,
    role: 'primary' | 'backup' | 'clone',
    epoch: number,
    image?: BootImages,
    peer?: { host: string; port: number },
  ): Promise<{ port?: number }> {
    const spec = record.spec;
    const order: StartRole = {
      vm: name,
      role,
      epoch,
      image: role === 'clone' ? undefined : image?.image,
      firmware: role === 'clone' ? undefined : image?.firmware,
      ramBytes: spec.ramBytes,
      disk: {
        bytes: spec.diskBytes,
        mode: spec.diskMode,
        path: spec.diskBytes > 0 && spec.diskMode !== 'separate' ? this.#diskPath(name) : undefined,
      },
      arbiter: this.arbiterLocation,
      peer,
      gateway: this.#gatewayAlive() ? this.#gateway?.address : undefined,
      failureTimeoutMs: spec.failureTimeoutMs,
    };
    return this.#client(hostName)
      .call('POST', '/v1/roles', order)
      .then((answer) => parseBody(STARTED, answer));
  }

  /** Alive hosts not in `excluded`, the least loaded first (roles they run; then name). */
  #leastLoaded(excluded: readonly string[]): string[] {
    return [...this.#hosts]
      .filter(([name, host]) => this.#alive(host) && !excluded.includes(name))
      .map(([name, host]) => ({
        name,
        load:
          host.roles.filter((role) => role.role !== 'ended').length +
          host.roles.filter((role) => role.role === 'primary').length,
      }))
      .sort((a, b) => a.load - b.load || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((entry) => entry.name);
  }

  #alive(host: HostState): boolean {
    return performance.now() - host.lastSeenMs <= HOST_LEASE_MS;
  }

  #gatewayAlive(): boolean {
    return this.#gateway !== undefined && performance.now() - this.#gateway.lastSeenMs <= HOST_LEASE_MS * 2;
  }

  #client(hostName: string): ApiClient {
    const host = this.#hosts.get(hostName);
    if (!host) throw new ApiError(409, 'no-host', `host ${hostName} is not known`);
    return host.client;
  }

  #progressOf(name: string): VmProgress {
    let progress = this.#progress.get(name);
    if (!progress) {
      progress = {};
      this.#progress.set(name, progress);
    }
    return progress;
  }

  #event(record: VmRecord, vm: string, kind: ClusterEvent['kind'], detail: string): void {
    const event: ClusterEvent = { atMs: Date.now(), vm, kind, detail };
    record.events.push(event);
    if (record.events.length > EVENTS_KEPT) record.events.splice(0, record.events.length - EVENTS_KEPT);
    this.#options.logger.info({ vm, event: kind }, detail);
  }

  async #save(name: string, record: VmRecord): Promise<void> {
    this.#records.set(name, record);
    await this.#options.store.put(`vms/${name}`, record);
  }

  // ---- views ----

  #vmView([name, record]: [string, VmRecord]): VmView {
    const { primary, backup, clone } = this.#observe(name);
    const progress = this.#progress.get(name);
    const faultTolerant = record.state === 'running' && primary !== undefined && backup !== undefined;
    const state: VmView['state'] =
      record.state === 'running' ? (faultTolerant ? 'running' : 'degraded') : record.state;
    const cloningHost = progress?.cloning?.host ?? clone?.host;
    return {
      name,
      state,
      faultTolerant,
      primary: primary
        ? { host: primary.host, epoch: primary.status.epoch, state: primary.status.state }
        : null,
      backup: backup ? { host: backup.host, epoch: backup.status.epoch, state: backup.status.state } : null,
      cloning: cloningHost
        ? {
            host: cloningHost,
            sinceMs: progress?.cloning ? Math.round(performance.now() - progress.cloning.sinceMs) : 0,
          }
        : null,
      ramBytes: record.spec.ramBytes,
      diskBytes: record.spec.diskBytes,
      diskMode: record.spec.diskMode,
      forwards: record.spec.forwards,
      failovers: record.failovers,
      clones: record.clones,
      lastClone: record.lastClone,
      figures: primary
        ? {
            mips: primary.status.mips,
            executionLagMs: primary.status.executionLagMs,
            logBytesPerSecond: primary.status.logBytesPerSecond,
            heldOutputs: primary.status.heldOutputs,
            oldestHeldOutputMs: primary.status.oldestHeldOutputMs,
            threads: {
              primary: threadFigures(primary.status),
              backup: backup ? threadFigures(backup.status) : undefined,
            },
          }
        : null,
      events: record.events.slice(-20),
    };
  }

  #vmViews(): VmView[] {
    return [...this.#records]
      .filter(([, record]) => record.state !== 'stopped')
      .map((entry) => this.#vmView(entry));
  }

  #hostViews(): HostView[] {
    const now = performance.now();
    return [...this.#hosts].map(([name, host]) => ({
      name,
      address: host.address,
      alive: this.#alive(host),
      lastSeenMsAgo: Math.round(now - host.lastSeenMs),
      roles: host.roles,
    }));
  }

  /** What the gateway needs: each VM's forwards and the hosts allowed to plug its network in. */
  #gatewayView(): { name: string; forwards: VmCreate['forwards']; hosts: string[] }[] {
    return [...this.#records]
      .filter(([, record]) => record.state !== 'stopped')
      .map(([name, record]) => ({ name, forwards: record.spec.forwards, hosts: record.assigned }));
  }

  #stateView(): { hosts: HostView[]; vms: VmView[]; leader: boolean; store: string; nowMs: number } {
    return {
      hosts: this.#hostViews(),
      vms: this.#vmViews(),
      leader: this.#leading,
      store: this.#options.store.description,
      nowMs: Date.now(),
    };
  }
}

/** A role's VM thread figures for a view, when its host reported them. */
function threadFigures(status: RoleStatus): { cpuShare: number; runQueueWaitShare?: number } | undefined {
  if (status.threadCpuShare === undefined) return undefined;
  return { cpuShare: status.threadCpuShare, runQueueWaitShare: status.runQueueWaitShare };
}
