import { describe, expect, it } from 'vitest';
import { VirtioStatus } from '../constants.js';
import { createVirtioRig, Reg } from '../testing/guest-driver.js';
import {
  reverseArpAnnouncement,
  VIRTIO_NET_DEFAULT_MAC,
  VIRTIO_NET_FRAME_BYTES_MAX,
  VIRTIO_NET_HEADER_BYTES,
  VIRTIO_NET_PENDING_FRAMES_MAX,
  VirtioNet,
  VirtioNetFeature,
} from './virtio-net.js';

const RX = 0;
const TX = 1;

function frame(lengthBytes: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: lengthBytes }, (_, i) => (i * 13 + seed) & 0xff);
}

function netRig() {
  const rig = createVirtioRig(new VirtioNet(), 512 * 1024);
  rig.driver.initialize();
  return rig;
}

/** Adds one receive buffer of `lengthBytes`; returns its address. */
function addReceiveBuffer(rig: ReturnType<typeof netRig>, lengthBytes = 1526): number {
  return rig.driver.submit(RX, [{ writableBytes: lengthBytes }]).addresses[0]!;
}

describe('virtio-net (virtio 1.2 §5.1)', () => {
  it('offers VIRTIO_NET_F_MAC with QEMU’s default MAC in the configuration space', () => {
    const rig = createVirtioRig(new VirtioNet());
    expect(rig.driver.read(Reg.deviceId)).toBe(1);
    expect(rig.driver.offeredFeatures() & (1n << VirtioNetFeature.mac)).not.toBe(0n);
    const mac = [0, 1, 2, 3, 4, 5].map((i) => rig.harness.read(Reg.config + i, 1));
    expect(mac).toEqual([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const other = createVirtioRig(new VirtioNet({ mac: Uint8Array.of(2, 0, 0, 0, 0, 9) }));
    expect(other.harness.read(Reg.config + 5, 1)).toBe(9);
  });

  it('transmits frames with the header stripped, through env.output', () => {
    const rig = netRig();
    const payload = frame(60);
    const headerBytes = new Uint8Array(VIRTIO_NET_HEADER_BYTES).fill(0x77);
    // Header and frame in one buffer, then split across two.
    const single = new Uint8Array(VIRTIO_NET_HEADER_BYTES + 60);
    single.set(headerBytes);
    single.set(payload, VIRTIO_NET_HEADER_BYTES);
    rig.driver.submit(TX, [{ readable: single }]);
    rig.driver.submit(TX, [
      { readable: headerBytes },
      { readable: payload.subarray(0, 10) },
      { readable: payload.subarray(10) },
    ]);
    expect(rig.harness.env.outputs.map((output) => output.kind)).toEqual(['frame', 'frame']);
    expect(rig.harness.env.outputs[0]!.data).toEqual(payload);
    expect(rig.harness.env.outputs[1]!.data).toEqual(payload);
    expect(rig.driver.takeUsed(TX).map((element) => element.lengthBytes)).toEqual([0, 0]);
    expect(rig.device.statistics.framesTransmitted).toBe(2);
    expect(rig.harness.env.irq.level).toBe(true);
  });

  it('drops and counts oversized and empty transmitted frames, and needs a reset for a missing header', () => {
    const rig = netRig();
    rig.driver.submit(TX, [
      { readable: new Uint8Array(VIRTIO_NET_HEADER_BYTES + VIRTIO_NET_FRAME_BYTES_MAX + 1) },
    ]);
    rig.driver.submit(TX, [{ readable: new Uint8Array(VIRTIO_NET_HEADER_BYTES) }]);
    rig.driver.submit(TX, [
      { readable: new Uint8Array(VIRTIO_NET_HEADER_BYTES + VIRTIO_NET_FRAME_BYTES_MAX) },
    ]);
    expect(rig.harness.env.outputs.map((output) => output.data.length)).toEqual([VIRTIO_NET_FRAME_BYTES_MAX]);
    expect(rig.device.statistics.transmitFramesDropped).toBe(2);
    expect(rig.driver.takeUsed(TX)).toHaveLength(3);
    rig.driver.submit(TX, [{ readable: new Uint8Array(4) }]);
    expect(rig.driver.read(Reg.status) & VirtioStatus.deviceNeedsReset).toBe(VirtioStatus.deviceNeedsReset);
  });

  it('receives a frame only when the event is applied, into the next buffer, with a zeroed header', () => {
    const rig = netRig();
    const buffer = addReceiveBuffer(rig);
    rig.driver.memory.write(buffer, new Uint8Array(32).fill(0xff));
    const payload = frame(42);
    rig.device.receive(payload);
    // Injected, not yet applied: nothing in guest memory.
    expect(rig.harness.env.injected).toEqual([{ type: 'frame', data: payload }]);
    expect(rig.driver.takeUsed(RX)).toEqual([]);
    rig.harness.deliver();
    const expectedHeader = new Uint8Array(VIRTIO_NET_HEADER_BYTES);
    expectedHeader[10] = 1; // num_buffers
    expect(rig.driver.memory.read(buffer, VIRTIO_NET_HEADER_BYTES)).toEqual(expectedHeader);
    expect(rig.driver.memory.read(buffer + VIRTIO_NET_HEADER_BYTES, 42)).toEqual(payload);
    expect(rig.driver.takeUsed(RX)).toEqual([{ id: 0, lengthBytes: VIRTIO_NET_HEADER_BYTES + 42 }]);
    expect(rig.harness.env.irq.level).toBe(true);
    expect(rig.device.statistics.framesReceived).toBe(1);
  });

  it('queues frames while the guest has no receive buffer and delivers them when it adds some', () => {
    const rig = netRig();
    for (let i = 0; i < 3; i++) rig.device.receive(frame(60, i));
    rig.harness.deliver();
    expect(rig.device.pendingFrameCount).toBe(3);
    addReceiveBuffer(rig);
    addReceiveBuffer(rig);
    expect(rig.device.pendingFrameCount).toBe(1);
    const used = rig.driver.takeUsed(RX);
    expect(used).toHaveLength(2);
    const third = addReceiveBuffer(rig);
    expect(rig.device.pendingFrameCount).toBe(0);
    expect(rig.driver.memory.read(third + VIRTIO_NET_HEADER_BYTES, 60)).toEqual(frame(60, 2));
  });

  it('drops and counts frames beyond the pending limit, oversized frames and frames too big for the buffer', () => {
    const rig = netRig();
    for (let i = 0; i < VIRTIO_NET_PENDING_FRAMES_MAX + 5; i++) rig.device.receive(frame(60, i));
    rig.harness.deliver();
    expect(rig.device.pendingFrameCount).toBe(VIRTIO_NET_PENDING_FRAMES_MAX);
    expect(rig.device.statistics.receiveQueueFullFramesDropped).toBe(5);

    rig.device.receive(new Uint8Array(VIRTIO_NET_FRAME_BYTES_MAX + 1));
    expect(rig.device.hostOversizedFramesDropped).toBe(1);
    rig.harness.device.applyEvent({ type: 'frame', data: new Uint8Array(VIRTIO_NET_FRAME_BYTES_MAX + 1) });
    expect(rig.device.statistics.receiveOversizedFramesDropped).toBe(1);

    const fresh = netRig();
    fresh.device.receive(frame(100));
    fresh.device.receive(frame(20, 9));
    fresh.harness.deliver();
    const small = addReceiveBuffer(fresh, VIRTIO_NET_HEADER_BYTES + 50);
    // The 100-byte frame does not fit and is dropped; the 20-byte one takes the buffer.
    expect(fresh.device.statistics.receiveBufferTooSmallFramesDropped).toBe(1);
    expect(fresh.driver.memory.read(small + VIRTIO_NET_HEADER_BYTES, 20)).toEqual(frame(20, 9));
  });

  it('ignores events it cannot use (a hostile log)', () => {
    const rig = netRig();
    for (const data of [null, 5, 'frame', [1, 2], { a: 1 }, new Uint8Array(0)]) {
      rig.harness.device.applyEvent({ type: 'frame', data });
    }
    rig.harness.device.applyEvent({ type: 'other', data: new Uint8Array(60) });
    expect(rig.device.pendingFrameCount).toBe(0);
  });

  it('saves and restores pending frames and counters', () => {
    const rig = netRig();
    rig.device.receive(frame(70));
    rig.harness.deliver();
    const section = rig.transport.saveState();
    const restored = createVirtioRig(new VirtioNet(), 512 * 1024);
    restored.harness.env.memory.region.bytes.set(rig.harness.env.memory.region.bytes);
    restored.transport.restoreState(structuredClone(section));
    expect(restored.transport.saveState()).toEqual(section);
    expect(restored.device.pendingFrameCount).toBe(1);
    // Both guests add the same receive buffer with the same memory writes and notify.
    const queue = rig.driver.queues[RX]!;
    const buffer = rig.driver.allocate(1526);
    for (const target of [rig, restored]) {
      const memory = target.harness.env.memory;
      memory.writeU32(queue.descriptorTable, buffer);
      memory.writeU32(queue.descriptorTable + 4, 0);
      memory.writeU32(queue.descriptorTable + 8, 1526);
      memory.writeU16(queue.descriptorTable + 12, 2); // WRITE
      memory.writeU16(queue.driverArea + 4, 0);
      memory.writeU16(queue.driverArea + 2, 1);
      target.harness.write(Reg.queueNotify, RX);
    }
    expect(restored.harness.env.memory.region.bytes).toEqual(rig.harness.env.memory.region.bytes);
    expect(restored.driver.memory.read(buffer + VIRTIO_NET_HEADER_BYTES, 70)).toEqual(frame(70));
    expect(restored.harness.env.irq.level).toBe(rig.harness.env.irq.level);
    expect(restored.device.statistics).toEqual(rig.device.statistics);
  });
});

describe('go-live', () => {
  it('announces the guest MAC with a RARP broadcast, as QEMU does after a migration', () => {
    const mac = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
    const frame = reverseArpAnnouncement(mac);
    expect(frame.length).toBe(60);
    expect([...frame.subarray(0, 6)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect([...frame.subarray(6, 12)]).toEqual([...mac]);
    expect([...frame.subarray(12, 22)]).toEqual([0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4, 0, 3]);
    expect([...frame.subarray(22, 28)]).toEqual([...mac]);
    expect([...frame.subarray(28, 32)]).toEqual([0, 0, 0, 0]);
    expect([...frame.subarray(32, 38)]).toEqual([...mac]);
    expect(frame.subarray(38).every((byte) => byte === 0)).toBe(true);
  });

  it('sends the announcement through the output door when it goes live', () => {
    const rig = netRig();
    rig.transport.onGoLive();
    const frames = rig.harness.env.outputs.filter((output) => output.kind === 'frame');
    expect(frames).toHaveLength(1);
    expect([...(frames[0]?.data ?? [])]).toEqual([...reverseArpAnnouncement(VIRTIO_NET_DEFAULT_MAC)]);
  });
});
