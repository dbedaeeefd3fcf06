import { describe, expect, it } from 'vitest';
import { createDeviceHarness } from '../../testing/index.js';
import { VirtioFeature, VirtioStatus } from '../constants.js';
import { VirtioRng } from '../rng/virtio-rng.js';
import { createVirtioRig, Reg } from '../testing/guest-driver.js';
import { TRANSPORT_FEATURES, VIRTIO_MMIO_MAGIC_VALUE, VirtioMmioTransport } from './mmio-transport.js';
import { ALLOWED_STATUS_TRANSITIONS, classifyStatusWrite } from './status-machine.js';

const {
  acknowledge: A,
  driver: D,
  featuresOk: F,
  driverOk: OK,
  failed: FAILED,
  deviceNeedsReset: NEEDS_RESET,
} = VirtioStatus;

/** The five states of §3.1.1 a driver passes through, and FAILED on each. */
const REACHABLE = [0, A, A | D, A | D | F, A | D | F | OK];
const ALL_STATES = [...REACHABLE, ...REACHABLE.map((status) => status | FAILED)];

/** Drives a fresh rng transport to `status` through allowed writes only. */
function rigAt(status: number) {
  const rig = createVirtioRig(new VirtioRng({ entropySource: (n) => new Uint8Array(n) }));
  const { driver } = rig;
  driver.write(Reg.status, 0);
  for (const step of [A, A | D, A | D | F, A | D | F | OK]) {
    if ((status & step) !== step) break;
    if (step & F) driver.writeDriverFeatures(driver.offeredFeatures());
    if (step & OK) driver.setUpQueue(0, 8);
    driver.write(Reg.status, step);
  }
  if (status & FAILED) driver.write(Reg.status, (status & ~FAILED) | FAILED);
  expect(driver.read(Reg.status)).toBe(status);
  return rig;
}

describe('virtio-mmio registers (virtio 1.2 §4.2.2)', () => {
  it('identifies itself as a modern QEMU virtio-mmio device', () => {
    const { driver } = createVirtioRig(new VirtioRng());
    expect(driver.read(Reg.magic)).toBe(VIRTIO_MMIO_MAGIC_VALUE);
    expect(driver.read(Reg.version)).toBe(2);
    expect(driver.read(Reg.deviceId)).toBe(4);
    expect(driver.read(Reg.vendorId)).toBe(0x554d4551);
    driver.write(Reg.queueSelect, 0);
    expect(driver.read(Reg.queueSizeMax)).toBe(1024); // QEMU's VIRTQUEUE_MAX_SIZE, for every queue
    driver.write(Reg.queueSelect, 1);
    expect(driver.read(Reg.queueSizeMax)).toBe(0);
    expect(driver.read(0x0b0)).toBe(0xffff_ffff); // SHMLenLow: no shared memory region
  });

  it('answers narrow accesses to registers with 0 and ignores them', () => {
    const { driver, harness } = createVirtioRig(new VirtioRng());
    expect(harness.read(Reg.magic, 1)).toBe(0);
    expect(harness.read(Reg.magic, 2)).toBe(0);
    harness.write(Reg.status, A, 1);
    expect(driver.read(Reg.status)).toBe(0);
  });

  it('an empty slot is DeviceID 0 and answers only the identification registers', () => {
    const transport = new VirtioMmioTransport();
    const harness = createDeviceHarness(transport, { placement: { base: 0x1000_8000, irq: 8 } });
    expect(harness.read(Reg.magic)).toBe(VIRTIO_MMIO_MAGIC_VALUE);
    expect(harness.read(Reg.magic, 1)).toBe(0x76); // as QEMU 7.2: truncated, not refused
    expect(harness.read(Reg.version)).toBe(2);
    expect(harness.read(Reg.deviceId)).toBe(0);
    expect(harness.read(Reg.vendorId)).toBe(0x554d4551);
    harness.write(Reg.status, A);
    expect(harness.read(Reg.status)).toBe(0);
    expect(harness.read(Reg.config)).toBe(0);
    harness.device.applyEvent({ type: 'frame', data: new Uint8Array(4) });
    expect(transport.saveState()).toEqual(new VirtioMmioTransport().saveState());
  });

  it('gives the virtio_mmio node QEMU 7.2 writes', () => {
    const node = new VirtioMmioTransport().deviceTree({ name: 'virtio7', base: 0x1000_8000, irq: 8 });
    expect(node).toEqual({
      name: 'virtio_mmio@10008000',
      properties: {
        interrupts: [8],
        'interrupt-parent': [3],
        reg: [0, 0x1000_8000, 0, 0x1000],
        compatible: 'virtio,mmio',
      },
    });
    expect(Object.keys(node.properties)).toEqual(['interrupts', 'interrupt-parent', 'reg', 'compatible']);
  });
});

describe('the status machine (§2.1, §3.1.1)', () => {
  for (const from of ALL_STATES) {
    for (const bit of [0, A, D, F, OK, FAILED, 0x10, 0x20, NEEDS_RESET]) {
      for (const to of new Set([from | bit, from & ~bit, bit])) {
        const allowed =
          to === 0 ||
          (to & ~NEEDS_RESET) === from ||
          (ALLOWED_STATUS_TRANSITIONS.get(from) ?? []).includes(to & ~NEEDS_RESET);
        it(`0x${from.toString(16)} → 0x${to.toString(16)} is ${allowed ? 'allowed' : 'refused'}`, () => {
          const { driver, harness, transport } = rigAt(from);
          if (to & F && !(from & F)) driver.writeDriverFeatures(driver.offeredFeatures());
          driver.write(Reg.status, to);
          if (allowed) {
            expect(driver.read(Reg.status)).toBe(to & ~NEEDS_RESET);
            expect(harness.env.irq.level).toBe(false);
          } else {
            // Refused: the status stays, DEVICE_NEEDS_RESET is added, a config interrupt is raised.
            expect(driver.read(Reg.status)).toBe(from | NEEDS_RESET);
            expect(driver.read(Reg.interruptStatus)).toBe(2);
            expect(harness.env.irq.level).toBe(true);
            expect(transport.failureReason).toMatch(/out of order/);
            // Only a reset brings it back.
            driver.write(Reg.status, 0);
            expect(driver.read(Reg.status)).toBe(0);
            expect(harness.env.irq.level).toBe(false);
          }
        });
      }
    }
  }

  it('classifies every write of the table', () => {
    for (const [from, targets] of ALLOWED_STATUS_TRANSITIONS) {
      for (const to of targets) expect(classifyStatusWrite(from, to)).toBe('advance');
    }
    expect(classifyStatusWrite(A | D, A | D | F | OK)).toBe('refused');
    expect(classifyStatusWrite(A | D | F | OK | FAILED, A | D | F | OK)).toBe('refused');
  });

  it('ignores notifications until DRIVER_OK and after DEVICE_NEEDS_RESET', () => {
    const reads: number[] = [];
    const rig = createVirtioRig(
      new VirtioRng({
        entropySource: (n) => {
          reads.push(n);
          return new Uint8Array(n);
        },
      }),
    );
    const { driver } = rig;
    driver.write(Reg.status, A);
    driver.write(Reg.status, A | D);
    driver.writeDriverFeatures(driver.offeredFeatures());
    driver.write(Reg.status, A | D | F);
    driver.setUpQueue(0, 8);
    driver.submit(0, [{ writableBytes: 8 }]);
    expect(reads).toEqual([]);
    driver.write(Reg.status, A | D | F | OK);
    driver.notify(0);
    expect(reads).toEqual([8]);
    driver.write(Reg.status, A); // out of order
    driver.submit(0, [{ writableBytes: 8 }]);
    expect(reads).toEqual([8]);
  });
});

describe('feature negotiation (§2.2, §6)', () => {
  it('offers the device features with VERSION_1, INDIRECT_DESC and EVENT_IDX', () => {
    const { driver } = createVirtioRig(new VirtioRng());
    expect(driver.offeredFeatures()).toBe(TRANSPORT_FEATURES);
    driver.write(Reg.deviceFeaturesSelect, 2);
    expect(driver.read(Reg.deviceFeatures)).toBe(0);
  });

  it('accepts any offered subset that holds VERSION_1', () => {
    const { driver, transport } = createVirtioRig(new VirtioRng());
    const status = driver.initialize({ features: 1n << VirtioFeature.version1 });
    expect(status).toBe(A | D | F | OK);
    expect(transport.negotiatedFeatures).toBe(1n << VirtioFeature.version1);
  });

  it('refuses FEATURES_OK for a feature not offered, or without VERSION_1, with no reset needed', () => {
    for (const features of [TRANSPORT_FEATURES | (1n << 5n), 1n << VirtioFeature.indirectDescriptors]) {
      const { driver, transport } = createVirtioRig(new VirtioRng());
      const status = driver.initialize({ features });
      expect(status).toBe(A | D);
      expect(transport.negotiatedFeatures).toBe(0n);
    }
  });

  it('ignores driver feature writes after FEATURES_OK', () => {
    const { driver, transport } = createVirtioRig(new VirtioRng());
    driver.initialize();
    driver.writeDriverFeatures(1n << VirtioFeature.version1);
    expect(transport.negotiatedFeatures).toBe(TRANSPORT_FEATURES);
  });
});

describe('queue setup', () => {
  it('refuses a queue outside RAM, misaligned or of a bad size with DEVICE_NEEDS_RESET', () => {
    const cases: [number, number][] = [
      [0x1000, 8], // descriptor table below RAM
      [0x8000_0008, 8], // misaligned
      [0x8000_0000, 6], // not a power of two
      [0x8000_0000, 2048], // larger than QueueNumMax (1024)
    ];
    for (const [address, size] of cases) {
      const { driver, transport } = createVirtioRig(new VirtioRng());
      driver.write(Reg.status, A);
      driver.write(Reg.status, A | D);
      driver.writeDriverFeatures(driver.offeredFeatures());
      driver.write(Reg.status, A | D | F);
      driver.write(Reg.queueSelect, 0);
      driver.write(Reg.queueSize, size);
      driver.write(Reg.queueDescriptorLow, address);
      driver.write(Reg.queueDriverLow, 0x8000_1000);
      driver.write(Reg.queueDeviceLow, 0x8000_2000);
      driver.write(Reg.queueReady, 1);
      expect(driver.read(Reg.queueReady)).toBe(0);
      expect(driver.read(Reg.status) & NEEDS_RESET).toBe(NEEDS_RESET);
      expect(transport.failureReason).toMatch(/queue 0/);
    }
  });

  it('keeps the queue address registers write-only and freezes them while the queue is ready', () => {
    const { driver, transport } = createVirtioRig(new VirtioRng());
    driver.initialize();
    const queue = driver.queues[0]!;
    driver.write(Reg.queueSelect, 0);
    expect(driver.read(Reg.queueDescriptorLow)).toBe(0); // as QEMU 7.2
    driver.write(Reg.queueDescriptorLow, 0x1234_0000);
    const saved = transport.saveState().state as { queues: { addressWords: number[] }[] };
    expect(saved.queues[0]!.addressWords[0]).toBe(queue.descriptorTable);
  });

  it('raises and acknowledges the used-buffer interrupt', () => {
    const { driver, harness } = createVirtioRig(
      new VirtioRng({ entropySource: (n) => new Uint8Array(n).fill(7) }),
    );
    driver.initialize();
    driver.submit(0, [{ writableBytes: 4 }]);
    expect(harness.env.irq.level).toBe(true);
    expect(driver.acknowledgeInterrupts()).toBe(1);
    expect(harness.env.irq.level).toBe(false);
  });
});
