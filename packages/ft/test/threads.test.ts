import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '@ftvm/guests';
import { checkHistory, formatVerdict, type KvOpName } from '@ftvm/kv-client';
import { KvClient, type KvLoadOptions, startKvLoad } from '@ftvm/kv-client/node';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, until } from './cluster.js';

/**
 * Real threads and real sockets: kv.elf served by a fault-tolerant pair of hosts (worker threads)
 * over a real UDP port, a client that retries, and host failures injected by terminating the
 * threads. Whatever the failures, no acknowledged write is lost and every INCR counts once.
 */

const VM = 'vm1';
// Generous: the tests share two cores with every other package's tests, and a host starved of CPU
// past the failure timeout is (rightly) taken for dead.
const config = { failureTimeoutMs: 1000, heartbeatIntervalMs: 100 };

/**
 * The kv client of `@ftvm/kv-client` (a retry reuses the id, so the guest applies it once), asked
 * in the protocol's words: `request('PUT k v')` answers `OK`, `request('GET k')` answers `OK v`.
 */
async function kvClient(port: number) {
  // Retried every 150 ms for up to 15 s: long enough for any failover here.
  const client = await KvClient.open({ target: { host: '127.0.0.1', port }, timeoutMs: 150, retries: 100 });
  return {
    async request(text: string): Promise<string> {
      const [op, key, value] = text.split(' ') as [KvOpName, string, string | undefined];
      const operation = await client.request(op, key, value);
      const response = operation.response;
      if (response === undefined) throw new Error(`no answer to "${text}"`);
      if (response.status === 'OK') return response.value === undefined ? 'OK' : `OK ${response.value}`;
      return response.status === 'ERR' ? `ERR ${response.reason}` : response.status;
    },
    close: () => client.close(),
  };
}

let cluster: Cluster | undefined;

/** The kv load every test here runs against the cluster's gateway: patient, a minute long at most. */
function loadOn(target: Cluster, options: Omit<KvLoadOptions, 'target' | 'durationMs'>) {
  return startKvLoad({
    target: { host: '127.0.0.1', port: target.port },
    durationMs: 60_000,
    timeoutMs: 250,
    retries: 40,
    ...options,
  });
}
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe.each(['port', 'tcp'] as const)(
  'kv.elf on a fault-tolerant pair of host threads, logging over %s, clients over real UDP',
  (transport) => {
    it('survives the primary dying, then the new primary dying after a clone: nothing acknowledged is lost, INCR once', async () => {
      cluster = new Cluster({
        image: 'kv',
        transport,
        config,
        diskBytes: 4 * 1024 * 1024,
        checkpointIntervalSteps: 1_000_000,
      });
      await cluster.start();
      const { primary: hostA, backup: hostB } = await cluster.startPair();
      const client = await kvClient(cluster.port);
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
        for (const [key, value] of acknowledged)
          expect(await client.request(`GET ${key}`)).toBe(`OK ${value}`);

        // Redundancy restored: a new backup is cloned onto host-c from the running primary.
        const hostC = await cluster.clone(hostB, 'host-c', 2);
        await until('the clone to finish', () =>
          hostB.events.some((event) => event.type === 'clone-finished'),
        );
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
        for (const [key, value] of acknowledged)
          expect(await client.request(`GET ${key}`)).toBe(`OK ${value}`);
        expect(await client.request('GET counter')).toBe(`OK ${increments}`);
        expect(hostC.failed).toBeUndefined();
      } finally {
        await client.close();
      }
    }, 120_000);
  },
);

describe('the independent checker over a load through host failures', () => {
  it('a seeded kv load survives a kill, a clone, a paused primary and another kill with a clean verdict', async () => {
    cluster = new Cluster({
      image: 'kv',
      transport: 'tcp',
      config,
      diskBytes: 4 * 1024 * 1024,
      verbose: !!process.env.FTVM_DEBUG,
    });
    await cluster.start();
    const { primary: hostA, backup: hostB } = await cluster.startPair();
    const load = loadOn(cluster, {
      clients: 4,
      mix: { get: 4, put: 3, del: 1, incr: 2 },
      keySpace: 8,
      seed: 7,
    });
    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await pause(1500);
    await hostA.handle.kill();
    await until('host-b live', () => hostB.events.some((event) => event.type === 'backup-went-live'));
    await pause(500);
    const hostC = await cluster.clone(hostB, 'host-c', 2);
    await until('the clone', () => hostB.events.some((event) => event.type === 'clone-finished'));
    await pause(500);
    // host-b stands still for 2.5 s: host-c takes over; host-b must not act on its stale view.
    hostB.handle.pause(2500);
    await until('host-c live', () => hostC.events.some((event) => event.type === 'backup-went-live'));
    await pause(2500);
    expect(hostB.ended?.end).toBe('halted');
    const hostD = await cluster.clone(hostC, 'host-d', 3);
    await until('the second clone', () => hostC.events.some((event) => event.type === 'clone-finished'));
    await pause(500);
    await hostC.handle.kill();
    await until('host-d live', () => hostD.events.some((event) => event.type === 'backup-went-live'));
    await pause(1000);
    load.stop();
    const { history } = await load.done;
    const verdict = checkHistory(history);
    expect(verdict.ok, formatVerdict(verdict)).toBe(true);
    expect(verdict.acknowledged).toBeGreaterThan(200);
    expect(await cluster.arbiter.read(VM)).toEqual({ epoch: 4, owner: 'host-d' });
  }, 120_000);
});

describe.each(['backup-reads', 'separate'] as const)('the paper’s other disk modes: %s', (diskMode) => {
  it('kv under load survives the primary dying, with a clean verdict', async () => {
    cluster = new Cluster({ image: 'kv', transport: 'tcp', config, diskBytes: 4 * 1024 * 1024, diskMode });
    await cluster.start();
    const { primary: hostA, backup: hostB } = await cluster.startPair();
    const load = loadOn(cluster, {
      clients: 3,
      mix: { get: 4, put: 3, del: 1, incr: 2 },
      keySpace: 8,
      seed: 11,
    });
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await hostA.handle.kill();
    await until('host-b live', () => hostB.events.some((event) => event.type === 'backup-went-live'));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    load.stop();
    const { history } = await load.done;
    const verdict = checkHistory(history);
    expect(verdict.ok, formatVerdict(verdict)).toBe(true);
    expect(verdict.acknowledged).toBeGreaterThan(100);
    expect(hostB.failed).toBeUndefined();
  }, 60_000);
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('separate disks: a clone copies the disk along with memory', () => {
  it('gives the new backup a copy of the disk equal to its primary’s, under writes, and it takes over', async () => {
    cluster = new Cluster({
      image: 'kv',
      transport: 'tcp',
      config,
      diskBytes: 4 * 1024 * 1024,
      diskMode: 'separate',
    });
    await cluster.start();
    const { primary: hostA, backup: hostB } = await cluster.startPair();
    const load = loadOn(cluster, {
      clients: 3,
      mix: { get: 2, put: 5, del: 1, incr: 2 },
      keySpace: 64,
      seed: 12,
    });
    await pause(1500);
    await hostA.handle.kill();
    await until('host-b live', () => hostB.events.some((event) => event.type === 'backup-went-live'));
    // The clone starts from an empty disk while the guest keeps writing to host-b's copy.
    const hostC = await cluster.clone(hostB, 'host-c', 2);
    await until('the clone', () => hostB.events.some((event) => event.type === 'clone-finished'));
    const finished = hostB.events.find((event) => event.type === 'clone-finished');
    expect(finished?.type === 'clone-finished' && finished.diskBytesSent).toBeGreaterThan(0);
    await pause(1000);
    load.stop();
    await load.done;
    await pause(500); // the last writes reach both copies
    const copyOf = (host: typeof hostB) => new Uint8Array(host.disk?.data as SharedArrayBuffer);
    expect(Buffer.compare(copyOf(hostB), copyOf(hostC))).toBe(0);
    expect(copyOf(hostC).some((byte) => byte !== 0)).toBe(true);
    // And the clone takes over with it.
    const again = loadOn(cluster, {
      clients: 2,
      keyPrefix: 'again',
      seed: 13,
    });
    await pause(800);
    await hostB.handle.kill();
    await until('host-c live', () => hostC.events.some((event) => event.type === 'backup-went-live'));
    await pause(1000);
    again.stop();
    const verdict = checkHistory((await again.done).history);
    expect(verdict.ok, formatVerdict(verdict)).toBe(true);
    expect(hostC.failed).toBeUndefined();
  }, 90_000);
});

const linux = join(packageRoot(), 'images', 'linux');
const linuxBoot = { kernel: join(linux, 'Image'), firmware: join(linux, 'sbi.elf') };

describe.skipIf(!existsSync(linuxBoot.kernel))('an unmodified Linux guest on a fault-tolerant pair', () => {
  it('serves kv from Linux userland through a primary kill, with a clean verdict', async () => {
    cluster = new Cluster({
      image: 'kv',
      boot: linuxBoot,
      transport: 'tcp',
      config,
      ramSizeBytes: 64 * 1024 * 1024,
      diskBytes: 4 * 1024 * 1024,
    });
    await cluster.start();
    const { primary: hostA, backup: hostB } = await cluster.startPair();
    // Linux boots first (seconds); the load starts once its kv server answers.
    const probe = await KvClient.open({
      target: { host: '127.0.0.1', port: cluster.port },
      timeoutMs: 500,
      retries: 360,
    });
    try {
      expect((await probe.request('PUT', 'booted', 'yes')).response?.status).toBe('OK');
    } finally {
      await probe.close();
    }
    const load = loadOn(cluster, {
      clients: 3,
      mix: { get: 4, put: 3, del: 1, incr: 2 },
      keySpace: 8,
      seed: 16,
    });
    await pause(3000);
    await hostA.handle.kill();
    await until('host-b live', () => hostB.events.some((event) => event.type === 'backup-went-live'));
    await pause(2000);
    load.stop();
    const { history } = await load.done;
    const verdict = checkHistory(history);
    expect(verdict.ok, formatVerdict(verdict)).toBe(true);
    expect(verdict.acknowledged).toBeGreaterThan(20);
    expect(hostB.failed).toBeUndefined();
    expect(await cluster.arbiter.read(VM)).toEqual({ epoch: 2, owner: 'host-b' });
  }, 240_000);
});
