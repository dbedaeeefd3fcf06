import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceTreeNode } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { buildDeviceTreeBlob, formatDeviceTree } from './device-tree.js';

const hasDtc = spawnSync('sh', ['-c', 'command -v dtc'], { stdio: 'ignore' }).status === 0;

const tree: DeviceTreeNode = {
  name: '',
  properties: { '#address-cells': [2], compatible: 'riscv-virtio' },
  children: [
    { name: 'chosen', properties: { 'stdout-path': '/soc/serial@10000000' } },
    {
      name: 'soc',
      properties: { ranges: [], compatible: ['sifive,test1', 'sifive,test0'] },
      children: [
        { name: 'test@100000', properties: { reg: [0, 0x100000, 0, 0x1000], blob: new Uint8Array([1, 2]) } },
      ],
    },
  ],
};

describe('device tree blob', () => {
  it('has a valid header whose sizes add up', () => {
    const blob = buildDeviceTreeBlob(tree);
    const view = new DataView(blob.buffer);
    expect(view.getUint32(0)).toBe(0xd00dfeed);
    expect(view.getUint32(4)).toBe(blob.length);
    expect(view.getUint32(20)).toBe(17);
    expect(view.getUint32(8) + view.getUint32(36)).toBe(view.getUint32(12));
    expect(view.getUint32(12) + view.getUint32(32)).toBe(blob.length);
  });

  it.skipIf(!hasDtc)('decodes with dtc to the tree it was built from (needs dtc)', () => {
    const directory = mkdtempSync(join(tmpdir(), 'ftvm-dtb-'));
    const path = join(directory, 'tree.dtb');
    writeFileSync(path, buildDeviceTreeBlob(tree));
    const result = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', path], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('compatible = "riscv-virtio";');
    expect(result.stdout).toContain('stdout-path = "/soc/serial@10000000";');
    expect(result.stdout).toContain('compatible = "sifive,test1\\0sifive,test0";');
    expect(result.stdout).toContain('reg = <0x00 0x100000 0x00 0x1000>;');
    expect(result.stdout).toContain('blob = [01 02];');
    expect(result.stdout).toMatch(/ranges;/);
    expect(result.stdout).toContain('#address-cells = <0x02>;');
  });

  it('formats like dtc does', () => {
    const text = formatDeviceTree(tree);
    expect(text).toContain('\tcompatible = "riscv-virtio";');
    expect(text).toContain('\t\t\treg = <0x00 0x100000 0x00 0x1000>;');
    expect(text).toContain('\t\tranges;');
  });
});
