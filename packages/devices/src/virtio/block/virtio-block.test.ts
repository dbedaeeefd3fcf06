import { DivergenceError, type PlainValue } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { VirtioFeature, VirtioStatus } from '../constants.js';
import { createVirtioRig, Reg } from '../testing/guest-driver.js';
import { type BlockBackend, MemoryBlockBackend } from './block-backend.js';
import {
  diskWriteSummary,
  fnv1a32,
  VIRTIO_BLOCK_BACKUP_READ_TRIES,
  VIRTIO_BLOCK_IN_FLIGHT_WRITE_BYTES_MAX,
  VIRTIO_BLOCK_REQUEST_BYTES_MAX,
  VirtioBlock,
  VirtioBlockFeature,
  type VirtioBlockHostIo,
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

/** A disk in memory that lists the calls made to it. */
class RecordingBackend implements BlockBackend {
  readonly inner: MemoryBlockBackend;
  readonly calls: string[] = [];
  closes = 0;

  constructor(contents: number | Uint8Array) {
    this.inner = new MemoryBlockBackend(contents);
  }
  get sizeBytes(): number {
    return this.inner.sizeBytes;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get bytes(): Uint8Array {
    return this.inner.bytes;
  }
  read(offset: number, lengthBytes: number): Promise<Uint8Array> {
    this.calls.push(`read ${offset}`);
    return this.inner.read(offset, lengthBytes);
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    this.calls.push(`write ${offset}`);
    return this.inner.write(offset, data);
  }
  flush(): Promise<void> {
    this.calls.push('flush');
    return this.inner.flush();
  }
  async close(): Promise<void> {
    this.closes++;
  }
}

/** Lets queued microtasks (the host half's promise chain) run. */
async function settleHost(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

interface BlockRigOptions {
  serial?: string;
  features?: bigint;
  hostIo?: VirtioBlockHostIo;
  logReadData?: boolean;
  /** Hold the device's outputs until the test releases them (an FT primary's output rule). */
  holdOutputs?: boolean;
  writeBack?: boolean;
}

function blockRig(backend: BlockBackend, options: BlockRigOptions = {}) {
  const { serial, hostIo, logReadData, writeBack } = options;
  const rig = createVirtioRig(
    new VirtioBlock({ backend, serial, hostIo, logReadData, writeBack }),
    512 * 1024,
  );
  rig.harness.env.holdOutputs = options.holdOutputs ?? false;
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

  it('takes a write whatever its framing: header and data sharing a descriptor, data split (§2.7.4)', async () => {
    const backend = new MemoryBlockBackend(64 * SECTOR);
    const rig = blockRig(backend);
    const data = pattern(2 * SECTOR, 9);
    const first = new Uint8Array(16 + 100);
    first.set(header(VirtioBlockRequestType.out, 3));
    first.set(data.subarray(0, 100), 16);
    const chain = rig.driver.submit(
      0,
      [
        { readable: first },
        { readable: data.subarray(100, 700) },
        { readable: data.subarray(700) },
        { writableBytes: 1 },
      ],
      { notify: false },
    );
    rig.driver.notify(0);
    await rig.complete();
    expect(rig.driver.memory.read(chain.addresses[3]!, 1)[0]).toBe(VirtioBlockStatus.ok);
    expect(backend.bytes.slice(3 * SECTOR, 5 * SECTOR)).toEqual(data);
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

/** The `unapplied` list inside a saved virtio-mmio section (the device's own section is nested). */
function findUnapplied(section: unknown): { id: number }[] {
  const seen: unknown[] = [section];
  while (seen.length > 0) {
    const value = seen.pop();
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array) continue;
    const record = value as Record<string, unknown>;
    if (Array.isArray(record.unapplied)) return record.unapplied as { id: number }[];
    seen.push(...Object.values(record));
  }
  throw new Error('no unapplied list in the section');
}

/** Byte-for-byte equality of two large arrays (guest RAM), fast. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

/** Bytes of `env.outputs` of one stream, one entry per output. */
function outputsOf(rig: ReturnType<typeof blockRig>, kind: string): Uint8Array[] {
  return rig.harness.env.outputs.filter((output) => output.kind === kind).map((output) => output.data);
}

describe('virtio-blk writes are outputs (the output rule)', () => {
  it('summarizes a write as offset (u64 LE), length (u32 LE) and the FNV-1a of the data (u32 LE)', () => {
    // Reference values of 32-bit FNV-1a.
    expect(fnv1a32(new Uint8Array(0))).toBe(0x811c_9dc5);
    expect(fnv1a32(new TextEncoder().encode('a'))).toBe(0xe40c_292c);
    expect(fnv1a32(new TextEncoder().encode('foobar'))).toBe(0xbf9c_f968);

    const rig = blockRig(new MemoryBlockBackend(2 ** 20 * SECTOR));
    const data = pattern(2 * SECTOR, 3);
    rig.harness.env.setIcount(77);
    rig.submit(VirtioBlockRequestType.out, 2 ** 20 - 2, data);
    const expected = new Uint8Array(16);
    const view = new DataView(expected.buffer);
    view.setUint32(0, ((2 ** 20 - 2) * SECTOR) % 2 ** 32, true);
    view.setUint32(4, Math.floor(((2 ** 20 - 2) * SECTOR) / 2 ** 32), true);
    view.setUint32(8, 2 * SECTOR, true);
    view.setUint32(12, fnv1a32(data), true);
    expect(rig.harness.env.outputs).toEqual([{ kind: 'disk-write', data: expected, icount: 77 }]);
    expect(diskWriteSummary((2 ** 20 - 2) * SECTOR, data)).toEqual(expected);
    // Offsets past 4 GiB keep their high bits.
    expect(diskWriteSummary(2 ** 33 + 512, data).subarray(0, 8)).toEqual(
      Uint8Array.of(0x00, 0x02, 0, 0, 2, 0, 0, 0),
    );
  });

  it('makes no output for reads, GET_ID, or writes refused at once', () => {
    const rig = blockRig(new MemoryBlockBackend(pattern(4 * SECTOR, 1), { readOnly: true }));
    rig.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    rig.submit(VirtioBlockRequestType.getId, 0, undefined, 20);
    rig.submit(VirtioBlockRequestType.out, 0, pattern(SECTOR, 2)); // read-only disk
    expect(rig.harness.env.outputs).toEqual([]);
  });

  it('holds a write until released: no backend write, no completion, and a read behind it waits for the new data', async () => {
    const backend = new RecordingBackend(pattern(8 * SECTOR, 40));
    const rig = blockRig(backend, { holdOutputs: true });
    const data = pattern(2 * SECTOR, 9);
    const write = rig.submit(VirtioBlockRequestType.out, 2, data);
    const read = rig.submit(VirtioBlockRequestType.in, 2, undefined, 2 * SECTOR);
    expect(rig.harness.env.heldOutputs).toBe(1);
    await settleHost();
    expect(backend.calls).toEqual([]);
    expect(backend.bytes.slice(2 * SECTOR, 4 * SECTOR)).toEqual(
      pattern(8 * SECTOR, 40).slice(2 * SECTOR, 4 * SECTOR),
    );
    expect(rig.harness.env.injected).toEqual([]);
    rig.harness.deliver();
    expect([write.status(), read.status()]).toEqual([0xee, 0xee]);
    expect(rig.driver.takeUsed(0)).toEqual([]);

    expect(rig.harness.env.releaseOutputs()).toBe(1);
    await rig.complete();
    expect(backend.calls).toEqual([`write ${2 * SECTOR}`, `read ${2 * SECTOR}`]);
    expect([write.status(), read.status()]).toEqual([VirtioBlockStatus.ok, VirtioBlockStatus.ok]);
    expect(read.data()).toEqual(data);
    expect(rig.driver.takeUsed(0).map((element) => element.id)).toEqual([write.headIndex, read.headIndex]);
  });

  it('injects the completions of a held write and of the read behind it only after the IO', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const rig = blockRig(backend, { holdOutputs: true });
    rig.submit(VirtioBlockRequestType.out, 0, pattern(SECTOR, 1));
    rig.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    await settleHost();
    expect(backend.calls).toEqual([]);
    rig.harness.env.releaseOutputs();
    await settleHost();
    expect(backend.calls.map((call) => call.operation)).toEqual(['write']);
    expect(rig.harness.env.injected).toEqual([]); // the write has not resolved
    backend.calls[0]!.settle();
    await settleHost();
    expect(rig.harness.env.injected.map((event) => (event.data as { id: number }).id)).toEqual([1]);
    expect(backend.calls.map((call) => call.operation)).toEqual(['write', 'read']);
  });

  it('holds a flush until released', async () => {
    const backend = new RecordingBackend(8 * SECTOR);
    const rig = blockRig(backend, { holdOutputs: true });
    const flush = rig.submit(VirtioBlockRequestType.flush, 0);
    expect(outputsOf(rig, 'disk-flush')).toEqual([new Uint8Array(0)]);
    await settleHost();
    expect(backend.calls).toEqual([]);
    rig.harness.deliver();
    expect(flush.status()).toBe(0xee);
    rig.harness.env.releaseOutputs();
    await rig.complete();
    expect(backend.calls).toEqual(['flush']);
    expect(flush.status()).toBe(VirtioBlockStatus.ok);
  });

  it('holds the implicit flush of a write-through disk as an output of its own, after the write', async () => {
    const backend = new RecordingBackend(8 * SECTOR);
    const rig = blockRig(backend, { holdOutputs: true, features: 1n << VirtioFeature.version1 });
    const write = rig.submit(VirtioBlockRequestType.out, 1, pattern(SECTOR, 5));
    expect(rig.harness.env.outputs.map((output) => output.kind)).toEqual(['disk-write', 'disk-flush']);
    rig.harness.env.releaseOutputs(1);
    await settleHost();
    expect(backend.calls).toEqual([`write ${SECTOR}`]);
    expect(rig.harness.env.injected).toEqual([]);
    rig.harness.env.releaseOutputs(1);
    await rig.complete();
    expect(backend.calls).toEqual([`write ${SECTOR}`, 'flush']);
    expect(write.status()).toBe(VirtioBlockStatus.ok);
  });

  it('never writes a held write once disposed, and still closes the backend', async () => {
    const backend = new RecordingBackend(8 * SECTOR);
    const rig = blockRig(backend, { holdOutputs: true });
    rig.submit(VirtioBlockRequestType.out, 0, pattern(SECTOR, 5));
    rig.transport.dispose();
    await rig.device.hostIdle();
    await settleHost();
    rig.harness.env.releaseOutputs();
    await settleHost();
    expect(backend.calls).toEqual([]);
    expect(backend.closes).toBe(1);
    expect(rig.harness.env.injected).toEqual([]);
  });
});

describe('virtio-blk host IO modes', () => {
  async function runMode(hostIo: VirtioBlockHostIo) {
    const backend = new RecordingBackend(pattern(8 * SECTOR, 60));
    const rig = blockRig(backend, { hostIo });
    rig.submit(VirtioBlockRequestType.out, 1, pattern(SECTOR, 61));
    rig.submit(VirtioBlockRequestType.in, 3, undefined, SECTOR);
    rig.submit(VirtioBlockRequestType.flush, 0);
    await rig.device.hostIdle();
    await settleHost();
    return { rig, backend };
  }

  it("'all' reads, writes and flushes, and injects every completion", async () => {
    const { rig, backend } = await runMode('all');
    expect(backend.calls).toEqual([`write ${SECTOR}`, `read ${3 * SECTOR}`, 'flush']);
    expect(rig.harness.env.injected).toHaveLength(3);
    expect(backend.bytes.slice(SECTOR, 2 * SECTOR)).toEqual(pattern(SECTOR, 61));
  });

  it("'reads' reads but never writes or flushes, and injects nothing (a backup that reads the disk)", async () => {
    const { rig, backend } = await runMode('reads');
    expect(backend.calls).toEqual([`read ${3 * SECTOR}`]);
    expect(backend.bytes).toEqual(pattern(8 * SECTOR, 60));
    expect(rig.harness.env.injected).toEqual([]);
    // The outputs are made all the same: the guest's path is the same on every machine.
    expect(rig.harness.env.outputs.map((output) => output.kind)).toEqual(['disk-write', 'disk-flush']);
  });

  it("'none' does nothing", async () => {
    const { rig, backend } = await runMode('none');
    expect(backend.calls).toEqual([]);
    expect(rig.harness.env.injected).toEqual([]);
    expect(rig.harness.env.outputs.map((output) => output.kind)).toEqual(['disk-write', 'disk-flush']);
  });

  it('takes issueHostIo as a deprecated alias, and changes mode through hostIo / setHostIo', () => {
    const disk = new MemoryBlockBackend(SECTOR);
    expect(new VirtioBlock({ backend: disk }).hostIo).toBe('all');
    expect(new VirtioBlock({ backend: disk, issueHostIo: true }).hostIo).toBe('all');
    expect(new VirtioBlock({ backend: disk, issueHostIo: false }).hostIo).toBe('none');
    expect(new VirtioBlock({ backend: disk, issueHostIo: false, hostIo: 'reads' }).hostIo).toBe('reads');
    const device = new VirtioBlock({ backend: disk, hostIo: 'none' });
    expect(device.issueHostIo).toBe(false);
    device.setHostIo('reads');
    expect(device.hostIo).toBe('reads');
    expect(device.issueHostIo).toBe(true);
    device.issueHostIo = false;
    expect(device.hostIo).toBe('none');
    device.hostIo = 'all';
    expect(device.hostIo).toBe('all');
    expect(() => device.setHostIo('some' as VirtioBlockHostIo)).toThrow(RangeError);
    expect(() => new VirtioBlock({ backend: disk, hostIo: 'x' as VirtioBlockHostIo })).toThrow(RangeError);
  });

  it('go-live switches to all and reissues in-flight writes and flushes, without repeating their outputs', async () => {
    const backend = new RecordingBackend(8 * SECTOR);
    const rig = blockRig(backend, { hostIo: 'none' });
    const data = pattern(SECTOR, 33);
    const write = rig.submit(VirtioBlockRequestType.out, 4, data);
    const flush = rig.submit(VirtioBlockRequestType.flush, 0);
    const read = rig.submit(VirtioBlockRequestType.in, 4, undefined, SECTOR);
    await settleHost();
    expect(backend.calls).toEqual([]);
    const outputs = rig.harness.env.outputs.length;

    rig.transport.onGoLive();
    expect(rig.device.hostIo).toBe('all');
    await rig.complete();
    expect(backend.calls).toEqual([`write ${4 * SECTOR}`, 'flush', `read ${4 * SECTOR}`]);
    expect(backend.bytes.slice(4 * SECTOR, 5 * SECTOR)).toEqual(data);
    expect([write.status(), flush.status(), read.status()]).toEqual([0, 0, 0]);
    expect(read.data()).toEqual(data);
    expect(rig.harness.env.outputs).toHaveLength(outputs);
  });
});

describe('virtio-blk backup reads (completions without their data)', () => {
  /** The log's completion of request `id`, without the data its applier reads itself. */
  const dataLessCompletion = (id = 1, status: number = VirtioBlockStatus.ok) => ({
    type: 'request-completed',
    data: { id, status, data: null, dataFromBackend: true },
  });

  /** A backup in 'reads' mode whose guest reads `sector`, which holds `pattern(SECTOR, seed)`. */
  function backupReading(sector: number, seed: number) {
    const backend = new ControlledBackend(8 * SECTOR);
    backend.inner.bytes.set(pattern(SECTOR, seed), sector * SECTOR);
    const backup = blockRig(backend, { hostIo: 'reads' });
    const read = backup.submit(VirtioBlockRequestType.in, sector, undefined, SECTOR);
    return { backend, backup, read };
  }

  /** The same guest work on any rig: a write, a read over it, a read elsewhere, a GET_ID. */
  function guestWork(rig: ReturnType<typeof blockRig>) {
    return [
      rig.submit(VirtioBlockRequestType.out, 2, pattern(SECTOR, 90)),
      rig.submit(VirtioBlockRequestType.in, 1, undefined, 3 * SECTOR),
      rig.submit(VirtioBlockRequestType.in, 6, undefined, SECTOR),
      rig.submit(VirtioBlockRequestType.getId, 0, undefined, 20),
    ];
  }

  async function primaryRun(logReadData: boolean) {
    const backend = new RecordingBackend(pattern(8 * SECTOR, 70));
    const rig = blockRig(backend, { logReadData, serial: 'disk' });
    const requests = guestWork(rig);
    await rig.device.hostIdle();
    await settleHost();
    const logged = [...rig.harness.env.injected];
    rig.harness.deliver();
    return { rig, backend, requests, logged };
  }

  it('logs read completions with data null and dataFromBackend, and leaves the guest the same memory', async () => {
    const normal = await primaryRun(true);
    const lean = await primaryRun(false);
    const reads = lean.logged.map(
      (event) => event.data as { id: number; data: unknown; dataFromBackend?: true },
    );
    expect(reads).toEqual([
      { id: 1, status: 0, data: null },
      { id: 2, status: 0, data: null, dataFromBackend: true },
      { id: 3, status: 0, data: null, dataFromBackend: true },
    ]);
    expect(lean.requests[1]!.data().subarray(SECTOR, 2 * SECTOR)).toEqual(pattern(SECTOR, 90));
    expect(
      sameBytes(lean.rig.harness.env.memory.region.bytes, normal.rig.harness.env.memory.region.bytes),
    ).toBe(true);
    expect(lean.rig.driver.takeUsed(0)).toEqual(normal.rig.driver.takeUsed(0));
  });

  for (const hostIo of ['reads', 'all'] as const) {
    it(`a backup in '${hostIo}' mode fills the data from its own disk: the same guest memory and used ring`, async () => {
      const normal = await primaryRun(true);
      const lean = await primaryRun(false);
      // 'reads': the shared disk (the primary's writes are on it); 'all': the backup's own copy.
      const backend = hostIo === 'reads' ? lean.backend : new RecordingBackend(pattern(8 * SECTOR, 70));
      const callsBefore = backend.calls.length;
      const backup = blockRig(backend, { hostIo, serial: 'disk' });
      guestWork(backup);
      await backup.device.hostReadsSettled();
      for (const event of lean.logged) {
        expect(backup.device.isReadyFor(event)).toBe(true);
        backup.harness.device.applyEvent(event);
      }
      expect(
        sameBytes(backup.harness.env.memory.region.bytes, normal.rig.harness.env.memory.region.bytes),
      ).toBe(true);
      expect(backup.driver.takeUsed(0)).toEqual(normal.rig.driver.takeUsed(0));
      expect(backup.device.inFlightRequests()).toEqual([]);
      const calls = backend.calls.slice(callsBefore);
      expect(calls.filter((call) => call.startsWith('write'))).toEqual(
        hostIo === 'all' ? [`write ${2 * SECTOR}`] : [],
      );
      expect(backend.bytes).toEqual(lean.backend.bytes);
    });
  }

  it('through the transport: whenReadyFor waits for the local read; hostWorkPendingSince names its point', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const backup = blockRig(backend, { hostIo: 'reads' });
    backup.harness.env.setIcount(1234);
    backup.submit(VirtioBlockRequestType.in, 5, undefined, SECTOR);
    const logged = dataLessCompletion();
    await settleHost();
    expect(backup.harness.device.hostWorkPendingSince?.()).toBe(1234);
    const waiting = backup.harness.device.whenReadyFor?.(logged);
    expect(waiting).toBeInstanceOf(Promise);
    backend.calls[0]!.settle();
    await waiting;
    expect(backup.harness.device.hostWorkPendingSince?.()).toBeUndefined();
    expect(backup.harness.device.whenReadyFor?.(logged)).toBeUndefined();
  });

  it('isReadyFor answers false until the local read settled', async () => {
    const { backend, backup, read } = backupReading(5, 12);
    const logged = dataLessCompletion();
    expect(backup.device.isReadyFor(logged)).toBe(false);
    // Events that need no local read are ready at once.
    expect(backup.device.isReadyFor({ type: 'other' })).toBe(true);
    expect(
      backup.device.isReadyFor({
        type: 'request-completed',
        data: { id: 1, status: 0, data: new Uint8Array(SECTOR) },
      }),
    ).toBe(true);
    expect(backup.device.isReadyFor(dataLessCompletion(1, VirtioBlockStatus.ioError))).toBe(true);
    // Applied too early it does not complete the request with missing data: the replay stops.
    expect(() => backup.harness.device.applyEvent(logged)).toThrow(DivergenceError);
    expect(read.status()).toBe(0xee);

    let settled = false;
    void backup.device.hostReadsSettled().then(() => {
      settled = true;
    });
    await settleHost();
    expect(settled).toBe(false);
    backend.calls[0]!.settle();
    await backup.device.hostReadsSettled();
    expect(settled).toBe(true);
    expect(backup.device.isReadyFor(logged)).toBe(true);
    backup.harness.device.applyEvent(logged);
    expect(read.status()).toBe(VirtioBlockStatus.ok);
    expect(read.data()).toEqual(pattern(SECTOR, 12));
  });

  it('follows a logged error whatever the local read did, and stops on a local failure the primary did not have', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const backup = blockRig(backend, { hostIo: 'reads' });
    const first = backup.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    const second = backup.submit(VirtioBlockRequestType.in, 1, undefined, SECTOR);
    await settleHost();
    // Each of the backup's reads fails every time it is tried (the first as the primary's did,
    // the second where the primary's succeeded).
    for (let call = 0; call < 2 * VIRTIO_BLOCK_BACKUP_READ_TRIES; call++) {
      await settleHost();
      backend.calls[call]!.settle(true);
    }
    await backup.device.hostReadsSettled();
    expect(backend.calls).toHaveLength(2 * VIRTIO_BLOCK_BACKUP_READ_TRIES);
    backup.harness.device.applyEvent(dataLessCompletion(1, VirtioBlockStatus.ioError));
    expect(first.status()).toBe(VirtioBlockStatus.ioError);
    let caught: unknown;
    try {
      backup.harness.device.applyEvent(dataLessCompletion(2));
    } catch (error) {
      caught = error;
    }
    expect(DivergenceError.is(caught)).toBe(true);
    expect((caught as DivergenceError).kind).toBe('missing-entry');
    expect((caught as DivergenceError).message).toMatch(
      /local read that failed 5 times, where the primary read succeeded/,
    );
    expect(second.status()).toBe(0xee);
  });

  it("tries a failed read of its own again (the primary's most likely succeeded): a passing error costs nothing", async () => {
    const { backend, backup, read } = backupReading(4, 33);
    const logged = dataLessCompletion();
    for (let call = 0; call < VIRTIO_BLOCK_BACKUP_READ_TRIES - 1; call++) {
      await settleHost();
      backend.calls[call]!.settle(true);
      await settleHost();
      expect(backup.device.isReadyFor(logged)).toBe(false); // still reading
    }
    backend.calls[VIRTIO_BLOCK_BACKUP_READ_TRIES - 1]!.settle(); // the last try succeeds
    await backup.device.hostReadsSettled();
    expect(backend.calls.map((call) => `${call.operation} ${call.offset}`)).toEqual(
      new Array(VIRTIO_BLOCK_BACKUP_READ_TRIES).fill(`read ${4 * SECTOR}`),
    );
    backup.harness.device.applyEvent(logged);
    expect(read.status()).toBe(VirtioBlockStatus.ok);
    expect(read.data()).toEqual(pattern(SECTOR, 33));
  });

  it("a primary's failed read is the guest's to see: it is not tried again", async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const primary = blockRig(backend, { logReadData: false });
    const read = primary.submit(VirtioBlockRequestType.in, 2, undefined, SECTOR);
    await settleHost();
    backend.calls[0]!.settle(true);
    await primary.device.hostIdle();
    await settleHost();
    expect(backend.calls).toHaveLength(1);
    expect(primary.harness.env.injected.map((event) => event.data)).toEqual([
      { id: 1, status: VirtioBlockStatus.ioError, data: null, dataFromBackend: true },
    ]);
    primary.harness.deliver();
    expect(read.status()).toBe(VirtioBlockStatus.ioError);
  });

  it('stops with a clear divergence when a device that reads nothing gets a completion without data', () => {
    const backup = blockRig(new RecordingBackend(8 * SECTOR), { hostIo: 'none' });
    backup.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    const logged = dataLessCompletion();
    expect(backup.device.isReadyFor(logged)).toBe(true); // waiting would never end
    expect(() => backup.harness.device.applyEvent(logged)).toThrow(/host IO mode "none"/);
  });

  it('reads a request restored from a snapshot when its data-less completion is asked about', async () => {
    const disk = pattern(8 * SECTOR, 50);
    const original = blockRig(new ControlledBackend(8 * SECTOR));
    const read = original.submit(VirtioBlockRequestType.in, 3, undefined, SECTOR);
    const section = original.transport.saveState();

    const backend = new RecordingBackend(disk);
    const device = new VirtioBlock({ backend, hostIo: 'reads' });
    const restored = createVirtioRig(device, 512 * 1024);
    restored.harness.env.memory.region.bytes.set(original.harness.env.memory.region.bytes);
    restored.transport.restoreState(structuredClone(section));
    const logged = dataLessCompletion();
    expect(device.isReadyFor(logged)).toBe(false);
    await device.hostReadsSettled();
    expect(backend.calls).toEqual([`read ${3 * SECTOR}`]);
    expect(device.isReadyFor(logged)).toBe(true);
    restored.harness.device.applyEvent(logged);
    expect(restored.harness.env.memory.read(read.dataAddress, SECTOR)).toEqual(
      disk.slice(3 * SECTOR, 4 * SECTOR),
    );
    // The section keeps its version-1 layout.
    expect(restored.transport.saveState()).toEqual(expect.objectContaining({ version: 1 }));
  });
});

describe('virtio-blk with a volatile write cache (writeBack)', () => {
  it('completes a write before it reaches the disk, which gets it only once released; a read and a flush behind it wait', async () => {
    const backend = new RecordingBackend(pattern(8 * SECTOR, 40));
    const rig = blockRig(backend, { holdOutputs: true, writeBack: true });
    const data = pattern(2 * SECTOR, 9);
    const write = rig.submit(VirtioBlockRequestType.out, 2, data);
    rig.harness.deliver();
    // The guest has its answer; the output rule still holds the data back from the disk.
    expect(write.status()).toBe(VirtioBlockStatus.ok);
    expect(rig.driver.takeUsed(0).map((element) => element.id)).toEqual([write.headIndex]);
    expect(rig.device.unappliedWrites()).toEqual([
      { id: 1, offsetBytes: 2 * SECTOR, lengthBytes: 2 * SECTOR },
    ]);
    const read = rig.submit(VirtioBlockRequestType.in, 2, undefined, 2 * SECTOR);
    const flush = rig.submit(VirtioBlockRequestType.flush, 0);
    await settleHost();
    rig.harness.deliver();
    expect(backend.calls).toEqual([]);
    expect([read.status(), flush.status()]).toEqual([0xee, 0xee]);

    expect(rig.harness.env.releaseOutputs()).toBe(2); // the write, then the flush
    await rig.complete();
    expect(backend.calls).toEqual([`write ${2 * SECTOR}`, `read ${2 * SECTOR}`, 'flush']);
    expect(read.data()).toEqual(data);
    expect([read.status(), flush.status()]).toEqual([VirtioBlockStatus.ok, VirtioBlockStatus.ok]);
    // The read's completion said the write is on the disk: the device forgets it.
    expect(rig.device.unappliedWrites()).toEqual([]);
  });

  it('stays write-through when the driver did not take VIRTIO_BLK_F_FLUSH', async () => {
    const backend = new RecordingBackend(8 * SECTOR);
    const rig = blockRig(backend, {
      holdOutputs: true,
      writeBack: true,
      features: 1n << VirtioFeature.version1,
    });
    const write = rig.submit(VirtioBlockRequestType.out, 1, pattern(SECTOR, 5));
    await settleHost();
    rig.harness.deliver();
    expect(write.status()).toBe(0xee);
    rig.harness.env.releaseOutputs();
    await rig.complete();
    expect(backend.calls).toEqual([`write ${SECTOR}`, 'flush']);
    expect(write.status()).toBe(VirtioBlockStatus.ok);
  });

  it('a backup that goes live writes the completed writes the old primary may not have put on the disk, in order', async () => {
    const primaryDisk = new RecordingBackend(pattern(8 * SECTOR, 3));
    const primary = blockRig(primaryDisk, { holdOutputs: true, writeBack: true });
    const first = pattern(SECTOR, 60);
    const second = pattern(SECTOR, 61);
    primary.submit(VirtioBlockRequestType.out, 4, first);
    primary.submit(VirtioBlockRequestType.out, 4, second); // the same sector again: order matters
    const logged = [...primary.harness.env.injected];
    primary.harness.deliver();
    expect(primary.device.unappliedWrites().map((write) => write.id)).toEqual([1, 2]);
    // The primary dies before its outputs were released: its disk never saw them.
    await settleHost();
    expect(primaryDisk.calls).toEqual([]);

    // The backup on the shared disk (no IO of its own) followed the same log: the same state.
    const shared = new MemoryBlockBackend(primaryDisk.bytes.slice());
    const backup = blockRig(shared, { hostIo: 'none', writeBack: true });
    backup.submit(VirtioBlockRequestType.out, 4, first);
    backup.submit(VirtioBlockRequestType.out, 4, second);
    for (const event of logged) backup.device.applyEvent(event);
    expect(backup.transport.saveState()).toEqual(primary.transport.saveState());

    backup.device.onGoLive();
    await backup.device.hostIdle();
    await settleHost();
    expect(shared.bytes.slice(4 * SECTOR, 5 * SECTOR)).toEqual(second);
  });

  it('carries the completed writes not known applied through a snapshot, and restores a version 1 state', () => {
    const rig = blockRig(new RecordingBackend(8 * SECTOR), { holdOutputs: true, writeBack: true });
    rig.submit(VirtioBlockRequestType.out, 3, pattern(SECTOR, 8));
    rig.harness.deliver();
    const section = rig.transport.saveState();
    const device = new VirtioBlock({
      backend: new MemoryBlockBackend(8 * SECTOR),
      hostIo: 'none',
      writeBack: true,
    });
    const restored = createVirtioRig(device, 512 * 1024);
    restored.harness.env.memory.region.bytes.set(rig.harness.env.memory.region.bytes);
    restored.transport.restoreState(structuredClone(section));
    expect(device.unappliedWrites()).toEqual([{ id: 1, offsetBytes: 3 * SECTOR, lengthBytes: SECTOR }]);
    expect(restored.transport.saveState()).toEqual(section);

    // The same state as version 1 wrote it: no unapplied writes.
    const plain = new VirtioBlock({ backend: new MemoryBlockBackend(8 * SECTOR) });
    const old = structuredClone(plain.saveState()) as { version: number; state: Record<string, unknown> };
    old.version = 1;
    delete old.state.unapplied;
    const again = new VirtioBlock({ backend: new MemoryBlockBackend(8 * SECTOR), writeBack: true });
    again.restoreState(old as never);
    expect(again.unappliedWrites()).toEqual([]);
    expect(() => again.restoreState({ ...(old as object), version: 3 } as never)).toThrow(/version 3/);
    // Nothing unapplied: the version 1 layout, so older recordings' state hashes still match.
    expect(again.saveState().version).toBe(1);
    expect(Object.keys(again.saveState().state as object)).not.toContain('unapplied');

    // A state whose unapplied writes this disk could not have taken is refused.
    const bad: unknown = structuredClone(section);
    const unapplied = findUnapplied(bad);
    unapplied[0]!.id = 10_000; // past nextRequestId
    const fresh = createVirtioRig(
      new VirtioBlock({ backend: new MemoryBlockBackend(8 * SECTOR), hostIo: 'none', writeBack: true }),
      512 * 1024,
    );
    expect(() => fresh.transport.restoreState(bad as never)).toThrow(/out of order/);
  });

  it('a completed write that failed on the disk stays unapplied until a flush reports it, so a new primary writes it again', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const rig = blockRig(backend, { writeBack: true });
    const data = pattern(SECTOR, 31);
    rig.submit(VirtioBlockRequestType.out, 2, data);
    rig.harness.deliver();
    await settleHost();
    backend.calls[0]!.settle(true); // the disk refuses it; the guest was told it completed
    await settleHost();
    const read = rig.submit(VirtioBlockRequestType.in, 5, undefined, SECTOR);
    await settleHost();
    backend.calls[1]!.settle();
    await rig.complete();
    expect(read.status()).toBe(VirtioBlockStatus.ok);
    // The read's completion did not report the failed write applied.
    expect(rig.device.unappliedWrites().map((write) => write.id)).toEqual([1]);

    // The primary dies here; a backup with the same state goes live and writes it again.
    const shared = new MemoryBlockBackend(8 * SECTOR);
    const device = new VirtioBlock({ backend: shared, hostIo: 'none', writeBack: true });
    const backup = createVirtioRig(device, 512 * 1024);
    backup.harness.env.memory.region.bytes.set(rig.harness.env.memory.region.bytes);
    backup.transport.restoreState(structuredClone(rig.transport.saveState()));
    device.onGoLive();
    await device.hostIdle();
    expect(shared.bytes.slice(2 * SECTOR, 3 * SECTOR)).toEqual(data);
  });

  it('goes live writing in request order: a write still in flight before a newer one completed early', async () => {
    const shared = new MemoryBlockBackend(8 * SECTOR);
    const backup = blockRig(shared, { hostIo: 'none', writeBack: true });
    const older = pattern(SECTOR, 70);
    const newer = pattern(SECTOR, 71);
    backup.submit(VirtioBlockRequestType.out, 6, older); // id 1: its completion never came
    backup.submit(VirtioBlockRequestType.out, 6, newer); // id 2: completed early (the log says)
    backup.device.applyEvent({
      type: 'request-completed',
      data: { id: 2, status: 0, data: null, early: true, appliedThrough: 0 },
    });
    expect(backup.device.unappliedWrites().map((write) => write.id)).toEqual([2]);
    backup.device.onGoLive();
    await backup.device.hostIdle();
    await settleHost();
    expect(shared.bytes.slice(6 * SECTOR, 7 * SECTOR)).toEqual(newer);
  });

  it('a completed write that failed on the disk makes the next flush fail', async () => {
    const backend = new ControlledBackend(8 * SECTOR);
    const rig = blockRig(backend, { writeBack: true });
    const write = rig.submit(VirtioBlockRequestType.out, 0, pattern(SECTOR, 1));
    rig.harness.deliver();
    expect(write.status()).toBe(VirtioBlockStatus.ok);
    const flush = rig.submit(VirtioBlockRequestType.flush, 0);
    await settleHost();
    backend.calls[0]!.settle(true); // the write fails on the disk
    await settleHost();
    backend.calls[1]!.settle(); // the flush itself succeeds
    await rig.complete();
    expect(flush.status()).toBe(VirtioBlockStatus.ioError);
    // Reported once: the next flush is fine.
    const next = rig.submit(VirtioBlockRequestType.flush, 0);
    await settleHost();
    backend.calls[2]!.settle();
    await rig.complete();
    expect(next.status()).toBe(VirtioBlockStatus.ok);
  });

  it('ignores a hostile appliedThrough', () => {
    const rig = blockRig(new RecordingBackend(8 * SECTOR), { holdOutputs: true, writeBack: true });
    rig.submit(VirtioBlockRequestType.out, 3, pattern(SECTOR, 8));
    rig.harness.deliver();
    const read = rig.submit(VirtioBlockRequestType.in, 0, undefined, SECTOR);
    for (const appliedThrough of [-1, 1.5, 'all', 2 ** 60] as PlainValue[]) {
      rig.device.applyEvent({
        type: 'request-completed',
        data: { id: 99, status: 0, data: null, appliedThrough },
      });
    }
    expect(rig.device.unappliedWrites().map((write) => write.id)).toEqual([1]);
    expect(read.status()).toBe(0xee);
  });
});
