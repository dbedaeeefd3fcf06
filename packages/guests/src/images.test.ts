import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  deterministicLines,
  imageNames,
  imagePath,
  referenceQemuArgs,
  referenceQemuCpu,
  sdkPath,
} from './index.js';

describe('image paths', () => {
  it.each(imageNames)(
    '%s.elf is committed and is a 32-bit RISC-V executable linked at 0x8000_0000',
    (name) => {
      const path = imagePath(name);
      expect(existsSync(path)).toBe(true);
      const elf = readFileSync(path);
      expect(elf.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
      expect(elf[4]).toBe(1); // ELFCLASS32
      expect(elf[5]).toBe(1); // little-endian
      expect(elf.readUInt16LE(16)).toBe(2); // ET_EXEC
      expect(elf.readUInt16LE(18)).toBe(243); // EM_RISCV
      expect(elf.readUInt32LE(24)).toBe(0x8000_0000); // entry
    },
  );

  it.each(imageNames)(
    '%s.elf loads entirely within the first 16 MiB of RAM (below the device tree)',
    (name) => {
      const elf = readFileSync(imagePath(name));
      const programHeaderOffset = elf.readUInt32LE(28);
      const programHeaderSize = elf.readUInt16LE(42);
      const programHeaderCount = elf.readUInt16LE(44);
      let loadable = 0;
      for (let index = 0; index < programHeaderCount; index++) {
        const header = programHeaderOffset + index * programHeaderSize;
        if (elf.readUInt32LE(header) !== 1) continue; // PT_LOAD
        loadable++;
        const address = elf.readUInt32LE(header + 8);
        const memorySize = elf.readUInt32LE(header + 20);
        expect(address).toBeGreaterThanOrEqual(0x8000_0000);
        expect(address + memorySize).toBeLessThanOrEqual(0x8100_0000);
      }
      expect(loadable).toBeGreaterThan(0);
    },
  );

  it('rejects unknown names', () => {
    expect(() => imagePath('nope' as never)).toThrow(/unknown image/);
  });

  it('points at the SDK sources', () => {
    expect(existsSync(`${sdkPath()}/include/ftvm.h`)).toBe(true);
    expect(existsSync(`${sdkPath()}/src/crt0.S`)).toBe(true);
  });
});

describe('referenceQemuArgs', () => {
  it('is exactly the reference command line for a plain image', () => {
    expect(referenceQemuArgs('hello')).toEqual([
      '-M',
      'virt',
      '-bios',
      'none',
      '-nographic',
      '-m',
      '64M',
      '-cpu',
      referenceQemuCpu,
      '-kernel',
      imagePath('hello'),
    ]);
  });

  it('adds modern virtio-mmio and the requested devices', () => {
    const args = referenceQemuArgs('/tmp/x.elf', {
      diskPath: '/tmp/disk.img',
      network: { udpForwards: [{ hostPort: 40000, guestPort: 5555 }] },
      rng: true,
    });
    expect(args.slice(0, 11)).toEqual(referenceQemuArgs('/tmp/x.elf'));
    expect(args.slice(11)).toEqual([
      '-global',
      'virtio-mmio.force-legacy=false',
      '-drive',
      'file=/tmp/disk.img,if=none,format=raw,id=d0',
      '-device',
      'virtio-blk-device,drive=d0',
      '-netdev',
      'user,id=n0,hostfwd=udp:127.0.0.1:40000-:5555',
      '-device',
      'virtio-net-device,netdev=n0',
      '-device',
      'virtio-rng-device',
    ]);
  });
});

describe('deterministicLines', () => {
  it('drops empty and [nondet] lines', () => {
    expect(deterministicLines('a\r\n[nondet] mtime=5\nb\n\n')).toEqual(['a', 'b']);
  });
});
