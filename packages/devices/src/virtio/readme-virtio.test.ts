import { MemoryBlockBackend, VirtioBlock, VirtioMmioTransport } from '@ftvm/devices';
import { createDeviceHarness } from '@ftvm/devices/test';
import { describe, expect, it } from 'vitest';

// The README's virtio example, run through the package's export map (`.` and `./test`).
describe('README virtio example', () => {
  it('reads a sector through a virtqueue', async () => {
    const disk = new MemoryBlockBackend(new TextEncoder().encode('hello, disk'.padEnd(512, '.')));
    const block = new VirtioBlock({ backend: disk });
    const harness = createDeviceHarness(new VirtioMmioTransport(block), {
      placement: { name: 'virtio0', base: 0x1000_1000, irq: 1 },
    });
    const ram = harness.env.memory; // guest RAM at 0x8000_0000
    expect(harness.read(0x008)).toBe(2); // DeviceID: block
    expect(harness.read(0x100)).toBe(1); // capacity: 1 sector

    // The guest driver's part (virtio 1.2 §3.1.1): status, features, one queue of 4 entries.
    harness.write(0x070, 1); // ACKNOWLEDGE
    harness.write(0x070, 3); // DRIVER
    harness.write(0x024, 1); // DriverFeaturesSel = 1 (bits 32–63)
    harness.write(0x020, 1); // accept VIRTIO_F_VERSION_1
    harness.write(0x070, 11); // FEATURES_OK
    const [descriptors, driverArea, deviceArea] = [0x8000_0000, 0x8000_0100, 0x8000_0200];
    harness.write(0x038, 4); // QueueNum
    harness.write(0x080, descriptors);
    harness.write(0x090, driverArea);
    harness.write(0x0a0, deviceArea);
    harness.write(0x044, 1); // QueueReady
    harness.write(0x070, 15); // DRIVER_OK

    // One read request: a header (type 0 = IN, sector 0), 512 bytes for the data, a status byte.
    const [header, data, status] = [0x8000_1000, 0x8000_2000, 0x8000_3000];
    ram.write(header, new Uint8Array(16));
    ram.write(status, Uint8Array.of(0xff));
    const setDescriptor = (index: number, address: number, length: number, flags: number, next: number) => {
      ram.writeU32(descriptors + 16 * index, address);
      ram.writeU32(descriptors + 16 * index + 8, length);
      ram.writeU16(descriptors + 16 * index + 12, flags);
      ram.writeU16(descriptors + 16 * index + 14, next);
    };
    setDescriptor(0, header, 16, 1, 1); // NEXT
    setDescriptor(1, data, 512, 1 | 2, 2); // NEXT | WRITE
    setDescriptor(2, status, 1, 2, 0); // WRITE
    ram.writeU16(driverArea + 4, 0); // ring[0] = descriptor 0
    ram.writeU16(driverArea + 2, 1); // idx = 1
    harness.write(0x050, 0); // QueueNotify

    // The host half reads the disk asynchronously and injects the completion; the data reaches
    // guest memory only when the machine (here the harness) applies it at a step boundary.
    await block.hostIdle();
    expect(ram.read(status, 1)[0]).toBe(0xff); // nothing written yet
    expect(block.inFlightRequests()).toHaveLength(1);
    harness.deliver();
    expect(ram.read(status, 1)[0]).toBe(0); // VIRTIO_BLK_S_OK
    expect(new TextDecoder().decode(ram.read(data, 11))).toBe('hello, disk');
    expect(ram.readU16(deviceArea + 2)).toBe(1); // used.idx
    expect(harness.env.irq.level).toBe(true); // InterruptStatus bit 0
  });
});
