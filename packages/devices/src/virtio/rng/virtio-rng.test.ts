import { DivergenceError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { createVirtioRig, Reg } from '../testing/guest-driver.js';
import { VIRTIO_RNG_REQUEST_BYTES_MAX, VirtioRng, webCryptoEntropySource } from './virtio-rng.js';

describe('virtio-rng (virtio 1.2 §5.4)', () => {
  it('fills writable buffers with entropy read through env.nondet("entropy")', () => {
    let counter = 0;
    const source = (lengthBytes: number) => Uint8Array.from({ length: lengthBytes }, () => counter++ & 0xff);
    const rig = createVirtioRig(new VirtioRng({ entropySource: source }));
    rig.driver.initialize();
    expect(rig.driver.read(Reg.deviceId)).toBe(4);
    rig.harness.env.setIcount(1234);
    const chain = rig.driver.submit(0, [{ writableBytes: 5 }, { writableBytes: 3 }]);
    expect(rig.harness.env.nondetReads).toEqual([
      { key: 'entropy', value: Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7), icount: 1234 },
    ]);
    expect(rig.driver.memory.read(chain.addresses[0]!, 5)).toEqual(Uint8Array.of(0, 1, 2, 3, 4));
    expect(rig.driver.memory.read(chain.addresses[1]!, 3)).toEqual(Uint8Array.of(5, 6, 7));
    expect(rig.driver.takeUsed(0)).toEqual([{ id: chain.headIndex, lengthBytes: 8 }]);
  });

  it('replays: the logged bytes, not the host source, reach the guest', () => {
    const logged = Uint8Array.of(9, 8, 7, 6);
    const rig = createVirtioRig(new VirtioRng({ entropySource: () => new Uint8Array(4) }));
    // A backup's env returns the logged value without calling the source.
    rig.harness.env.nondet = (<T>(_key: string, _read: () => T) => logged as unknown as T) as never;
    rig.driver.initialize();
    const chain = rig.driver.submit(0, [{ writableBytes: 4 }]);
    expect(rig.driver.memory.read(chain.addresses[0]!, 4)).toEqual(logged);
  });

  it('writes only bytes a log holds, never more than asked, and survives a failing source', () => {
    for (const value of [Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9), 'bytes', null, Uint8Array.of(1)]) {
      const rig = createVirtioRig(new VirtioRng());
      rig.harness.env.nondet = (() => value) as never;
      rig.driver.initialize();
      const chain = rig.driver.submit(0, [{ writableBytes: 4 }]);
      const expected = value instanceof Uint8Array ? Math.min(4, value.length) : 0;
      expect(rig.driver.takeUsed(0)).toEqual([{ id: chain.headIndex, lengthBytes: expected }]);
    }
    const failing = createVirtioRig(
      new VirtioRng({
        entropySource: () => {
          throw new Error('no entropy');
        },
      }),
    );
    failing.driver.initialize();
    failing.driver.submit(0, [{ writableBytes: 4 }]);
    expect(failing.driver.takeUsed(0)).toEqual([{ id: 0, lengthBytes: 0 }]);
    expect(failing.harness.env.nondetReads[0]!.value).toEqual(new Uint8Array(0));
  });

  it('lets a divergence found by the nondet door stop the replay (the transport does not swallow it)', () => {
    const rig = createVirtioRig(new VirtioRng());
    rig.harness.env.nondet = (() => {
      throw new DivergenceError('nondet-mismatch', 77, 'a read of rng/temperature', 'a read of rng/entropy');
    }) as never;
    rig.driver.initialize();
    expect(() => rig.driver.submit(0, [{ writableBytes: 4 }])).toThrow(DivergenceError);
  });

  it('caps one request at the limit', () => {
    const rig = createVirtioRig(new VirtioRng(), 64 * 1024);
    rig.driver.initialize();
    rig.driver.submit(0, [{ writableBytes: VIRTIO_RNG_REQUEST_BYTES_MAX + 100 }]);
    expect(rig.driver.takeUsed(0)[0]!.lengthBytes).toBe(VIRTIO_RNG_REQUEST_BYTES_MAX);
  });

  it('defaults to Web Crypto', () => {
    const bytes = webCryptoEntropySource(70_000);
    expect(bytes).toHaveLength(70_000);
    expect(bytes.some((byte) => byte !== 0)).toBe(true);
  });
});
