import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FencedFileDisk } from './fenced-file-disk.js';

describe('FencedFileDisk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ftvm-fenced-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses an older epoch's write once a newer epoch went live on the disk", async () => {
    const path = join(dir, 'vm.img');
    writeFileSync(path, new Uint8Array(4096));
    const deposed = await FencedFileDisk.open(path, 1);
    const live = await FencedFileDisk.open(path, 1);
    try {
      await deposed.write(0, new Uint8Array(512).fill(1));
      expect(await deposed.fenceEpoch()).toBe(0);
      await live.fence(2);
      expect(await deposed.fenceEpoch()).toBe(2);
      await expect(deposed.write(0, new Uint8Array(512).fill(9))).rejects.toThrow(
        /a write from epoch 1 after epoch 2 went live/,
      );
      await live.write(512, new Uint8Array(512).fill(2));
      const bytes = readFileSync(path);
      expect(bytes[0]).toBe(1);
      expect(bytes[512]).toBe(2);
      // A lower fence never moves it back; a reopened writer of the live epoch still writes.
      await deposed.fence(1);
      expect(await live.fenceEpoch()).toBe(2);
      const reopened = await FencedFileDisk.open(path, 2);
      await reopened.write(1024, new Uint8Array(512).fill(3));
      await reopened.close();
    } finally {
      await deposed.close();
      await live.close();
    }
  });

  it('says so when the fence holds something else than an epoch', async () => {
    const path = join(dir, 'bad.img');
    writeFileSync(path, new Uint8Array(1024));
    writeFileSync(`${path}.fence`, 'not an epoch\n');
    const disk = await FencedFileDisk.open(path, 1);
    try {
      await expect(disk.write(0, new Uint8Array(512))).rejects.toThrow(/not an epoch/);
    } finally {
      await disk.close();
    }
  });
});
