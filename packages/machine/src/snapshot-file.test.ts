import type { MachineSnapshot } from '@ftvm/core';
import { SnapshotError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { decodeSnapshot, encodeSnapshot, SNAPSHOT_HEADER_BYTES } from './snapshot-file.js';

const snapshot: MachineSnapshot = {
  format: 'ftvm-machine-snapshot',
  version: 1,
  icount: 123_456,
  config: { ramSizeBytes: 8192 },
  cpu: { kind: 'riscv-cpu', version: 1, state: { pc: 0x8000_0000, x: [0, 1, 2] } },
  devices: { uart: { kind: 'ns16550a', version: 1, state: { ier: 1, fifo: new Uint8Array([65, 66]) } } },
  ram: { base: 0x8000_0000, size: 8192, pageNumbers: [1], pages: new Uint8Array(4096).fill(7) },
};

describe('snapshot file', () => {
  it('round-trips a snapshot', () => {
    const decoded = decodeSnapshot(encodeSnapshot(snapshot));
    expect(decoded.icount).toBe(snapshot.icount);
    expect(decoded.cpu).toEqual(snapshot.cpu);
    expect(Array.from(decoded.ram.pages.subarray(0, 4))).toEqual([7, 7, 7, 7]);
    const uartState = decoded.devices.uart?.state as { fifo: Uint8Array } | undefined;
    expect(Array.from(uartState?.fifo ?? [])).toEqual([65, 66]);
  });

  it('refuses damaged, truncated and foreign files with a SnapshotError', () => {
    const file = encodeSnapshot(snapshot);
    const flipped = file.slice();
    flipped[SNAPSHOT_HEADER_BYTES + 10] = (flipped[SNAPSHOT_HEADER_BYTES + 10] as number) ^ 0x40;
    expect(() => decodeSnapshot(flipped)).toThrow(/damaged/);
    for (const length of [0, 7, 31, 32, file.length - 1]) {
      expect(() => decodeSnapshot(file.subarray(0, length))).toThrow(SnapshotError);
    }
    const foreign = file.slice();
    foreign[0] = 0x41;
    expect(() => decodeSnapshot(foreign)).toThrow(/bad magic/);
    const newer = file.slice();
    newer[8] = 2;
    expect(() => decodeSnapshot(newer)).toThrow(/version 2/);
  });
});
