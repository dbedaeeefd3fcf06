import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { built, echoUntilQ, exitWith42, ftvm, scratchDirectory, writeRawProgram } from './support.js';

const directory = scratchDirectory('ftvm-cli-');

/** A raw RV32 program written to the scratch folder. */
function rawProgram(name: string, words: readonly number[]): string {
  return writeRawProgram(join(directory, name), words);
}

describe.skipIf(!built)('ftvm run (needs `npm run build`)', () => {
  it('runs hello.elf with the console on stdout and exits 0', () => {
    const result = ftvm(['run', '--kernel', imagePath('hello')]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('hello: root compatible = riscv-virtio');
    expect(result.stderr).toBe('');
  });

  it('feeds stdin to the UART', () => {
    const result = ftvm(['run', '--kernel', rawProgram('echo.bin', echoUntilQ)], 'hello q');
    expect(result.status).toBe(0);
    expect(result.stdout).toBe('hello q');
  });

  it("exits with the guest's own failure status", () => {
    expect(ftvm(['run', '--kernel', rawProgram('exit42.bin', exitWith42)]).status).toBe(42);
  });

  it('prints one stats line on stderr with --stats', () => {
    const result = ftvm(['run', '--kernel', imagePath('hello'), '--stats']);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/^ftvm: steps=\d+ seconds=\d+\.\d+ mips=\d+\.\d+\n$/);
  });

  it('gives identical output twice with the deterministic clock', () => {
    const first = ftvm(['run', '--kernel', imagePath('clock'), '--clock', 'icount']);
    const second = ftvm(['run', '--kernel', imagePath('clock'), '--clock', 'icount']);
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(second.stdout);
    expect(first.stdout).toContain('clock: ok');
  });

  it('fails with one line and a sysexits status on bad input', () => {
    const missing = ftvm(['run', '--kernel', join(directory, 'no-such.elf')]);
    expect(missing.status).toBe(66);
    expect(missing.stderr).toMatch(/^ftvm: cannot read kernel .*no-such\.elf: no such file\n$/);

    const truncatedPath = join(directory, 'truncated.elf');
    writeFileSync(truncatedPath, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0, 0, 0]));
    const truncated = ftvm(['run', '--kernel', truncatedPath]);
    expect(truncated.status).toBe(65);
    expect(truncated.stderr).toMatch(/^ftvm: .*truncated\.elf: truncated ELF header \(10 bytes\)\n$/);

    const foreign = ftvm(['run', '--kernel', process.execPath]);
    expect(foreign.status).toBe(65);
    expect(foreign.stderr).toMatch(/^ftvm: .*ELF class 64-bit, expected 32-bit \(RV32\)\n$/);

    const badMemory = ftvm(['run', '--kernel', imagePath('hello'), '-m', 'lots']);
    expect(badMemory.status).toBe(64);
    expect(badMemory.stderr).toBe("ftvm: bad memory size 'lots' (expected e.g. 64M or 1G)\n");

    const missingDisk = ftvm([
      'run',
      '--kernel',
      imagePath('hello'),
      '--drive',
      `file=${join(directory, 'no.img')}`,
    ]);
    expect(missingDisk.status).toBe(66);
    expect(missingDisk.stderr).toMatch(/^ftvm: cannot read disk image .*no\.img: no such file\n$/);

    const qcow = ftvm(['run', '--kernel', imagePath('hello'), '--drive', 'file=x.img,format=qcow2']);
    expect(qcow.status).toBe(64);
    expect(qcow.stderr).toBe("ftvm: --drive: format 'qcow2' is not supported (only raw)\n");

    const tcp = ftvm(['run', '--kernel', imagePath('hello'), '--netdev', 'user,hostfwd=tcp::5555-:5555']);
    expect(tcp.status).toBe(64);
    expect(tcp.stderr).toMatch(/^ftvm: bad netdev .*only udp forwards are supported/);

    const noKernel = ftvm(['run']);
    expect(noKernel.status).toBe(64);
    expect(noKernel.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
