/// <reference types="node" />
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostIoError } from '@ftvm/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtioBlock, VirtioBlockRequestType, VirtioBlockStatus } from '../virtio/block/virtio-block.js';
import { createVirtioRig } from '../virtio/testing/guest-driver.js';
import { FileBlockBackend } from './file-block-backend.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ftvm-file-disk-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('FileBlockBackend', () => {
  it('reads, writes and flushes a raw image', async () => {
    const path = join(directory, 'disk.img');
    await writeFile(path, new Uint8Array(4096).fill(1));
    const backend = await FileBlockBackend.open(path);
    expect(backend.sizeBytes).toBe(4096);
    expect(backend.readOnly).toBe(false);
    await backend.write(512, new Uint8Array(512).fill(7));
    await backend.flush();
    expect(await backend.read(510, 4)).toEqual(Uint8Array.of(1, 1, 7, 7));
    expect(await backend.read(4094, 4)).toEqual(Uint8Array.of(1, 1, 0, 0));
    await backend.close();
    await backend.close();
    const contents = await readFile(path);
    expect(contents[512]).toBe(7);
    // Reads and writes are synchronous calls on the descriptor: a closed one is never used.
    await expect(backend.read(0, 4)).rejects.toSatisfy(HostIoError.is);
    await expect(backend.write(0, Uint8Array.of(1))).rejects.toSatisfy(HostIoError.is);
  });

  it('opens read-only and refuses writes; a missing image is a HostIoError', async () => {
    const path = join(directory, 'ro.img');
    await writeFile(path, new Uint8Array(1024));
    const backend = await FileBlockBackend.open(path, { readOnly: true });
    await expect(backend.write(0, Uint8Array.of(1))).rejects.toSatisfy(HostIoError.is);
    await backend.flush();
    await backend.close();
    await expect(FileBlockBackend.open(join(directory, 'missing.img'))).rejects.toSatisfy(HostIoError.is);
    await expect(FileBlockBackend.open(directory)).rejects.toSatisfy(HostIoError.is);
  });

  it('serves a virtio-blk device', async () => {
    const path = join(directory, 'guest.img');
    await writeFile(path, new Uint8Array(8 * 512));
    const backend = await FileBlockBackend.open(path);
    const rig = createVirtioRig(new VirtioBlock({ backend }), 256 * 1024);
    rig.driver.initialize();
    const header = new Uint8Array(16);
    header[0] = VirtioBlockRequestType.out;
    header[8] = 3;
    const chain = rig.driver.submit(0, [
      { readable: header },
      { readable: new Uint8Array(512).fill(0x42) },
      { writableBytes: 1 },
    ]);
    await rig.device.hostIdle();
    await new Promise((resolve) => setImmediate(resolve));
    rig.harness.deliver();
    expect(rig.driver.memory.read(chain.addresses[2]!, 1)[0]).toBe(VirtioBlockStatus.ok);
    rig.transport.dispose();
    await rig.device.hostIdle();
    expect((await readFile(path))[3 * 512]).toBe(0x42);
  });
});
