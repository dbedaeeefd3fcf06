import type { PlainValue } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { VirtioFeature, VirtioStatus } from '../constants.js';
import { createVirtioRig, Reg } from '../testing/guest-driver.js';
import { type BlockBackend, MemoryBlockBackend } from './block-backend.js';
import {
  VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX,
  VIRTIO_BLOCK_REQUEST_BYTES_MAX,
  VirtioBlock,
  VirtioBlockFeature,
  VirtioBlockRequestType,
  VirtioBlockStatus,
} from './virtio-block.js';

const SECTOR = 512;

function header(type: number, sector = 0): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, type, true);
  view.setUint32(8, sector % 2 ** 32, true);
  view.setUint32(12, Math.floor(sector / 2 ** 32), true);
  return bytes;
}

function pattern(lengthBytes: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: lengthBytes }, (_, i) => (i * 7 + seed) & 0xff);
}

/** A backend whose calls wait until the test resolves or fails them, in any order. */
class ControlledBackend implements BlockBackend {
  readonly sizeBytes: number;
  readonly readOnly = false;
  readonly inner: MemoryBlockBackend;
  readonly calls: { operation: string; offset: number; settle: (fail?: boolean) => void }[] = [];

  constructor(sizeBytes: number) {
    this.sizeBytes = sizeBytes;
    this.inner = new MemoryBlockBackend(sizeBytes);
  }

  #call<T>(operation: string, offset: number, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.calls.push({
        operation,
        offset,
        settle: (fail) => (fail ? reject(new Error('injected IO error')) : run().then(resolve, reject)),
      });
    });
  }

  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    return this.#call('read', offset, () => this.inner.read(offset, lengthBytes));
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#call('write', offset, () => this.inner.write(offset, data));
  }
  flush(): Promise<void> {
    return this.#call('flush', 0, () => this.inner.flush());
  }
}

/** Lets queued microtasks (the host half's promise chain) run. */
async function settleHost(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function blockRig(backend: BlockBackend, options: { serial?: string; features?: bigint } = {}) {
  const rig = createVirtioRig(new VirtioBlock({ backend, serial: options.serial }), 512 * 1024);
  const status = rig.driver.initialize(options.features === undefined ? {} : { features: options.features });
  expect(status).toBe(
    VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOk | VirtioStatus.driverOk,
  );
  const { driver, device, harness } = rig;
  return {
    ...rig,
    /** Submits a request: header, optional write data, `inBytes` of data to read, a status byte. */
    submit(type: number, sector: number, data?: Uint8Array, inBytes = 0, indirect = false) {
      const buffers = [
        { readable: header(type, sector) },
        ...(data === undefined ? [] : [{ readable: data }]),
        ...(inBytes > 0 ? [{ writableBytes: inBytes }] : []),
        { writableBytes: 1 },
      ];
      const chain = driver.submit(0, buffers, { indirect, notify: false });
      const statusAddress = chain.addresses[chain.addresses.length - 1]!;
      const dataAddress = inBytes > 0 ? chain.addresses[chain.addresses.length - 2]! : 0;
      // A marker the device must overwrite.
      driver.memory.write(statusAddress, Uint8Array.of(0xee));
      driver.notify(0);
      return {
        headIndex: chain.headIndex,
        dataAddress,
        status: () => driver.memory.read(statusAddress, 1)[0],
        data: () => driver.memory.read(dataAddress, inBytes),
      };
    },
    /** Waits for the host half, then applies its completions as at a step boundary. */
    async complete(): Promise<void> {
      await device.hostIdle();
      await settleHost();
      harness.deliver();
    },
  };
}

describe('virtio-blk (virtio 1.2 §5.2)', () => {
  it('reports its capacity in 512-byte sectors, FLUSH, and RO only for a read-only backend', () => {
    const rig = createVirtioRig(new VirtioBlock({ backend: new MemoryBlockBackend(3 * SECTOR + 100) }));
    expect(rig.driver.read(Reg.deviceId)).toBe(2);
    expect(rig.driver.read(Reg.config)).toBe(3);
    expect(rig.driver.read(Reg.config + 4)).toBe(0);
    expect(rig.harness.read(Reg.config, 1)).toBe(3);
    expect(rig.driver.read(Reg.config + 12)).toBe(254); // seg_max, as QEMU
    expect(rig.driver.read(Reg.config + 20)).toBe(512); // blk_size
    expect(rig.driver.read(Reg.config + 52)).toBe(0);
    expect(rig.harness.read(Reg.config + 56, 1)).toBe(0);
    expect(rig.harness.read(Reg.config + 56, 4)).toBe(0xffff_ffff); // past QEMU's 57 bytes
    const features = rig.driver.offeredFeatures();
    expect(features & (1n << VirtioBlockFeature.flush)).not.toBe(0n);
    expect(features & (1n << VirtioBlockFeature.readOnly)).toBe(0n);
    const readOnly = createVirtioRig(
      new VirtioBlock({ backend: new MemoryBlockBackend(SECTOR, { readOnly: true }) }),
    );
    expect(readOnly.driver.offeredFeatures() & (1n << VirtioBlockFeature.readOnly)).not.toBe(0n);
  });

  it('writes, then reads back, through bounce buffers (with and without indirect descriptors)', async () => {
    for (const indirect of [false, true]) {
      const backend = new MemoryBlockBackend(64 * SECTOR);
      const rig = blockRig(backend);
      const data = pattern(2 * SECTOR, 3);
      const write = rig.submit(VirtioBlockRequestType.out, 5, data, 0, indirect);
      expect(rig.device.inFlightRequests()).toEqual([
        { id: 1, operation: 'write', offsetBytes: 5 * SECTOR, lengthBytes: 2 * SECTOR, answered: false },
      ]);
      expect(rig.driver.takeUsed(0)).toEqual([]);
      await rig.complete();
      expect(write.status()).toBe(VirtioBlockStatus.ok);
      expect(rig.driver.takeUsed(0)).toEqual([{ id: write.headIndex, lengthBytes: 1 }]);
      expect(backend.bytes.slice(5 * SECTOR, 7 * SECTOR)).toEqual(data);

      const read = rig.submit(VirtioBlockRequestType.in, 5, undefined, 2 * SECTOR, indirect);
      await rig.complete();
      expect(read.status()).toBe(VirtioBlockStatus.ok);
      expect(read.data()).toEqual(data);
      expect(rig.driver.takeUsed(0)).toEqual([{ id: read.headIndex, lengthBytes: 2 * SECTOR + 1 }]);
      expect(rig.device.inFlightRequests()).toEqual([]);
      expect(rig.harness.env.irq.level).toBe(true);
    }
  });

  it('flushes the backend on VIRTIO_BLK_T_FLUSH', async () => {
    const backend = new MemoryBlockBackend(8 * SECTOR);
    const rig = blockRig(backend);
    const flush = rig.submit(VirtioBlockRequestType.flush, 0);
    await rig.complete();
    expect(flush.status()).toBe(VirtioBlockStatus.ok);
    expect(backend.flushes).toBe(1);
  });

  it('writes through (a flush after every write) when the driver did not take VIRTIO_BLK_F_FLUSH', async () => {
    const backend = new MemoryBlockBackend(8 * SECTOR);
    const rig = blockRig(backend, { features: 1n << VirtioFeature.version1 });
    rig.submit(VirtioBlockRequestType.out, 0, pattern(SECTOR, 1));
    await rig.complete();
    expect(backend.flushes).toBe(1);
  });

  it('answers GET_ID with the serial, zero-padded to 20 bytes', () => {
    const rig = blockRig(new MemoryBlockBackend(SECTOR), { serial: 'ftvm-disk-0' });
    const request = rig.submit(VirtioBlockRequestType.getId, 0, undefined, 20);
    expect(request.status()).toBe(VirtioBlockStatus.ok);
    const expected = new Uint8Array(20);
    expected.set(new TextEncoder().encode('ftvm-disk-0'));
    expect(request.data()).toEqual(expected);
  });

  it('answers unknown types with UNSUPP and bad ranges or lengths with IOERR', () => {
    const rig = blockRig(new MemoryBlockBackend(8 * SECTOR));
    expect(rig.submit(11, 0).status()).toBe(VirtioBlockStatus.unsupported); // DISCARD, not offered
    expect(rig.submit(VirtioBlockRequestType.in, 7, undefined, 2 * SECTOR).status()).toBe(
      VirtioBlockStatus.ioError,
    );
    expect(rig.submit(VirtioBlockRequestType.in, 2 ** 40, undefined, SECTOR).status()).toBe(
      VirtioBlockStatus.ioError,
    );
    expect(rig.submit(VirtioBlockRequestType.in, 0, undefined, 100).status()).toBe(VirtioBlockStatus.ioError);
    expect(rig.submit(VirtioBlockRequestType.out, 0, new Uint8Array(100)).status()).toBe(
      VirtioBlockStatus.ioError,
    );
    expect(rig.device.inFlightRequests()).toEqual([]);
  });

  it('answers a request larger than the limit with IOERR', () => {
    const rig = blockRig(new MemoryBlockBackend(2 * VIRTIO_BLOCK_REQUEST_BYTES_MAX));
    // The test RAM cannot hold 4 MiB, so the chain repeats one buffer: the device only counts bytes.
    const buffer = rig.driver.allocate(VIRTIO_BLOCK_REQUEST_BYTES_MAX / 16);
    const status = rig.driver.allocate(1);
    rig.driver.memory.write(status, Uint8Array.of(0xee));
    rig.driver.submit(
      0,
      [
        { readable: header(VirtioBlockRequestType.in, 0) },
        ...Array.from({ length: 17 }, () => ({
          writableBytes: VIRTIO_BLOCK_REQUEST_BYTES_MAX / 16,
          address: buffer,
        })),
        { writableBytes: 1, address: status },
      ],
      { indirect: true },
    );
    expect(rig.driver.memory.read(status, 1)[0]).toBe(VirtioBlockStatus.ioError);
    expect(rig.device.inFlightRequests()).toEqual([]);
  });

  it('leaves requests in the ring while the bounce buffers are full, and takes them as completions make room', async () => {
    const requestBytes = VIRTIO_BLOCK_REQUEST_BYTES_MAX;
    const count = VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX / requestBytes + 1;
    const backend = new ControlledBackend(count * requestBytes);
    const rig = createVirtioRig(new VirtioBlock({ backend }), 512 * 1024);
    rig.driver.initialize({ queueSizes: [32] });
    // One 256 KiB guest buffer, referenced 16 times by each request (the device counts bytes).
    const buffer = rig.driver.allocate(requestBytes / 16);
    const statuses = Array.from({ length: count }, (_, i) => {
      const chain = rig.driver.submit(
        0,
        [
          { readable: header(VirtioBlockRequestType.out, (i * requestBytes) / SECTOR) },
          ...Array.from({ length: 16 }, () => ({ readableBytes: requestBytes / 16, address: buffer })),
          { writableBytes: 1 },
        ],
        { indirect: true, notify: false },
      );
      return chain.addresses.at(-1)!;
    });
    rig.driver.notify(0);
    // 64 MiB of write data is held; the last request waits in the ring.
    expect(rig.device.inFlightRequests()).toHaveLength(count - 1);
    await settleHost();
    backend.calls[0]!.settle();
    await settleHost();
    rig.harness.deliver();
    expect(rig.driver.memory.read(statuses[0]!, 1)[0]).toBe(VirtioBlockStatus.ok);
    expect(rig.device.inFlightRequests()).toHaveLength(count - 1);
    expect(rig.device.inFlightRequests().at(-1)!.offsetBytes).toBe((count - 1) * requestBytes);
  });

  it('refuses writes to a read-only disk with IOERR and leaves it untouched', async () => {
    const backend = new MemoryBlockBackend(pattern(4 * SECTOR, 9), { readOnly: true });
    const rig = blockRig(backend);
    const write = rig.submit(VirtioBlockRequestType.out, 0, new Uint8Array(SECTOR));
    expect(write.status()).toBe(VirtioBlockStatus.ioError);
    const read = rig.submit(VirtioBlockRequestType.in, 1, undefined, SECTOR);
    await rig.complete();
    expect(read.data()).toEqual(pattern(4 * SECTOR, 9).slice(SECTOR, 2 * SECTOR));
    expect(backend.bytes).toEqual(pattern(4 * SECTOR, 9));
  });

  it('turns a backend failure into IOERR and acknowledges a write only once the backend resolved it', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const rig = blockRig(backend);
    const write = rig.submit(VirtioBlockRequestType.out, 1, pattern(SECTOR, 2));
    const failing = rig.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    await settleHost();
    expect(backend.calls.map((call) => call.operation)).toEqual(['write']); // one at a time
    rig.harness.deliver();
    expect(write.status()).toBe(0xee);
    backend.calls[0]!.settle();
    await settleHost();
    rig.harness.deliver();
    expect(write.status()).toBe(VirtioBlockStatus.ok);
    expect(backend.calls.map((call) => call.operation)).toEqual(['write', 'read']);
    backend.calls[1]!.settle(true);
    await rig.complete();
    expect(failing.status()).toBe(VirtioBlockStatus.ioError);
    expect(failing.data()).not.toEqual(pattern(SECTOR, 2));
  });

  it('completes requests in the order they were issued', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const rig = blockRig(backend, { serial: 'x' });
    const first = rig.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    const second = rig.submit(VirtioBlockRequestType.getId, 0, undefined, 20);
    const third = rig.submit(VirtioBlockRequestType.out, 2, pattern(SECTOR, 4));
    await settleHost();
    // GET_ID is answered at once but waits behind the read.
    expect(second.status()).toBe(0xee);
    expect(rig.device.inFlightRequests().map((request) => request.answered)).toEqual([false, true, false]);
    // A completion applied out of order (a hostile log) waits too.
    rig.harness.env.inject({ type: 'request-completed', data: { id: 3, status: 0, data: null } });
    rig.harness.deliver();
    expect(third.status()).toBe(0xee);
    backend.calls[0]!.settle();
    await settleHost();
    rig.harness.deliver();
    expect([first.status(), second.status(), third.status()]).toEqual([0, 0, 0]);
    expect(rig.driver.takeUsed(0).map((element) => element.id)).toEqual([
      first.headIndex,
      second.headIndex,
      third.headIndex,
    ]);
  });

  it('writes read data into guest memory only when the completion is applied (DMA race)', async () => {
    const backend = new MemoryBlockBackend(pattern(8 * SECTOR, 5));
    const rig = blockRig(backend);
    const read = rig.submit(VirtioBlockRequestType.in, 2, undefined, SECTOR);
    // The guest scribbles on its own buffer while the request is in flight.
    const scribble = new Uint8Array(SECTOR).fill(0xab);
    rig.driver.memory.write(read.dataAddress, scribble);
    await rig.device.hostIdle();
    await settleHost();
    // The host has the data; the event waits for a step boundary: guest memory is unchanged.
    expect(rig.harness.env.injected).toHaveLength(1);
    expect(read.data()).toEqual(scribble);
    const event = rig.harness.env.injected[0]!;
    expect((event.data as { data: Uint8Array }).data).toEqual(
      pattern(8 * SECTOR, 5).slice(2 * SECTOR, 3 * SECTOR),
    );
    rig.harness.deliver();
    expect(read.data()).toEqual(pattern(8 * SECTOR, 5).slice(2 * SECTOR, 3 * SECTOR));
  });

  it('copies write data at notify time, so a guest that changes its buffer afterwards changes nothing', async () => {
    const backend = new MemoryBlockBackend(8 * SECTOR);
    const rig = blockRig(backend);
    const data = pattern(SECTOR, 1);
    rig.submit(VirtioBlockRequestType.out, 0, data);
    rig.driver.memory.region.bytes.fill(0x55); // the guest reuses all its memory at once
    await rig.complete();
    expect(backend.bytes.slice(0, SECTOR)).toEqual(data);
  });

  it('needs a reset for a request without a status byte, and drops stale completions after a reset', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const rig = blockRig(backend);
    rig.driver.submit(0, [{ readable: header(VirtioBlockRequestType.in, 0) }]);
    expect(rig.driver.read(Reg.status) & VirtioStatus.deviceNeedsReset).toBe(VirtioStatus.deviceNeedsReset);
    expect(rig.transport.failureReason).toMatch(/status byte/);

    const fresh = blockRig(backend);
    fresh.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    fresh.driver.write(Reg.status, 0);
    expect(fresh.device.inFlightRequests()).toEqual([]);
    fresh.driver.initialize();
    await settleHost();
    backend.calls.at(-1)!.settle();
    await fresh.complete();
    expect(fresh.driver.takeUsed(0)).toEqual([]);
    expect(fresh.driver.read(Reg.status) & VirtioStatus.deviceNeedsReset).toBe(0);
  });

  it('ignores completion events it cannot use (a hostile log)', () => {
    const rig = blockRig(new MemoryBlockBackend(8 * SECTOR));
    const read = rig.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    const hostile: PlainValue[] = [
      null,
      1,
      'x',
      [1],
      { id: 'one' },
      { id: 99, status: 0 },
      new Uint8Array(3),
    ];
    for (const data of hostile) {
      rig.harness.device.applyEvent({ type: 'request-completed', data });
    }
    expect(read.status()).toBe(0xee);
    // A read "completed" with the wrong length of data is an IO error, not a short read.
    rig.harness.device.applyEvent({
      type: 'request-completed',
      data: { id: 1, status: 0, data: new Uint8Array(3) },
    });
    expect(read.status()).toBe(VirtioBlockStatus.ioError);
  });
});

describe('virtio-blk state, go-live and replay', () => {
  it('saves in-flight requests mid-request; the restored device reissues them on go-live', async () => {
    const disk = pattern(16 * SECTOR, 11);
    const original = blockRig(new ControlledBackend(16 * SECTOR));
    const data = pattern(SECTOR, 77);
    original.submit(VirtioBlockRequestType.out, 3, data);
    const read = original.submit(VirtioBlockRequestType.in, 3, undefined, SECTOR);
    const section = original.transport.saveState();

    // A backup on a shared disk: it follows the log and does no IO until it goes live.
    const backend = new MemoryBlockBackend(disk);
    const device = new VirtioBlock({ backend, issueHostIo: false });
    const restored = createVirtioRig(device, 512 * 1024);
    restored.harness.env.memory.region.bytes.set(original.harness.env.memory.region.bytes);
    restored.transport.restoreState(structuredClone(section));
    expect(restored.transport.saveState()).toEqual(section);
    expect(device.inFlightRequests().map((request) => request.operation)).toEqual(['write', 'read']);
    await settleHost();
    expect(restored.harness.env.injected).toEqual([]);

    device.onGoLive();
    await device.hostIdle();
    await settleHost();
    restored.harness.deliver();
    expect(backend.bytes.slice(3 * SECTOR, 4 * SECTOR)).toEqual(data);
    expect(device.inFlightRequests()).toEqual([]);
    // The guest sees both completions, in order, with the written data read back.
    const used = new Map(
      [...Array(2)].map((_, i) => {
        const slot = original.driver.queues[0]!.deviceArea + 4 + 8 * i;
        return [restored.harness.env.memory.readU32(slot), restored.harness.env.memory.readU32(slot + 4)];
      }),
    );
    expect([...used.values()]).toEqual([1, SECTOR + 1]);
    expect(restored.harness.env.memory.read(read.dataAddress, SECTOR)).toEqual(data);
    expect(read.status()).toBe(0xee); // the original never completed
  });

  it('a replayed completion leaves the same guest memory as the recorded one', async () => {
    const backend = new MemoryBlockBackend(pattern(8 * SECTOR, 21));
    const primary = blockRig(backend);
    primary.submit(VirtioBlockRequestType.in, 1, undefined, 2 * SECTOR);
    await primary.device.hostIdle();
    await settleHost();
    const logged = [...primary.harness.env.injected];
    primary.harness.deliver();

    // The backup: a failing disk it never touches; the logged event alone brings the data.
    const failing: BlockBackend = {
      sizeBytes: 8 * SECTOR,
      readOnly: false,
      read: () => Promise.reject(new Error('backup must not read')),
      write: () => Promise.reject(new Error('backup must not write')),
      flush: () => Promise.reject(new Error('backup must not flush')),
    };
    const backup = createVirtioRig(new VirtioBlock({ backend: failing, issueHostIo: false }), 512 * 1024);
    backup.driver.initialize();
    const chain = [
      { readable: header(VirtioBlockRequestType.in, 1) },
      { writableBytes: 2 * SECTOR },
      { writableBytes: 1 },
    ];
    const submitted = backup.driver.submit(0, chain);
    backup.driver.memory.write(submitted.addresses[2]!, Uint8Array.of(0xee));
    for (const event of logged) backup.harness.device.applyEvent(event);
    expect(backup.harness.env.memory.region.bytes).toEqual(primary.harness.env.memory.region.bytes);
  });
});
