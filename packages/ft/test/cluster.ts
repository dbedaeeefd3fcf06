import { readFileSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';
import { MemoryArbiter } from '@ftvm/arbiter';
import { type ImageName, imagePath } from '@ftvm/guests';
import { UserGateway, VirtualSwitch } from '@ftvm/net';
import { UdpGatewayHost } from '@ftvm/net/node';
import type { FtConfig } from '../src/config.js';
import type { FtEvent } from '../src/events.js';
import { hostPorts } from '../src/node/host-ports.js';
import { SharedMemoryDisk } from '../src/node/shared-disk.js';
import { startVmWorker, type VmWorkerHandle } from '../src/node/vm-host.js';
import type { DiskMode, VmWorkerMessage, VmWorkerSpec } from '../src/node/vm-worker.js';

/**
 * An in-process cluster for tests and benchmarks: hosts are worker threads, each running one role
 * of one VM; the guest network is a virtual switch with a user-mode gateway on a real UDP port;
 * the arbiter is in memory, served to the hosts over ports; the disk is shared memory.
 */

export interface ClusterOptions {
  readonly image: ImageName;
  /** Boot this kernel file instead of `image`, through this firmware (Linux: its SBI firmware). */
  readonly boot?: { readonly kernel: string; readonly firmware: string };
  readonly vmId?: string;
  /** The logging channel: a MessagePort between threads, or TCP on loopback. */
  readonly transport?: 'port' | 'tcp';
  readonly ramSizeBytes?: number;
  readonly clock?: 'host' | 'icount';
  readonly config?: Partial<FtConfig>;
  readonly diskBytes?: number;
  readonly diskMode?: DiskMode;
  readonly checkpointIntervalSteps?: number;
  /** Debug: print every message of the hosts. */
  readonly verbose?: boolean;
}

export interface Host {
  readonly name: string;
  readonly handle: VmWorkerHandle;
  readonly events: (FtEvent & { atMs: number })[];
  readonly console: number[];
  statistics: Extract<VmWorkerMessage, { type: 'statistics' }> | undefined;
  ended: Extract<VmWorkerMessage, { type: 'ended' }> | undefined;
  failed: string | undefined;
  listening: Promise<number>;
  /** Its disk: the shared one, or (separate disks) its own copy, which starts empty. */
  readonly disk: ReturnType<typeof SharedMemoryDisk.create> | undefined;
}

export class Cluster {
  readonly switch = new VirtualSwitch();
  readonly arbiter = new MemoryArbiter();
  readonly hosts: Host[] = [];
  readonly vmId: string;
  readonly disk: ReturnType<typeof SharedMemoryDisk.create> | undefined;
  readonly image: Uint8Array;
  readonly firmware: Uint8Array | undefined;
  gatewayHost: UdpGatewayHost | undefined;
  /** The gateway's UDP port for kv (guest port 5555). */
  port = 0;

  constructor(readonly options: ClusterOptions) {
    this.vmId = options.vmId ?? 'vm1';
    this.image = new Uint8Array(readFileSync(options.boot?.kernel ?? imagePath(options.image)));
    this.firmware = options.boot ? new Uint8Array(readFileSync(options.boot.firmware)) : undefined;
    this.disk = options.diskBytes ? SharedMemoryDisk.create(options.diskBytes) : undefined;
  }

  async start(): Promise<void> {
    const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp:127.0.0.1:0-:5555');
    const link = this.switch.attach({ deliver: (frame) => gateway.deliver(frame) });
    gateway.connect({ send: (frame) => link.send(frame) });
    this.gatewayHost = await UdpGatewayHost.open(gateway);
    this.port = this.gatewayHost.boundForwards[0]?.port ?? 0;
  }

  /** The VM without fault tolerance: the baseline. */
  startStandalone(name = 'host-a'): Host {
    return this.spawn(name, 'standalone', 0, {});
  }

  /**
   * A primary and its backup, booted together at epoch 1; resolves once both run in lockstep
   * (each has reported its figures). Until then a fault injected into the primary would find a
   * backup still waiting for its channel, which no failure detector watches yet: on a loaded
   * machine starting two worker threads takes seconds.
   */
  async startPair(): Promise<{ primary: Host; backup: Host }> {
    await this.arbiter.testAndSet(this.vmId, 0, 'host-a');
    let pair: { primary: Host; backup: Host };
    if (this.options.transport === 'tcp') {
      const backup = this.spawn('host-b', 'backup', 1, { logTcp: { host: '127.0.0.1' } });
      const port = await backup.listening;
      const primary = this.spawn('host-a', 'primary', 1, { logTcp: { host: '127.0.0.1', port } });
      pair = { primary, backup };
    } else {
      const log = new MessageChannel();
      const primary = this.spawn('host-a', 'primary', 1, { logPort: log.port1 });
      const backup = this.spawn('host-b', 'backup', 1, { logPort: log.port2 });
      pair = { primary, backup };
    }
    await until(
      'the pair to run',
      () => pair.primary.statistics !== undefined && pair.backup.statistics !== undefined,
      60_000,
    );
    return pair;
  }

  /** A primary alone at epoch 1 (no backup yet). */
  async startAlone(name = 'host-a'): Promise<Host> {
    await this.arbiter.testAndSet(this.vmId, 0, name);
    return this.spawn(name, 'primary', 1, {});
  }

  /** Clones a new backup onto a new host from the running primary on `from`. */
  async clone(from: Host, name: string, epoch: number): Promise<Host> {
    if (this.options.transport === 'tcp') {
      const clone = this.spawn(name, 'clone', epoch, { logTcp: { host: '127.0.0.1' } });
      from.handle.clone({ host: '127.0.0.1', port: await clone.listening });
      return clone;
    }
    const log = new MessageChannel();
    const clone = this.spawn(name, 'clone', epoch, { logPort: log.port2 });
    from.handle.clone(log.port1);
    return clone;
  }

  spawn(
    name: string,
    role: VmWorkerSpec['role'],
    epoch: number,
    log: Pick<VmWorkerSpec, 'logPort' | 'logTcp'>,
  ): Host {
    const ports = hostPorts(this.switch, this.arbiter);
    const disk =
      this.options.diskMode === 'separate' && this.options.diskBytes
        ? SharedMemoryDisk.create(this.options.diskBytes)
        : this.disk;
    const handle = startVmWorker({
      role,
      vmId: this.vmId,
      host: name,
      epoch,
      image: role === 'clone' ? undefined : this.image,
      firmware: role === 'clone' ? undefined : this.firmware,
      ramSizeBytes: this.options.ramSizeBytes ?? 16 * 1024 * 1024,
      clock: this.options.clock ?? 'host',
      checkpointIntervalSteps: this.options.checkpointIntervalSteps ?? 5_000_000,
      disk: disk ? { buffers: disk, mode: this.options.diskMode ?? 'shared' } : undefined,
      network: true,
      config: this.options.config,
      ...log,
      networkPort: ports.networkPort,
      arbiterPort: ports.arbiterPort,
      statisticsIntervalMs: 100,
    });
    let listened: (port: number) => void = () => {};
    const host: Host = {
      name,
      handle,
      disk,
      events: [],
      console: [],
      statistics: undefined,
      ended: undefined,
      failed: undefined,
      listening: new Promise<number>((resolve) => {
        listened = resolve;
      }),
    };
    handle.onMessage((message) => {
      if (this.options.verbose && message.type !== 'statistics' && message.type !== 'console') {
        console.log(name, JSON.stringify(message));
      }
      switch (message.type) {
        case 'event':
          host.events.push({ ...message.event, atMs: performance.now() });
          break;
        case 'console':
          for (const byte of message.data) host.console.push(byte);
          break;
        case 'statistics':
          host.statistics = message;
          break;
        case 'listening':
          listened(message.port);
          break;
        case 'ended':
          host.ended = message;
          break;
        case 'failed':
          host.failed = message.message;
          break;
        default:
          break;
      }
    });
    void handle.exited.then(() => {
      ports.release();
    });
    this.hosts.push(host);
    return host;
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((host) => host.handle.kill()));
    await this.gatewayHost?.close();
  }
}

/** Waits until `predicate` holds, polling. */
export async function until(what: string, predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
