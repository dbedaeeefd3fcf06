// The committed images must be exactly what the sources build to (npm run images).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  deterministicLines,
  imageNames,
  imagePath,
  packageRoot,
  runOnReferenceQemu,
  sdkPath,
} from './index.js';
import { guestCompiler, sdkCompilerArgs } from './sdk-build.js';
import { guestToolchainVersion, qemuMissing } from './test-support.js';

const installed = guestToolchainVersion();
const committed = readFileSync(join(packageRoot(), 'images', 'TOOLCHAIN.txt'), 'utf8').trim();
const skipReason =
  installed === undefined
    ? `(skipped: ${guestCompiler} is not installed; Debian: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)`
    : installed !== committed
      ? `(skipped: the images were built with "${committed}", this machine has "${installed}")`
      : '';

describe.skipIf(skipReason !== '')(`reproducible images ${skipReason}`, () => {
  it('a fresh build from the sources matches every committed image byte for byte', () => {
    const out = mkdtempSync(join(tmpdir(), 'ftvm-guests-build-'));
    try {
      const result = spawnSync(
        process.execPath,
        [join(packageRoot(), 'scripts', 'build-images.mjs'), '--out', out, '--objects', join(out, 'objects')],
        { encoding: 'utf8' },
      );
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      for (const name of imageNames) {
        const fresh = readFileSync(join(out, `${name}.elf`));
        const inRepository = readFileSync(imagePath(name));
        expect(fresh.equals(inRepository), `${name}.elf differs from a fresh build`).toBe(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('committed images', () => {
  it('the images carry no host paths', () => {
    for (const name of imageNames) {
      const text = readFileSync(imagePath(name)).toString('latin1');
      expect(text).not.toContain(packageRoot());
      expect(text).not.toContain('/tmp/');
    }
  });
});

describe.skipIf(skipReason !== '' || qemuMissing !== undefined)(
  `the README example builds with the documented command and runs ${skipReason} ${qemuMissing ?? ''}`,
  () => {
    it('sdk/examples/tick.c is the README example, builds, and prints its ticks on QEMU', async () => {
      const example = readFileSync(join(sdkPath(), 'examples', 'tick.c'), 'utf8');
      expect(readFileSync(join(packageRoot(), 'README.md'), 'utf8')).toContain(example);
      const out = mkdtempSync(join(tmpdir(), 'ftvm-guests-example-'));
      try {
        const kernel = join(out, 'tick.elf');
        const result = spawnSync(
          guestCompiler,
          sdkCompilerArgs([join(sdkPath(), 'examples', 'tick.c')], kernel),
          { encoding: 'utf8' },
        );
        expect(result.stderr).toBe('');
        expect(result.status).toBe(0);
        const { output, exit } = await runOnReferenceQemu(kernel);
        expect(deterministicLines(output)).toEqual([
          'tick: 64 MiB of RAM at 0x80000000',
          'tick: ecall with a0=42',
          'tick 1',
          'tick 2',
          'tick 3',
        ]);
        expect(exit.status).toBe(0);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  },
);
