import { ConfigError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { type RecordedDisk, replayVirtio } from './virtio-options.js';

const disks = (count: number): RecordedDisk[] =>
  Array.from({ length: count }, (_, index) => ({
    name: `disk${index}.img`,
    digest: `sha256:${'0'.repeat(64)}`,
    sizeBytes: 1 << 20,
    readOnly: false,
  }));

describe('the virtio devices of a replay', () => {
  it('fills the slots from the top as the recording did', () => {
    const slots = replayVirtio(disks(7), true, false);
    expect(slots).toHaveLength(8);
    expect(slots.every((slot) => slot !== undefined)).toBe(true);
  });

  it('refuses a recording that names more devices than the board has slots, instead of dropping some', () => {
    expect(() => replayVirtio(disks(8), true, false)).toThrow(ConfigError);
    expect(() => replayVirtio(disks(7), true, true)).toThrow(/names 9 virtio devices; the board has 8 slots/);
  });
});
