import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KvClient } from '@ftvm/kv-client/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterSkipReason, ProcessCluster } from './harness.js';

/**
 * The cluster on a pre-shared key instead of certificates (`ftvm certs psk`, then `--psk FILE` on
 * every command), as a user tries it: an orchestrator, three hosts and a gateway on loopback; a kv
 * VM created with `ftvm vm create` is fault tolerant, and again after its primary's host is killed
 * (the new backup is cloned over a TLS-PSK logging channel); a component with another key gets
 * nowhere.
 */

const skip = clusterSkipReason();
if (skip) console.warn(`PSK cluster tests skipped: ${skip}`);

describe.skipIf(skip !== undefined)('a cluster of processes on a pre-shared key', () => {
  let cluster: ProcessCluster;
  beforeAll(async () => {
    cluster = new ProcessCluster({ hosts: 3, auth: 'psk' });
    await cluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs a kv VM fault tolerant, every channel on TLS-PSK', async () => {
    expect(statSync(cluster.psk).mode & 0o777).toBe(0o600);
    expect(readFileSync(cluster.psk, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    const created = await cluster.createVm('kv', [
      '--drive',
      'size=4M',
      '--forward',
      'udp:127.0.0.1:0-:5555',
      // Not the 300 ms default: a loaded machine must not see a false failover.
      '--failure-timeout',
      '1000',
      '--timeout',
      '30',
    ]);
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    const view = JSON.parse(created.stdout);
    expect(view.primary.host).not.toBe(view.backup.host);
    const inspected = await cluster.runVm(['inspect', 'kv', '--json']);
    expect(inspected.status).toBe(0);
    // The backup's logging channel (host to host) and both links to the gateway are up on the key.
    expect(JSON.parse(inspected.stdout)).toMatchObject({
      state: 'running',
      faultTolerant: true,
      primary: { host: view.primary.host, epoch: 1 },
      backup: { host: view.backup.host },
    });
    // The guest answers through the gateway, whose link to the primary's host is on the key too.
    const client = await KvClient.open({
      target: { host: '127.0.0.1', port: await cluster.forwardPort('kv') },
      timeoutMs: 500,
      retries: 20,
    });
    try {
      expect((await client.request('PUT', 'trial', 'psk')).response?.status).toBe('OK');
      expect((await client.request('GET', 'trial')).response).toMatchObject({ status: 'OK', value: 'psk' });
    } finally {
      await client.close();
    }

    // The primary's host dies: the backup goes live and a new backup is cloned onto the third host.
    cluster.kill(view.primary.host);
    await cluster.until(
      async () => {
        const now = await cluster.inspect('kv');
        return now.faultTolerant && now.primary?.host === view.backup.host && now.clones === 1;
      },
      30_000,
      'fault tolerant again',
    );
    const after = JSON.parse((await cluster.runVm(['inspect', 'kv', '--json'])).stdout);
    expect(after).toMatchObject({ faultTolerant: true, primary: { host: view.backup.host, epoch: 2 } });
    expect([view.primary.host, view.backup.host]).not.toContain(after.backup.host);
  }, 55_000);

  it('refuses an operator and a host that hold another key', async () => {
    const other = await cluster.run(['certs', 'psk', '--out', join(cluster.dir, 'other.psk')]);
    expect(other.status).toBe(0);
    const refused = await cluster.run([
      'vm',
      'ls',
      '--orchestrator',
      cluster.orchestrator,
      '--psk',
      join(cluster.dir, 'other.psk'),
    ]);
    expect(refused.status).toBe(74);
    expect(refused.stderr).toMatch(/^ftvm: .*another pre-shared key than .*other\.psk/);
    expect(refused.stdout).toBe('');

    const intruder = cluster.spawn('h9', [
      'host',
      '--name',
      'h9',
      '--listen',
      '127.0.0.1:0',
      '--data',
      cluster.dataDir('h9'),
      '--orchestrator',
      cluster.orchestrator,
      '--psk',
      join(cluster.dir, 'other.psk'),
    ]);
    const told = await intruder.waitFor((line) => line.msg === 'orchestrator not reached yet', 10_000);
    expect(String(told.error)).toMatch(/another pre-shared key/);
    const hosts = await cluster.hosts();
    expect(hosts.map((host) => host.name)).not.toContain('h9');
  });
});
