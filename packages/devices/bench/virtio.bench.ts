/**
 * Costs of the virtio paths: one request or frame through the transport, the split virtqueue and
 * the device, driven by the test guest driver. Prints operations per second (vitest bench);
 * asserts nothing. Run: `npm run bench` in this package.
 */
import { bench, describe } from 'vitest';
import { MemoryBlockBackend, VirtioBlock, VirtioNet, VirtioRng } from '../src/index.js';
import { createVirtioRig, type GuestDriver } from '../src/virtio/testing/guest-driver.js';

/** Takes the used elements back and frees their (single) descriptors, as a driver does. */
function reclaim(driver: GuestDriver, queueIndex: number, descriptorsPerChain = 1): void {
  const queue = driver.queues[queueIndex]!;
  for (const element of driver.takeUsed(queueIndex)) {
    for (let i = 0; i < descriptorsPerChain; i++) queue.freeDescriptor((element.id + i) % queue.size);
  }
}

describe('virtio-net', () => {
  const transmit = createVirtioRig(new VirtioNet(), 1024 * 1024);
  transmit.driver.initialize();
  const frameAddress = transmit.driver.allocate(12 + 1514);
  bench('transmit one 1514-byte frame (descriptor, notify, output, used, interrupt)', () => {
    transmit.driver.submit(1, [{ readableBytes: 12 + 1514, address: frameAddress }]);
    reclaim(transmit.driver, 1);
    transmit.driver.acknowledgeInterrupts();
    transmit.harness.env.outputs.length = 0;
  });

  const receive = createVirtioRig(new VirtioNet(), 1024 * 1024);
  receive.driver.initialize();
  const bufferAddress = receive.driver.allocate(12 + 1514);
  const frame = new Uint8Array(1514).fill(0x42);
  bench('receive one 1514-byte frame (buffer, inject, apply, used, interrupt)', () => {
    receive.driver.submit(0, [{ writableBytes: 12 + 1514, address: bufferAddress }]);
    receive.device.receive(frame);
    receive.harness.deliver();
    reclaim(receive.driver, 0);
    receive.driver.acknowledgeInterrupts();
    receive.harness.env.injectedHistory.length = 0;
  });
});

describe('virtio-blk', () => {
  const block = createVirtioRig(
    new VirtioBlock({ backend: new MemoryBlockBackend(16 * 1024 * 1024) }),
    1024 * 1024,
  );
  block.driver.initialize();
  const header = block.driver.allocate(16);
  const data = block.driver.allocate(4096);
  const status = block.driver.allocate(1);
  bench('read 4 KiB (request, host read, completion event, DMA, used)', async () => {
    block.driver.submit(0, [
      { readableBytes: 16, address: header },
      { writableBytes: 4096, address: data },
      { writableBytes: 1, address: status },
    ]);
    await block.device.hostIdle();
    block.harness.deliver();
    reclaim(block.driver, 0, 3);
    block.driver.acknowledgeInterrupts();
    block.harness.env.injectedHistory.length = 0;
  });
});

describe('virtio-rng', () => {
  const rng = createVirtioRig(new VirtioRng({ entropySource: (lengthBytes) => new Uint8Array(lengthBytes) }));
  rng.driver.initialize();
  const buffer = rng.driver.allocate(64);
  bench('64 bytes of entropy (request, nondet, used)', () => {
    rng.driver.submit(0, [{ writableBytes: 64, address: buffer }]);
    reclaim(rng.driver, 0);
    rng.driver.acknowledgeInterrupts();
    rng.harness.env.nondetReads.length = 0;
  });
});
