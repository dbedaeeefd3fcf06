import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EtcdServer, etcdSkipReason, startEtcd } from '@ftvm/arbiter/test';
import { packageRoot } from '@ftvm/guests';
import { checkHistory, formatVerdict } from '@ftvm/kv-client';
import { KvClient, startKvLoad } from '@ftvm/kv-client/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, initCertificates, issueCertificate, splitAddress } from '../src/index.js';
import { clusterSkipReason, KV_IMAGE, ProcessCluster } from './harness.js';
import { probeHttpOverTls } from './support.js';

/**
 * The networked deployment on real processes: `ftvm orchestrator`, three `ftvm host`s and
 * `ftvm gateway`, started as a user would; a kv VM created with `ftvm vm create`; the primary's
 * host killed with SIGKILL under client load; the history checked by the independent checker.
 */

const skip = clusterSkipReason();
if (skip) console.warn(`cluster tests skipped: ${skip}`);

/** A VM to create and fail over: kv.elf by default; Linux needs a firmware, more RAM and a boot. */
interface FailoverTrial {
  readonly vm: string;
  /** `ftvm vm create` flags before the common ones (disk, forward, failure timeout). */
  readonly create: readonly string[];
  readonly disk: string;
  /** The guest boots for seconds before it answers: the load starts once it does. */
  readonly boots: boolean;
  /** Acknowledged requests before the kill, and again after the failover. */
  readonly perPhase: number;
  readonly clients: number;
}

const KV_TRIAL: FailoverTrial = {
  vm: 'kv',
  create: ['--kernel', KV_IMAGE],
  disk: 'size=16M',
  boots: false,
  perPhase: 300,
  clients: 4,
};

/** Waits until a guest that boots first (Linux) answers on `port`. */
async function answered(port: number): Promise<void> {
  const probe = await KvClient.open({ target: { host: '127.0.0.1', port }, timeoutMs: 500, retries: 240 });
  try {
    expect((await probe.request('PUT', 'booted', 'yes')).response?.status).toBe('OK');
  } finally {
    await probe.close();
  }
}

/** Creates the VM through the command, under load kills the primary's host, and checks everything. */
async function killThePrimarysHostUnderLoad(cluster: ProcessCluster, trial = KV_TRIAL): Promise<void> {
  const created = await cluster.runVm([
    'create',
    trial.vm,
    ...trial.create,
    '--drive',
    trial.disk,
    '--forward',
    'udp:127.0.0.1:0-:5555',
    // Not the 300 ms default: a loaded CI machine must not see a false failover (the test counts them).
    '--failure-timeout',
    '1000',
    '--json',
  ]);
  expect(created.stderr).toBe('');
  expect(created.status).toBe(0);
  const view = JSON.parse(created.stdout);
  expect(view).toMatchObject({ faultTolerant: true, primary: { epoch: 1 }, backup: {} });
  expect(view.primary.host).not.toBe(view.backup.host);
  const inspected = await cluster.runVm(['inspect', trial.vm, '--json']);
  expect(JSON.parse(inspected.stdout)).toMatchObject({
    primary: { host: view.primary.host, epoch: 1 },
    faultTolerant: true,
  });

  const port = await cluster.forwardPort(trial.vm);
  if (trial.boots) await answered(port);
  const load = startKvLoad({
    target: { host: '127.0.0.1', port },
    clients: trial.clients,
    durationMs: 90_000,
    timeoutMs: 250,
    retries: 80,
  });
  await cluster.until(() => load.counters().acknowledged >= trial.perPhase, 60_000, 'serving clients');
  if (process.platform === 'linux') {
    // Each side's VM thread works under the load (the backup replays it), and its host says so.
    await cluster.until(
      async () => {
        const threads = (await cluster.inspect(trial.vm)).figures?.threads;
        return (threads?.primary?.cpuShare ?? 0) > 0 && (threads?.backup?.cpuShare ?? 0) > 0;
      },
      20_000,
      'VM thread figures from both hosts',
    );
    const threads = (await cluster.inspect(trial.vm)).figures?.threads;
    expect(threads?.primary?.runQueueWaitShare).toBeGreaterThanOrEqual(0);
    expect(threads?.primary?.cpuShare).toBeLessThanOrEqual(1.5);
  }
  const killed = view.primary.host as string;
  const survivor = view.backup.host as string;
  cluster.kill(killed);
  const acknowledgedAtKill = load.counters().acknowledged;
  // The backup goes live, and a new backup is cloned onto the third host.
  await cluster.until(
    async () => {
      const now = await cluster.inspect(trial.vm);
      return (
        now.faultTolerant && now.primary?.host === survivor && now.backup?.host !== killed && now.clones === 1
      );
    },
    60_000,
    'fault tolerant again',
  );
  await cluster.until(
    () => load.counters().acknowledged >= acknowledgedAtKill + trial.perPhase,
    60_000,
    'serving after the failover',
  );
  load.stop();
  const result = await load.done;
  const verdict = checkHistory(result.history.toJSON());
  expect(verdict.ok, formatVerdict(verdict)).toBe(true);
  expect(verdict.acknowledged).toBeGreaterThan(2 * trial.perPhase);
  const after = await cluster.inspect(trial.vm);
  expect(after.primary).toMatchObject({ host: survivor, epoch: 2 });
  expect(after.backup?.host).toBeDefined();
  expect([killed, survivor]).not.toContain(after.backup?.host);
  expect(after.failovers).toBe(1);
  expect(after.clones).toBe(1);
}

describe.skipIf(skip !== undefined)('a cluster of processes with the embedded store', () => {
  let cluster: ProcessCluster;
  beforeAll(async () => {
    cluster = new ProcessCluster({ hosts: 3 });
    await cluster.start();
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('keeps serving kv clients through a kill -9 of the primary host, and places a new backup', async () => {
    await killThePrimarysHostUnderLoad(cluster);
  }, 240_000);

  it('refuses a peer whose certificate is not from the cluster CA, before parsing anything', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'ftvm-other-ca-'));
    try {
      initCertificates(otherDir);
      const intruder = issueCertificate(otherDir, 'operator');
      const { host, port } = splitAddress(cluster.orchestrator.split(',')[0] as string);
      // The TLS handshake fails: the orchestrator does not accept the certificate.
      const refused = await probeHttpOverTls({
        host,
        port,
        key: intruder.key,
        cert: intruder.cert,
        rejectUnauthorized: false,
      });
      expect(refused).toMatch(/^refused/);
      // Through the API client too: a typed error, no answer.
      const clusterCa = readFileSync(join(cluster.certs, 'ca.crt'), 'utf8');
      const client = new ApiClient(
        { ...intruder, ca: clusterCa },
        cluster.orchestrator.split(',')[0] as string,
      );
      await expect(client.call('GET', '/v1/vms')).rejects.toMatchObject({ status: 503 });
      client.close();
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('answers a host that speaks for another, or a malformed order, with a typed error naming the field', async () => {
    const { loadCredentials } = await import('../src/index.js');
    const h1 = new ApiClient(
      loadCredentials(cluster.certs, 'h1'),
      cluster.orchestrator.split(',')[0] as string,
    );
    await expect(
      h1.call('POST', '/v1/hosts/heartbeat', {
        name: 'h2',
        address: '127.0.0.1:1',
        incarnation: 1,
        roles: [],
      }),
    ).rejects.toMatchObject({ status: 403, reason: 'forbidden' });
    h1.close();
    const operator = await cluster.client();
    await expect(
      operator.call('POST', '/v1/vms', { name: 'bad name!', image: 'AA==', ramBytes: 1 }),
    ).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/^name: /),
    });
    await expect(operator.call('GET', '/v1/vms/nope')).rejects.toMatchObject({ status: 404 });
  });
});

const etcdSkip = etcdSkipReason();
if (etcdSkip) console.warn(`cluster tests with etcd skipped: ${etcdSkip}`);

describe.skipIf(skip !== undefined || etcdSkip !== undefined)(
  'a cluster of processes with etcd as the store',
  () => {
    let cluster: ProcessCluster;
    let etcd: EtcdServer;
    beforeAll(async () => {
      etcd = await startEtcd();
      cluster = new ProcessCluster({
        hosts: 3,
        store: `etcd://${new URL(etcd.endpoint).host}`,
        orchestrators: 2,
      });
      await cluster.start();
    }, 90_000);
    afterAll(async () => {
      await cluster?.stop();
      await etcd?.stop();
    });

    it('keeps serving kv clients through a kill -9 of the primary host, and places a new backup', async () => {
      await killThePrimarysHostUnderLoad(cluster);
    }, 240_000);
  },
);

const linux = join(packageRoot(), 'images', 'linux');
const linuxImage = join(linux, 'Image');

describe.skipIf(skip !== undefined || !existsSync(linuxImage))(
  'an unmodified Linux guest on the cluster',
  () => {
    let cluster: ProcessCluster;
    beforeAll(async () => {
      cluster = new ProcessCluster({ hosts: 3 });
      await cluster.start();
    }, 90_000);
    afterAll(async () => {
      await cluster?.stop();
    });

    it('boots through its firmware with ftvm vm create --bios, and serves kv through a kill -9 of the primary host', async () => {
      await killThePrimarysHostUnderLoad(cluster, {
        vm: 'linux',
        create: ['--kernel', linuxImage, '--bios', join(linux, 'sbi.elf'), '-m', '64M'],
        disk: 'size=4M',
        boots: true,
        perPhase: 50,
        clients: 3,
      });
    }, 300_000);
  },
);
