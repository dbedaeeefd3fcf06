import type { AccessWidth } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { createDeviceHarness } from '../testing/index.js';
import { MemoryBlockBackend } from './block/block-backend.js';
import { VirtioBlock } from './block/virtio-block.js';
import fixture from './fixtures/qemu-virtio-transcripts.json' with { type: 'json' };
import { VirtioNet } from './net/virtio-net.js';
import scripts from './qemu-reference/virtio-scripts.json' with { type: 'json' };
import { VirtioRng } from './rng/virtio-rng.js';
import { VirtioMmioTransport } from './transport/mmio-transport.js';
import type { VirtioDevice } from './transport/virtio-device.js';

/**
 * Register scripts recorded on QEMU 7.2 with a modern virtio-mmio transport
 * (qemu-reference/record-virtio.mjs), replayed on the transport and devices. Every read must match
 * QEMU's, except the ones a script lists under `differences`, which must read ftvm's stated value.
 */

const WIDTHS: Record<string, AccessWidth> = { r8: 1, r16: 2, r32: 4, w8: 1, w16: 2, w32: 4 };

function makeDevice(kind: string): VirtioDevice | undefined {
  switch (kind) {
    case 'rng':
      return new VirtioRng({ entropySource: (lengthBytes) => new Uint8Array(lengthBytes) });
    case 'blk':
      return new VirtioBlock({ backend: new MemoryBlockBackend(scripts.diskSectors * 512) });
    case 'net':
      return new VirtioNet();
    default:
      return undefined;
  }
}

describe('virtio-mmio register scripts recorded on QEMU 7.2', () => {
  scripts.scripts.forEach((script, scriptIndex) => {
    it(script.name, () => {
      const transcript = fixture.transcripts[scriptIndex]!;
      expect(transcript.name).toBe(script.name);
      const harness = createDeviceHarness(new VirtioMmioTransport(makeDevice(script.device)), {
        memorySizeBytes: 2 * 1024 * 1024,
        placement: { base: Number(script.base), irq: 8 },
      });
      const differences = (script.differences ?? {}) as unknown as Record<string, [number, string]>;
      const reads = new Map(transcript.reads.map(([index, value]) => [index!, value!]));
      script.ops.forEach(([kind, offset, value], index) => {
        const width = WIDTHS[kind!]!;
        if (kind!.startsWith('w')) {
          harness.write(Number(offset), Number(value), width);
          harness.deliver();
          return;
        }
        const actual = harness.read(Number(offset), width);
        const expected = differences[String(index)]?.[0] ?? reads.get(index);
        expect({ index, kind, offset, value: actual }).toEqual({ index, kind, offset, value: expected });
      });
    });
  });

  it('lists differences only where QEMU answered otherwise', () => {
    scripts.scripts.forEach((script, scriptIndex) => {
      const reads = new Map(
        fixture.transcripts[scriptIndex]!.reads.map(([index, value]) => [index!, value!]),
      );
      for (const [index, [ours]] of Object.entries(
        (script.differences ?? {}) as unknown as Record<string, [number, string]>,
      )) {
        expect(reads.get(Number(index))).not.toBe(ours);
      }
    });
  });
});
