import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { imagePath } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/ftvm.js', import.meta.url));
const built = existsSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)));
const directory = mkdtempSync(join(tmpdir(), 'ftvm-cli-'));

function ftvm(args: string[], input = '') {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A raw RV32 program from its instruction words (little-endian), written to a file. */
function rawProgram(name: string, words: number[]): string {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  words.forEach((word, index) => {
    view.setUint32(index * 4, word, true);
  });
  const path = join(directory, name);
  writeFileSync(path, bytes);
  return path;
}

// Echoes UART input until it reads 'q', then powers off with success.
const echoUntilQ = [
  0x100002b7, // lui   t0, 0x10000        UART
  0x0052c303, // lbu   t1, 5(t0)          LSR
  0x00137313, // andi  t1, t1, 1          data ready?
  0xfe030ce3, // beqz  t1, -8
  0x0002c383, // lbu   t2, 0(t0)          RBR
  0x00728023, // sb    t2, 0(t0)          THR
  0x07100e13, // li    t3, 'q'
  0xffc394e3, // bne   t2, t3, -24
  0x001002b7, // lui   t0, 0x100          test finisher
  0x00005337, // lui   t1, 0x5
  0x55530313, // addi  t1, t1, 0x555      0x5555: pass
  0x0062a023, // sw    t1, 0(t0)
  0x0000006f, // j     .
];

// Powers off with failure code 42: (42 << 16) | 0x3333.
const exitWith42 = [0x001002b7, 0x002a3337, 0x33330313, 0x0062a023, 0x0000006f];

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
