import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryArbiter, MemoryArbiterStore } from '@ftvm/arbiter';
import { EtcdArbiter, FileArbiter } from '@ftvm/arbiter/node';
import { etcdSkipReason, startEtcd } from '@ftvm/arbiter/test';
import { describe, expect, it } from 'vitest';

// The README's examples, through the package's own export map (`.`, `./node`, `./test`), with a
// temporary directory and a test etcd in place of the real ones.

describe('the README examples', () => {
  it('in memory', async () => {
    const store = new MemoryArbiterStore();
    const primary = new MemoryArbiter({ store });
    const backup = new MemoryArbiter({ store });

    expect(await primary.testAndSet('vm-1', 0, 'host-a')).toEqual({
      won: true,
      record: { epoch: 1, owner: 'host-a' },
    });
    primary.setUnreachable(true);
    expect(await backup.testAndSet('vm-1', 1, 'host-b')).toEqual({
      won: true,
      record: { epoch: 2, owner: 'host-b' },
    });
    expect(await primary.testAndSet('vm-1', 1, 'host-a').catch((error) => error.name)).toBe(
      'ArbiterUnavailableError',
    );
  });

  it('on a shared directory', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'ftvm-readme-'));
    try {
      const arbiter = new FileArbiter(directory);
      const { won, record } = await arbiter.testAndSet('vm-1', 0, 'host-a');
      expect([won, record]).toEqual([true, { epoch: 1, owner: 'host-a' }]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  const skipReason = etcdSkipReason();
  if (skipReason) console.warn(`skipping the README's etcd example: ${skipReason}`);
  it.skipIf(skipReason !== undefined)('in etcd, with a liveness lease', async () => {
    const etcd = await startEtcd();
    try {
      const lost: string[] = [];
      const arbiter = new EtcdArbiter({ hosts: [etcd.endpoint], prefix: 'ftvm', leaseTtlSeconds: 5 });
      const { won } = await arbiter.testAndSet('vm-1', 0, 'host-a');
      expect(won).toBe(true);
      const claim = await arbiter.keepAlive('vm-1', 'host-a', {
        onLost: (error) => lost.push(error.message),
      });
      expect(await arbiter.isOwnerAlive('vm-1')).toBe(true);
      await claim.revoke();
      expect(await arbiter.isOwnerAlive('vm-1')).toBe(false);
      await arbiter.close();
      expect(lost).toEqual([]);
    } finally {
      await etcd.stop();
    }
  });
});
