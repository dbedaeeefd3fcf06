import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath, packageRoot, referenceQemuArgs } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { bin, built, echoUntilQ, exitWith42, ftvm, scratchDirectory, writeRawProgram } from './support.js';

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

/** Prints `x` for ever. */
const printForever = [
  0x100002b7, // lui   t0, 0x10000        UART
  0x07800313, // li    t1, 'x'
  0x00628023, // sb    t1, 0(t0)          THR
  0xffdff06f, // j     -4
];

describe.skipIf(!built)('ftvm run, record and replay on a console that fails (needs `npm run build`)', () => {
  /** Runs `ftvm ARGS…` with stdout on /dev/full. */
  function onFullDevice(args: string[]) {
    const full = openSync('/dev/full', 'w');
    try {
      const result = spawnSync(process.execPath, [bin, ...args], {
        stdio: ['ignore', full, 'pipe'],
        encoding: 'utf8',
        timeout: 60_000,
      });
      return { status: result.status, stderr: result.stderr };
    } finally {
      closeSync(full);
    }
  }

  it.skipIf(!existsSync('/dev/full'))('exits 74 with one line when stdout is a full device', () => {
    const recording = join(directory, 'full.ftlog');
    for (const args of [
      ['run', '--kernel', imagePath('hello')],
      ['record', '--kernel', imagePath('hello'), '--clock', 'icount', '-o', recording],
      ['replay', recording],
      ['--help'],
    ]) {
      const result = onFullDevice(args);
      expect(result.stderr).toBe('ftvm: cannot write standard output: no space left on device\n');
      expect(result.status).toBe(74);
    }
  });

  it('ends quietly with 74 when the reader closes the pipe (ftvm run … | head -c 10)', async () => {
    const child = spawn(process.execPath, [bin, 'run', '--kernel', rawProgram('forever.bin', printForever)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    let received = 0;
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= 10) {
          child.stdout.destroy(); // as head does once it has its 10 bytes
          resolve();
        }
      }),
    );
    const timeout = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const status = await closed;
    clearTimeout(timeout);
    expect(stderr).toBe('');
    expect(status).toBe(74);
  });
});

describe.skipIf(!built)('QEMU spellings (needs `npm run build`)', () => {
  it("runs a QEMU command line's shared options", () => {
    const result = ftvm(['run', ...referenceQemuArgs('hello'), '-append', 'ignored=1']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('hello: root compatible = riscv-virtio');
  });

  it('names a QEMU option ftvm does not have instead of misreading it (-monitor is not -m onitor)', () => {
    const result = ftvm(['run', '-kernel', imagePath('hello'), '-monitor', 'stdio']);
    expect(result.status).toBe(64);
    expect(result.stderr).toBe("ftvm: QEMU's -monitor is not supported by ftvm (ftvm has no monitor)\n");
  });
});

describe.skipIf(!built)('a kernel booted through a firmware (--bios, QEMU -bios)', () => {
  const linux = join(packageRoot(), 'images', 'linux');
  const firmware = join(linux, 'sbi.elf');
  const kernel = join(linux, 'sbi-test.elf');
  // What QEMU 7.2 prints for the same command line (checked by @ftvm/guests's own test on QEMU),
  // with the guest's CRLF line ends as LF.
  const expected = () => readFileSync(join(packageRoot(), 'linux', 'sbi', 'test', 'expected.txt'), 'utf8');

  it("boots the SBI test kernel through the project's SBI firmware, printing what QEMU prints", () => {
    const result = ftvm(['run', ...referenceQemuArgs(kernel, { bios: firmware })]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout.replaceAll('\r\n', '\n')).toBe(expected());
  });

  it('records the boot with its firmware and replays it from the recording alone', () => {
    const recording = join(directory, 'sbi.ftlog');
    const recorded = ftvm(['record', '--bios', firmware, '--kernel', kernel, '-o', recording]);
    expect(recorded.status).toBe(0);
    const replayed = ftvm(['replay', recording]);
    expect(replayed.stderr).toBe('');
    expect(replayed.status).toBe(0);
    expect(replayed.stdout).toBe(recorded.stdout);
    expect(replayed.stdout).toContain('sbi-test: running in S-mode');
  });

  it('refuses a firmware that is not linked at 0x80000000 (65), and records over neither input (64)', () => {
    const misplaced = ftvm(['run', '--bios', kernel, '--kernel', kernel]);
    expect(misplaced.status).toBe(65);
    expect(misplaced.stderr).toMatch(/a firmware must be linked to start at 0x80000000/);
    const over = ftvm(['record', '--bios', firmware, '--kernel', kernel, '-o', firmware]);
    expect(over.status).toBe(64);
    expect(over.stderr).toMatch(/that is the firmware/);
  });
});
