import { referenceQemuCpu } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { capture } from '../test/support.js';
import { main } from './index.js';
import { rewriteQemuArgs } from './qemu-args.js';

describe('QEMU spellings on run and record', () => {
  it("rewrites QEMU's single-dash options that ftvm shares, and drops the no-ops", () => {
    expect(
      rewriteQemuArgs([
        'run',
        '-M',
        'virt',
        '-bios',
        'none',
        '-nographic',
        '-m',
        'size=128M',
        '-kernel',
        'kv.elf',
        '-append',
        'iterations=3',
        '-device',
        'virtio-rng-device',
        '-global',
        'virtio-mmio.force-legacy=false',
      ]),
    ).toEqual([
      'run',
      '--bios',
      'none',
      '-m',
      '128M',
      '--kernel',
      'kv.elf',
      '--append',
      'iterations=3',
      '--device',
      'virtio-rng-device',
    ]);
    expect(rewriteQemuArgs(['record', '-machine', 'virt', '-kernel', 'a.elf', '-o', 'a.ftlog'])).toEqual([
      'record',
      '--kernel',
      'a.elf',
      '-o',
      'a.ftlog',
    ]);
  });

  it("takes QEMU's -drive/-netdev id= and the -device that pairs with it", () => {
    expect(
      rewriteQemuArgs([
        'run',
        '-kernel',
        'kv.elf',
        '-drive',
        'file=kv.img,if=none,format=raw,id=d0',
        '-device',
        'virtio-blk-device,drive=d0',
        '-netdev',
        'user,id=n0,hostfwd=udp:127.0.0.1:5555-:5555',
        '-device',
        'virtio-net-device,netdev=n0',
      ]),
    ).toEqual([
      'run',
      '--kernel',
      'kv.elf',
      '--drive',
      'file=kv.img,if=none,format=raw',
      '--netdev',
      'user,hostfwd=udp:127.0.0.1:5555-:5555',
    ]);
    expect(() =>
      rewriteQemuArgs(['run', '-kernel', 'kv.elf', '-device', 'virtio-blk-device,drive=nope']),
    ).toThrow(/ftvm makes a virtio-blk-device for each -drive by itself/);
  });

  it('refuses QEMU options ftvm does not have, by name, with status 64', () => {
    for (const option of ['-monitor', '-serial', '-s', '-S', '-gdb', '-display', '-icount']) {
      expect(() => rewriteQemuArgs(['run', '-kernel', 'x.elf', option, 'value'])).toThrow(
        `QEMU's ${option} is not supported by ftvm`,
      );
    }
    expect(() => rewriteQemuArgs(['run', '-machine', 'sifive_u'])).toThrow(
      "-machine sifive_u: ftvm has only QEMU's virt board",
    );
    expect(() => rewriteQemuArgs(['run', '-cpu', 'rv32'])).toThrow("-cpu rv32: ftvm's hart is fixed");
    expect(() => rewriteQemuArgs(['run', '-smp', '2'])).toThrow('-smp 2: ftvm has one hart');
  });

  it("takes QEMU's -bios FILE -kernel FILE as --bios and --kernel", () => {
    expect(rewriteQemuArgs(['run', '-bios', 'sbi.elf', '-kernel', 'Image'])).toEqual([
      'run',
      '--bios',
      'sbi.elf',
      '--kernel',
      'Image',
    ]);
  });

  it("takes the reference QEMU command line's -cpu and -smp 1 as what ftvm is", () => {
    expect(
      rewriteQemuArgs(['run', '-M', 'virt', '-cpu', referenceQemuCpu, '-smp', '1', '-kernel', 'x.elf']),
    ).toEqual(['run', '--kernel', 'x.elf']);
  });

  it("leaves ftvm's own flags, their values and other commands alone", () => {
    const args = ['run', '--kernel', '-monitor', '--append', '-kernel', '-m', '64M', '--stats', '-h'];
    expect(rewriteQemuArgs(args)).toEqual(args);
    expect(rewriteQemuArgs(['replay', '-monitor'])).toEqual(['replay', '-monitor']);
    expect(rewriteQemuArgs(['run', '--', '-kernel'])).toEqual(['run', '--', '-kernel']);
  });

  it('reports a QEMU option ftvm lacks as one usage line, not as -m onitor', async () => {
    const output = capture();
    expect(await main(['node', 'ftvm', 'run', '-kernel', 'x.elf', '-monitor', 'stdio'], output)).toBe(64);
    expect(output.err).toBe("ftvm: QEMU's -monitor is not supported by ftvm (ftvm has no monitor)\n");
  });
});
