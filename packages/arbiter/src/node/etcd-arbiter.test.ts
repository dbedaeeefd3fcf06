import { existsSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { ArbiterUnavailableError, ConfigError } from '@ftvm/core';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeArbiterContract } from '../contract-suite.js';
import { type EtcdServer, etcdSkipReason, startEtcd } from '../test/etcd-server.js';
import { EtcdArbiter, type OwnerAliveHandle } from './etcd-arbiter.js';

const skipReason = etcdSkipReason();
const skip = skipReason !== undefined;
if (skip) console.warn(`skipping the EtcdArbiter tests: ${skipReason}`);

const isUnavailable = (error: unknown) => ArbiterUnavailableError.is(error);
const isConfigError = (error: unknown) => ConfigError.is(error);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it answers `want` or `withinMs` has passed; answers how long it took. */
async function waitFor(check: () => Promise<boolean>, want: boolean, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await check()) === want) return performance.now() - started;
    if (performance.now() - started > withinMs) throw new Error(`still ${!want} after ${withinMs} ms`);
    await sleep(100);
  }
}

// One etcd for the whole file (each suite uses its own key prefix); the unavailability suite stops
// one of its own.
let server: EtcdServer | undefined;
beforeAll(async () => {
  if (!skip) server = await startEtcd();
});
afterAll(async () => {
  await server?.stop();
});

describeArbiterContract(
  'EtcdArbiter',
  async () => {
    const clients = [0, 1, 2].map(
      () => new EtcdArbiter({ hosts: server!.endpoint, prefix: 'contract', callTimeoutMs: 5_000 }),
    );
    return {
      clients,
      cleanup: async () => void (await Promise.all(clients.map((client) => client.close()))),
    };
  },
  { skipReason },
);

describe.skipIf(skip)('EtcdArbiter', () => {
  let a: EtcdArbiter;
  let b: EtcdArbiter;
  let raw: Etcd3;

  beforeAll(() => {
    a = new EtcdArbiter({ hosts: [server!.endpoint], prefix: 'ftvm-test', leaseTtlSeconds: 1 });
    b = new EtcdArbiter({ hosts: [server!.endpoint], prefix: 'ftvm-test', leaseTtlSeconds: 1 });
    raw = new Etcd3({ hosts: server!.endpoint });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    raw?.close();
  });

  it('keeps the record as JSON {epoch, owner} in <prefix>/vms/<vmId>/epoch', async () => {
    expect(await raw.get('ftvm-test/vms/layout/epoch').string()).toBeNull();
    await a.testAndSet('layout', 0, 'host-a');
    expect(JSON.parse((await raw.get('ftvm-test/vms/layout/epoch').string())!)).toEqual({
      epoch: 1,
      owner: 'host-a',
    });
    await b.testAndSet('layout', 1, 'host-b');
    expect(JSON.parse((await raw.get('ftvm-test/vms/layout/epoch').string())!)).toEqual({
      epoch: 2,
      owner: 'host-b',
    });
  });

  it('gives exactly one winner between two separate clients racing for 50 rounds', async () => {
    const wins = { 'host-a': 0, 'host-b': 0 };
    for (let round = 0; round < 50; round++) {
      const results = await Promise.all([
        a.testAndSet('raced', round, 'host-a'),
        b.testAndSet('raced', round, 'host-b'),
      ]);
      const winners = results.filter((result) => result.won);
      expect(winners).toHaveLength(1);
      const record = winners[0]!.record;
      expect(record.epoch).toBe(round + 1);
      for (const result of results) expect(result.record).toEqual(record);
      wins[record.owner as keyof typeof wins]++;
    }
    expect(await a.read('raced')).toMatchObject({ epoch: 50 });
    console.log(`etcd arbiter race: wins ${JSON.stringify(wins)}`);
  });

  it('answers ArbiterUnavailableError for a key that holds no record', async () => {
    await raw.put('ftvm-test/vms/garbage/epoch').value('not json');
    await expect(a.read('garbage')).rejects.toSatisfy(isUnavailable);
    await expect(a.testAndSet('garbage', 0, 'host-a')).rejects.toSatisfy(isUnavailable);
    await raw.put('ftvm-test/vms/garbage/epoch').value('{"epoch":0,"owner":"x"}');
    await expect(a.read('garbage')).rejects.toSatisfy(isUnavailable);
  });

  it('shows a live owner while it keeps its lease, and a dead one once it stops and the TTL runs out', async () => {
    const vm = 'lease-vm';
    expect(await a.isOwnerAlive(vm)).toBe(false); // epoch 0: nobody
    await a.testAndSet(vm, 0, 'host-a');
    expect(await b.isOwnerAlive(vm)).toBe(false); // owns it, claims nothing yet
    const handle = await a.keepAlive(vm, 'host-a');
    expect(handle).toMatchObject({ vmId: vm, owner: 'host-a', epoch: 1, alive: true });
    expect(await b.isOwnerAlive(vm)).toBe(true);
    expect(JSON.parse((await raw.get(`ftvm-test/vms/${vm}/owner-alive`).string())!)).toEqual({
      epoch: 1,
      owner: 'host-a',
    });
    await sleep(2_200); // well past the 1 s TTL: the renewals keep it
    expect(await b.isOwnerAlive(vm)).toBe(true);

    handle.stop();
    expect(handle.alive).toBe(false);
    const tookMs = await waitFor(() => b.isOwnerAlive(vm), false, 5_000);
    expect(await raw.get(`ftvm-test/vms/${vm}/owner-alive`).string()).toBeNull();
    console.log(`etcd arbiter: the stopped owner's claim vanished after ${Math.round(tookMs)} ms`);
  });

  it('withdraws a claim at once on revoke', async () => {
    const vm = 'revoke-vm';
    await a.testAndSet(vm, 0, 'host-a');
    const handle = await a.keepAlive(vm, 'host-a');
    expect(await b.isOwnerAlive(vm)).toBe(true);
    await handle.revoke();
    expect(await b.isOwnerAlive(vm)).toBe(false);
  });

  it("does not count an old owner's claim once another owner has taken the epoch", async () => {
    const vm = 'takeover-vm';
    await a.testAndSet(vm, 0, 'host-a');
    const oldClaim = await a.keepAlive(vm, 'host-a');
    expect(await b.isOwnerAlive(vm)).toBe(true);
    await b.testAndSet(vm, 1, 'host-b');
    expect(await b.isOwnerAlive(vm)).toBe(false); // host-a's claim is for epoch 1
    // The old owner cannot claim the new epoch; the new owner can.
    await expect(a.keepAlive(vm, 'host-a')).rejects.toSatisfy(isConfigError);
    const newClaim = await b.keepAlive(vm, 'host-b');
    expect(newClaim.epoch).toBe(2);
    expect(await a.isOwnerAlive(vm)).toBe(true);
    oldClaim.stop();
    await newClaim.revoke();
  });

  it('refuses keepAlive from a host that does not own the VM', async () => {
    await expect(a.keepAlive('never-claimed', 'host-a')).rejects.toSatisfy(isConfigError);
    await a.testAndSet('owned-by-a', 0, 'host-a');
    await expect(b.keepAlive('owned-by-a', 'host-b')).rejects.toSatisfy(isConfigError);
    await expect(a.keepAlive('bad/id', 'host-a')).rejects.toSatisfy(isConfigError);
  });

  it('refuses bad options with ConfigError', () => {
    expect(() => new EtcdArbiter({ hosts: [] })).toThrow(ConfigError);
    expect(() => new EtcdArbiter({ hosts: server!.endpoint, prefix: 'x/' })).toThrow(ConfigError);
    expect(() => new EtcdArbiter({ hosts: server!.endpoint, prefix: '' })).toThrow(ConfigError);
    expect(() => new EtcdArbiter({ hosts: server!.endpoint, callTimeoutMs: 0 })).toThrow(ConfigError);
    expect(() => new EtcdArbiter({ hosts: server!.endpoint, leaseTtlSeconds: 0.5 })).toThrow(ConfigError);
  });
});

describe.skipIf(skip)('EtcdArbiter when etcd is gone', () => {
  const CALL_TIMEOUT_MS = 1_000;

  it('answers ArbiterUnavailableError within its timeout once the server has stopped, never won', async () => {
    const doomed = await startEtcd();
    const arbiter = new EtcdArbiter({ hosts: doomed.endpoint, callTimeoutMs: CALL_TIMEOUT_MS });
    const onLost: unknown[] = [];
    let claim: OwnerAliveHandle | undefined;
    try {
      expect((await arbiter.testAndSet('vm', 0, 'host-a')).won).toBe(true);
      claim = await arbiter.keepAlive('vm', 'host-a', { onLost: (error) => onLost.push(error) });
      await doomed.stop();
      expect(existsSync(doomed.dataDir)).toBe(false);
      expect(() => process.kill(doomed.pid, 0)).toThrow(); // the helper's etcd is gone
      for (const call of [
        () => arbiter.testAndSet('vm', 1, 'host-a'),
        () => arbiter.testAndSet('other-vm', 0, 'host-a'),
        () => arbiter.read('vm'),
        () => arbiter.isOwnerAlive('vm'),
      ]) {
        const started = performance.now();
        const outcome = await call().then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        const elapsed = performance.now() - started;
        expect(outcome).not.toHaveProperty('value');
        expect(isUnavailable((outcome as { error: unknown }).error)).toBe(true);
        expect(elapsed).toBeLessThan(CALL_TIMEOUT_MS + 500);
      }
      await expect(claim.revoke()).rejects.toSatisfy(isUnavailable);
    } finally {
      claim?.stop();
      await arbiter.close();
      await doomed.stop();
    }
    await expect(arbiter.read('vm')).rejects.toSatisfy(isUnavailable); // closed
  });

  it('answers ArbiterUnavailableError when nothing listens at the address', async () => {
    // A port that was free a moment ago and is closed now.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
    const arbiter = new EtcdArbiter({ hosts: endpoint, callTimeoutMs: CALL_TIMEOUT_MS });
    try {
      const started = performance.now();
      await expect(arbiter.testAndSet('vm', 0, 'host-a')).rejects.toSatisfy(isUnavailable);
      await expect(arbiter.read('vm')).rejects.toSatisfy(isUnavailable);
      await expect(arbiter.keepAlive('vm', 'host-a')).rejects.toSatisfy(isUnavailable);
      expect(performance.now() - started).toBeLessThan(3 * (CALL_TIMEOUT_MS + 500));
    } finally {
      await arbiter.close();
    }
  });
});
