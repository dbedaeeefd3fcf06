// The project's SBI firmware (images/linux/sbi.elf, from linux/sbi/): the committed ELF files are
// what the sources build to (npm run sbi), and on the reference QEMU the firmware boots its S-mode
// test payload, which prints the committed transcript and shuts the board down through SRST.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deterministicLines, packageRoot, ReferenceQemu, runOnReferenceQemu } from './index.js';
import { guestCompiler } from './sdk-build.js';
import { guestToolchainVersion, qemuMissing } from './test-support.js';

const firmware = join(packageRoot(), 'images', 'linux', 'sbi.elf');
const payload = join(packageRoot(), 'images', 'linux', 'sbi-test.elf');
const expectedLines = deterministicLines(
  readFileSync(join(packageRoot(), 'linux', 'sbi', 'test', 'expected.txt'), 'utf8'),
);

const installed = guestToolchainVersion();
const committed = readFileSync(join(packageRoot(), 'images', 'TOOLCHAIN.txt'), 'utf8').trim();
const toolchainSkipReason =
  installed === undefined
    ? `(skipped: ${guestCompiler} is not installed; Debian: gcc-riscv64-unknown-elf)`
    : installed !== committed
      ? `(skipped: the images were built with "${committed}", this machine has "${installed}")`
      : '';

/** The PT_LOAD segments of a 32-bit little-endian ELF file: [address, memory size]. */
function loadSegments(elf: Buffer): [number, number][] {
  const segments: [number, number][] = [];
  const offset = elf.readUInt32LE(28);
  const size = elf.readUInt16LE(42);
  for (let index = 0; index < elf.readUInt16LE(44); index++) {
    const header = offset + index * size;
    if (elf.readUInt32LE(header) === 1)
      segments.push([elf.readUInt32LE(header + 8), elf.readUInt32LE(header + 20)]);
  }
  return segments;
}

describe('the committed SBI firmware and its test payload', () => {
  it('sbi.elf is entered at 0x8000_0000 and ends well below 0x8040_0000, where the kernel goes', () => {
    const elf = readFileSync(firmware);
    expect(elf.readUInt32LE(24)).toBe(0x8000_0000);
    const segments = loadSegments(elf);
    expect(segments.length).toBeGreaterThan(0);
    expect(Math.min(...segments.map(([address]) => address))).toBe(0x8000_0000);
    expect(Math.max(...segments.map(([address, size]) => address + size))).toBeLessThan(0x8010_0000);
  });

  it('sbi-test.elf is entered at 0x8040_0000', () => {
    expect(readFileSync(payload).readUInt32LE(24)).toBe(0x8040_0000);
  });

  it('carry no host paths', () => {
    for (const file of [firmware, payload]) {
      const text = readFileSync(file).toString('latin1');
      expect(text).not.toContain(packageRoot());
      expect(text).not.toContain('/tmp/');
    }
  });
});

describe.skipIf(toolchainSkipReason !== '')(
  `the SBI firmware builds reproducibly ${toolchainSkipReason}`,
  () => {
    it('a fresh build of sbi.elf and sbi-test.elf matches the committed files byte for byte', () => {
      const out = mkdtempSync(join(tmpdir(), 'ftvm-sbi-build-'));
      try {
        const result = spawnSync(
          process.execPath,
          [join(packageRoot(), 'scripts', 'build-sbi.mjs'), '--out', out, '--objects', join(out, 'objects')],
          { encoding: 'utf8' },
        );
        expect(result.stderr).toBe('');
        expect(result.status).toBe(0);
        for (const name of ['sbi.elf', 'sbi-test.elf']) {
          const fresh = readFileSync(join(out, name));
          const inRepository = readFileSync(join(packageRoot(), 'images', 'linux', name));
          expect(fresh.equals(inRepository), `${name} differs from a fresh build`).toBe(true);
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }, 120_000);
  },
);

describe.skipIf(qemuMissing !== undefined)(
  `the SBI firmware on the reference QEMU ${qemuMissing ?? ''}`,
  () => {
    it('boots the test payload in S-mode, which prints the expected transcript and shuts down with status 0', async () => {
      const { output, exit } = await runOnReferenceQemu(payload, { bios: firmware, timeoutMs: 30_000 });
      expect(deterministicLines(output)).toEqual(expectedLines);
      expect(exit.status).toBe(0);
    });

    it('a shutdown for a system failure (SRST reason 1) ends QEMU with status 1', async () => {
      const { output, exit } = await runOnReferenceQemu(payload, {
        bios: firmware,
        append: 'sbi-test=failure',
        timeoutMs: 30_000,
      });
      expect(deterministicLines(output)).toEqual([
        ...expectedLines.slice(0, -1),
        'sbi-test: system_reset(shutdown, system failure)',
      ]);
      expect(exit.status).toBe(1);
    });

    it('a cold reboot (SRST type 1) resets the board, and the firmware boots the payload again', async () => {
      const qemu = new ReferenceQemu(payload, { bios: firmware, append: 'sbi-test=reboot' });
      try {
        // The payload reboots on every run: wait for the firmware and the payload after one reboot.
        await qemu.waitForOutput(
          /system_reset\(cold reboot, no reason\)\r?\nftvm-sbi 0\.1: [^\n]*\nftvm-sbi: starting the S-mode kernel[^\n]*\nsbi-test: running in S-mode/,
        );
      } finally {
        await qemu.stop();
      }
    });
  },
);
