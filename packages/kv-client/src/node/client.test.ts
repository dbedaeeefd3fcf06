import { ConfigError } from '@ftvm/core';
import { afterEach, describe, expect, it } from 'vitest';
import { checkHistory } from '../check.js';
import { History } from '../history.js';
import { KvClient } from './client.js';
import { type FakeKv, startFakeKv } from './fake-server.js';
import { runKvLoad, startKvLoad } from './load.js';

const servers: FakeKv[] = [];
const clients: KvClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function fake(options: Parameters<typeof startFakeKv>[0] = {}) {
  const server = await startFakeKv(options);
  servers.push(server);
  return server;
}

async function open(port: number, options: Partial<Parameters<typeof KvClient.open>[0]> = {}) {
  const client = await KvClient.open({ target: { host: '127.0.0.1', port }, timeoutMs: 30, ...options });
  clients.push(client);
  return client;
}

describe('KvClient', () => {
  it('sends the four requests and records them', async () => {
    const server = await fake();
    const history = new History();
    const client = await open(server.port, { name: 'me', history, firstId: 100 });
    expect(await client.put('colour', 'blue')).toEqual({ id: 100, status: 'OK' });
    expect(await client.get('colour')).toEqual({ id: 101, status: 'OK', value: 'blue' });
    expect(await client.incr('hits')).toEqual({ id: 102, status: 'OK', value: '1' });
    expect(await client.del('colour')).toEqual({ id: 103, status: 'OK' });
    expect(await client.get('colour')).toEqual({ id: 104, status: 'NOTFOUND' });
    expect(
      history.operations.map((operation) => [
        operation.client,
        operation.id,
        operation.op,
        operation.attempts,
      ]),
    ).toEqual([
      ['me', 100, 'PUT', 1],
      ['me', 101, 'GET', 1],
      ['me', 102, 'INCR', 1],
      ['me', 103, 'DEL', 1],
      ['me', 104, 'GET', 1],
    ]);
    expect(history.datagrams.map((datagram) => datagram.text)).toEqual([
      '100 OK',
      '101 OK blue',
      '102 OK 1',
      '103 OK',
      '104 NOTFOUND',
    ]);
    expect(client.localPort).toBeGreaterThan(0);
    expect(checkHistory(history).ok).toBe(true);
    await expect(client.request('GET', 'bad key')).rejects.toThrow(ConfigError);
  });

  it('retries with the same id, and the server applies the INCR once', async () => {
    const server = await fake({ dropFirst: 2 });
    const client = await open(server.port);
    const first = await client.request('INCR', 'n');
    const second = await client.request('INCR', 'n');
    expect(first).toMatchObject({ attempts: 3, response: { status: 'OK', value: '1' } });
    expect(second).toMatchObject({ attempts: 3, response: { status: 'OK', value: '2' } });
    expect(second.id).toBe(first.id + 1);
    expect(server.received).toBe(6);
  });

  it('gives up after the retries: the operation is indeterminate', async () => {
    const server = await fake({ dropRequests: 1 });
    const client = await open(server.port, { retries: 2, timeoutMs: 20 });
    const started = performance.now();
    const operation = await client.request('PUT', 'k', 'v');
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    expect(operation.response).toBeUndefined();
    expect(operation.completedMs).toBeUndefined();
    expect(operation.attempts).toBe(3);
    expect(server.received).toBe(3);
    expect(checkHistory(client.history)).toMatchObject({ ok: true, indeterminate: 1 });
  });

  it('counts a later answer that contradicts the first, and the checker reports it', async () => {
    const server = await fake({ alsoSend: (answer) => `${answer.split(' ')[0]} ERR changed my mind` });
    const client = await open(server.port);
    await client.put('k', 'v');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(client.contradictions).toBe(1);
    expect(client.strays).toBe(1);
    expect(checkHistory(client.history).responseAnomalies.map((anomaly) => anomaly.kind)).toEqual([
      'conflicting',
    ]);
  });

  it('refuses bad options', async () => {
    await expect(KvClient.open({ target: { host: '127.0.0.1', port: 0 } })).rejects.toThrow(ConfigError);
    await expect(KvClient.open({ target: { host: '127.0.0.1', port: 5555 }, retries: -1 })).rejects.toThrow(
      ConfigError,
    );
  });
});

describe('runKvLoad', () => {
  it('drives a lossy but correct server; the history passes', async () => {
    const server = await fake({ dropRequests: 0.1, dropReplies: 0.1, duplicateReplies: 0.1, seed: 3 });
    let calls = 0;
    const { history, counters, keys } = await runKvLoad({
      target: { host: '127.0.0.1', port: server.port },
      clients: 4,
      durationMs: 600,
      seed: 11,
      keySpace: 3,
      timeoutMs: 15,
      onOperation: () => {
        calls++;
      },
    });
    const verdict = checkHistory(history);
    expect(verdict.responseAnomalies).toEqual([]);
    expect(verdict.lostWrites).toEqual([]);
    expect(verdict.incrAnomalies).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.operations).toBeGreaterThan(100);
    expect(calls).toBe(verdict.operations);
    expect(counters.operations).toBe(verdict.operations);
    expect(counters.opsPerSecond).toBeGreaterThan(0);
    expect(keys).toEqual({
      shared: ['load.k0', 'load.k1', 'load.k2'],
      counters: ['load.n0', 'load.n1', 'load.n2', 'load.n3'],
    });
    // Each client first resets its counter, and ends reading it.
    for (let index = 0; index < 4; index++) {
      const own = history.operations.filter((operation) => operation.client === `c${index}`);
      expect(own[0]).toMatchObject({ op: 'DEL', key: `load.n${index}` });
      expect(own.find((operation) => operation.op === 'INCR')?.key ?? `load.n${index}`).toBe(
        `load.n${index}`,
      );
    }
    expect(history.operations.some((operation) => operation.attempts! > 1)).toBe(true);
    expect(history.endedMs).toBeGreaterThan(600);
  });

  it('is seeded: the same seed makes the same choices', async () => {
    const server = await fake();
    const choices = async (seed: number) => {
      const { history } = await runKvLoad({
        target: { host: '127.0.0.1', port: server.port },
        clients: 2,
        durationMs: 150,
        seed,
        keySpace: 5,
      });
      return history.operations
        .filter((operation) => operation.client === 'c1')
        .slice(1, 40)
        .map((operation) => `${operation.op} ${operation.key}`);
    };
    const [a, b, c] = [await choices(5), await choices(5), await choices(6)];
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it('catches a server that re-executes retried INCRs (no exactly-once memory)', async () => {
    const server = await fake({ exactlyOnce: false, dropReplies: 0.3, seed: 5 });
    const { history } = await runKvLoad({
      target: { host: '127.0.0.1', port: server.port },
      clients: 2,
      durationMs: 300,
      seed: 2,
      mix: { incr: 1, get: 1 },
      timeoutMs: 10,
    });
    const verdict = checkHistory(history);
    expect(verdict.ok).toBe(false);
    expect(verdict.incrAnomalies.map((anomaly) => anomaly.kind)).toContain('too-many-increments');
    expect(verdict.lostWrites).toEqual([]);
  });

  it('stops early, reports live counters, and refuses bad options', async () => {
    const server = await fake();
    const load = startKvLoad({
      target: { host: '127.0.0.1', port: server.port },
      durationMs: 60_000,
      clients: 3,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const live = load.counters();
    expect(live.operations).toBeGreaterThan(0);
    expect(live.inFlight).toBeLessThanOrEqual(3);
    expect(live.latencyMs?.p50).toBeGreaterThan(0);
    load.stop();
    const { history } = await load.done;
    expect(history.endedMs).toBeLessThan(5_000);
    expect(checkHistory(history).ok).toBe(true);
    const target = { host: '127.0.0.1', port: server.port };
    expect(() => startKvLoad({ target, durationMs: 1, clients: 0 })).toThrow(ConfigError);
    expect(() => startKvLoad({ target, durationMs: 1, mix: { get: 0 } })).toThrow(ConfigError);
    expect(() => startKvLoad({ target, durationMs: 1, keyPrefix: 'no spaces' })).toThrow(ConfigError);
  });
});
