import { mkdtempSync, rmSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FencedFileDisk } from '@ftvm/ft/node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILLER, TmpfsDataDirs, tmpfsSkipReason } from '../nemesis/tmpfs.js';
import { ApiClient, ApiError, HostAgent, initCertificates, loadCredentials } from '../src/index.js';

/**
 * A host whose data directory is full (a tmpfs filled to ENOSPC), in process: what fails, and
 * how. Needs root (mount -t tmpfs): skipped, with the reason in its name, where it cannot mount.
 */

const skip = await tmpfsSkipReason();

describe.skipIf(skip !== undefined)(
  skip ? `a full data directory (skipped: ${skip})` : 'a full data directory',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftvm-data-dir-full-'));
    const data = join(dir, 'data');
    const mounts = new TmpfsDataDirs();
    let host: HostAgent | undefined;
    let orchestrator: ApiClient | undefined;

    beforeAll(async () => {
      await mounts.mount(data);
      initCertificates(join(dir, 'certs'));
    });
    afterAll(async () => {
      orchestrator?.close();
      await host?.close();
      await mounts.unmountAll();
      rmSync(dir, { recursive: true, force: true });
    });

    it('fails a disk write into unallocated space, but not one over written blocks', async () => {
      // A disk copy as a host keeps it: sparse, with the guest's first blocks written.
      const image = join(data, 'disk.img');
      const file = await open(image, 'w');
      await file.truncate(4 << 20);
      await file.write(Buffer.alloc(64 << 10, 1), 0, 64 << 10, 0);
      await file.close();
      const filled = await mounts.fill(data);
      try {
        expect(filled.freeBytes).toBe(0);
        const disk = await FencedFileDisk.open(image, 1);
        try {
          // Rewriting blocks the file holds needs no space (kv's preformatted store is this case).
          await disk.write(4096, new Uint8Array(4096).fill(2));
          // A hole needs a new block: ENOSPC, which virtio-blk answers with VIRTIO_BLK_S_IOERR.
          await expect(disk.write(2 << 20, new Uint8Array(4096).fill(3))).rejects.toMatchObject({
            code: 'ENOSPC',
          });
        } finally {
          await disk.close();
        }
      } finally {
        await mounts.unfill(data);
      }
    });

    it('refuses a role with its own copy of the disk with a typed 507, and keeps serving', async () => {
      const certs = join(dir, 'certs');
      host = new HostAgent({
        name: 'h1',
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: data,
        // No orchestrator listens here: its heartbeats fail quietly, which this test does not need.
        orchestrators: ['127.0.0.1:9'],
        credentials: loadCredentials(certs, 'h1'),
        logger: pino({ level: 'silent' }),
      });
      await host.start();
      orchestrator = new ApiClient(loadCredentials(certs, 'orchestrator'), host.address);
      await mounts.fill(data);
      try {
        const refused = await orchestrator
          .call('POST', '/v1/roles', {
            vm: 'kv',
            role: 'backup',
            epoch: 1,
            ramBytes: 16 << 20,
            disk: { bytes: 16 << 20, mode: 'separate' },
            arbiter: { kind: 'file', dir: join(dir, 'arbiter') },
            failureTimeoutMs: 300,
          })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        expect(refused).toBeInstanceOf(ApiError);
        expect(refused).toMatchObject({ status: 507, reason: 'insufficient-storage' });
        // Still up, and running nothing.
        expect(await orchestrator.call('GET', '/v1/vms')).toEqual([]);
      } finally {
        await mounts.unfill(data);
      }
      // The filler is gone and nothing else was left behind in the data directory.
      expect(await readdir(data)).not.toContain(FILLER);
    });
  },
);
