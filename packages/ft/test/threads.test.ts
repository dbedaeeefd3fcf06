import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { MessageChannel } from 'node:worker_threads';
import { MemoryArbiter } from '@ftvm/arbiter';
import { imagePath } from '@ftvm/guests';
import { UserGateway, VirtualSwitch } from '@ftvm/net';
import { UdpGatewayHost } from '@ftvm/net/node';
import { afterEach, describe, expect, it } from 'vitest';
import type { FtEvent } from '../src/events.js';
import { serveArbiter } from '../src/node/arbiter-port.js';
import { SharedMemoryDisk } from '../src/node/shared-disk.js';
import { startVmWorker, type VmWorkerHandle } from '../src/node/vm-host.js';
import type { VmWorkerMessage, VmWorkerSpec } from '../src/node/vm-worker.js';

/**
 * Real threads and real sockets: kv.elf served by a fault-tolerant pair of hosts (worker threads)
 * over a real UDP port, a client that retries, and host failures injected by terminating the
 * threads. Whatever the failures, no acknowledged write is lost and every INCR counts once.
 */

const VM = 'kv';
const config = { failureTimeoutMs: 300, heartbeatIntervalMs: 50 };

interface Host {
  readonly name: string;
  readonly handle: VmWorkerHandle;
  readonly events: FtEvent[];
  ended?: VmWorkerMessage;
  failed?: string;
}

class Cluster {
  readonly switch = new VirtualSwitch();
  readonly arbiter = new MemoryArbiter();
  readonly disk = SharedMemoryDisk.create(4 * 1024 * 1024);
  readonly hosts: Host[] = [];
  readonly image = new Uint8Array(readFileSync(imagePath('kv')));
  gatewayHost: UdpGatewayHost | undefined;
  port = 0;

  async start(): Promise<void> {
    const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp:127.0.0.1:0-:5555');
    const link = this.switch.attach({ deliver: (frame) => gateway.deliver(frame) });
    gateway.connect({ send: (frame) => link.send(frame) });
    this.gatewayHost = await UdpGatewayHost.open(gateway);
    this.port = this.gatewayHost.boundForwards[0]?.port ?? 0;
    await this.arbiter.testAndSet(VM, 0, 'host-a');
  }

  /** A host thread running one role, its NIC on a switch port. */
  spawn(name: string, role: VmWorkerSpec['role'], epoch: number, logPort?: MessageChannel['port1']): Host {
    const network = new MessageChannel();
    const switchLink = this.switch.attach({ deliver: (frame) => network.port1.postMessage({ frame }) });
    network.port1.on('message', (message: { frame: Uint8Array }) => switchLink.send(message.frame));
    const arbiterChannel = new MessageChannel();
    serveArbiter(this.arbiter, arbiterChannel.port1);
    const handle = startVmWorker({
      role,
      vmId: VM,
      host: name,
      epoch,
      image: role === 'clone' ? undefined : this.image,
      ramSizeBytes: 16 * 1024 * 1024,
      clock: 'host',
      checkpointIntervalSteps: 1_000_000,
      disk: { buffers: this.disk, mode: 'shared' },
      network: true,
      config,
      logPort,
      networkPort: network.port2,
      arbiterPort: arbiterChannel.port2,
      statisticsIntervalMs: 100,
    });
    const host: Host = { name, handle, events: [] };
    handle.onMessage((message) => {
      if (message.type === 'event') host.events.push(message.event);
      if (message.type === 'ended') host.ended = message;
      if (message.type === 'failed') host.failed = message.message;
      if (process.env.FTVM_DEBUG)
        console.log(
          name,
          JSON.stringify(message, (_, v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v)),
        );
    });
    void handle.exited.then(() => {
      switchLink.detach();
      network.port1.close();
      arbiterChannel.port1.close();
    });
    this.hosts.push(host);
    return host;
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((host) => host.handle.kill()));
    await this.gatewayHost?.close();
  }
}

/** A kv client with retries (same id), recording what was acknowledged. */
class Client {
  readonly socket: Socket = createSocket('udp4');
  nextId = 1;
  readonly waiting = new Map<number, (answer: string) => void>();

  constructor(readonly port: number) {
    this.socket.on('message', (message) => {
      const text = message.toString('ascii');
      const id = Number(text.split(' ')[0]);
      this.waiting.get(id)?.(text.slice(text.indexOf(' ') + 1));
      this.waiting.delete(id);
    });
  }

  /** Sends until answered (retrying with the same id), at most `deadlineMs`. */
  async request(text: string, deadlineMs = 15_000): Promise<string> {
    const id = this.nextId++;
    const answer = new Promise<string>((resolve) => this.waiting.set(id, resolve));
    const started = Date.now();
    for (;;) {
      this.socket.send(`${id} ${text}`, this.port, '127.0.0.1');
      const outcome = await Promise.race([
        answer,
        new Promise<undefined>((resolve) => setTimeout(resolve, 150)),
      ]);
      if (outcome !== undefined) return outcome;
      if (Date.now() - started > deadlineMs) throw new Error(`no answer to "${id} ${text}"`);
    }
  }

  close(): void {
    this.socket.close();
  }
}

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const until = async (what: string, predicate: () => boolean, timeoutMs = 20_000) => {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

describe('kv.elf on a fault-tolerant pair of host threads, over real UDP', () => {
  it('survives the primary dying, then the new primary dying after a clone: nothing acknowledged is lost, INCR once', async () => {
    cluster = new Cluster();
    await cluster.start();
    const log = new MessageChannel();
    const hostA = cluster.spawn('host-a', 'primary', 1, log.port1);
    const hostB = cluster.spawn('host-b', 'backup', 1, log.port2);
    const client = new Client(cluster.port);
    try {
      const acknowledged = new Map<string, string>();
      let increments = 0;
      const work = async (round: number) => {
        const key = `k${round % 7}`;
        const value = `v${round}`;
        expect(await client.request(`PUT ${key} ${value}`)).toBe('OK');
        acknowledged.set(key, value);
        const incr = await client.request('INCR counter');
        increments++;
        expect(incr).toBe(`OK ${increments}`);
      };
      for (let round = 0; round < 20; round++) await work(round);

      // The primary's host dies in the middle of the load.
      const load = (async () => {
        for (let round = 20; round < 60; round++) await work(round);
      })();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await hostA.handle.kill();
      await load;
      expect(hostB.events.map((event) => event.type)).toEqual(
        expect.arrayContaining(['peer-suspected', 'arbiter-won', 'backup-went-live']),
      );
      expect(await cluster.arbiter.read(VM)).toEqual({ epoch: 2, owner: 'host-b' });
      for (const [key, value] of acknowledged) expect(await client.request(`GET ${key}`)).toBe(`OK ${value}`);

      // Redundancy restored: a new backup is cloned onto host-c from the running primary.
      const cloneLog = new MessageChannel();
      const hostC = cluster.spawn('host-c', 'clone', 2, cloneLog.port2);
      hostB.handle.clone(cloneLog.port1);
      await until('the clone to finish', () => hostB.events.some((event) => event.type === 'clone-finished'));
      for (let round = 60; round < 80; round++) await work(round);

      // And the new primary dies too: the clone takes over.
      const second = (async () => {
        for (let round = 80; round < 120; round++) await work(round);
      })();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await hostB.handle.kill();
      await second;
      expect(hostC.events.map((event) => event.type)).toEqual(
        expect.arrayContaining(['arbiter-won', 'backup-went-live']),
      );
      expect(await cluster.arbiter.read(VM)).toEqual({ epoch: 3, owner: 'host-c' });
      for (const [key, value] of acknowledged) expect(await client.request(`GET ${key}`)).toBe(`OK ${value}`);
      expect(await client.request('GET counter')).toBe(`OK ${increments}`);
      expect(hostC.failed).toBeUndefined();
    } finally {
      client.close();
    }
  }, 120_000);
});
