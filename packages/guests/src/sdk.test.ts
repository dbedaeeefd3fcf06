// Checks of the C SDK itself: small programs under sdk/tests, built with the documented command
// line and run on the reference QEMU.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deterministicLines, runOnReferenceQemu, sdkPath } from './index.js';
import { guestCompiler, sdkCompilerArgs } from './sdk-build.js';
import { guestToolchainVersion, qemuMissing } from './test-support.js';

const toolchainMissing =
  guestToolchainVersion() === undefined
    ? `${guestCompiler} is not installed (Debian: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)`
    : undefined;
const skipReason = [qemuMissing, toolchainMissing].filter((reason) => reason !== undefined).join('; ');

const out = mkdtempSync(join(tmpdir(), 'ftvm-guests-sdk-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** Builds sdk/tests/NAME.c with the SDK, as the README says; returns the ELF's path. */
function buildTestProgram(name: string): string {
  const kernel = join(out, `${name}.elf`);
  const result = spawnSync(guestCompiler, sdkCompilerArgs([join(sdkPath(), 'tests', `${name}.c`)], kernel), {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`building ${name}.c failed:\n${result.stderr}`);
  return kernel;
}

describe.skipIf(skipReason !== '')(
  `the C SDK on the reference QEMU ${skipReason ? `(skipped: ${skipReason})` : ''}`,
  () => {
    it('reads the device tree, dispatches traps, masks interrupts, sleeps, and exits with main’s status', async () => {
      const { output, exit } = await runOnReferenceQemu(buildTestProgram('sdk_check'));
      expect(deterministicLines(output)).toEqual([
        'fdt: open NULL: 0',
        'fdt: open garbage: 0',
        'fdt: boot tree: 1',
        'fdt: root is node 0: 1',
        'fdt: /soc/serial -> serial@10000000',
        'fdt: /soc/serial@10000001 -> -1',
        'fdt: /nothing/here -> -1',
        'fdt: parent of uart: soc',
        'fdt: parent of root: -1',
        'fdt: root #address-cells = 2',
        'fdt: chosen stdout-path = /soc/serial@10000000',
        'fdt: missing property: 1',
        'fdt: 8 virtio,mmio nodes, irqs summing to 36',
        'fdt: sifive,test0 (second in its list) at 0x100000 size 0x1000',
        'fdt: plic at 0xc000000 size 0x600000',
        'fdt: clint at 0x2000000 size 0x10000',
        'trap: breakpoints handled: 2',
        'trap: ecall handler doubled 21 to 42',
        'csr: interrupts were enabled at start: 0',
        'csr: disable reports enabled: 1',
        'timer: mtime advanced across a sleep: 1',
        'virtio: find blk without one: no such virtio device',
      ]);
      expect(exit.status).toBe(3);
    });

    it('reports a trap nobody handles and powers off with status 127', async () => {
      const { output, exit } = await runOnReferenceQemu(buildTestProgram('unhandled_trap'));
      const lines = deterministicLines(output);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toBe('about to execute an illegal instruction');
      expect(lines[1]).toMatch(
        /^ftvm: unhandled machine trap: cause=0x00000002 pc=0x8000[0-9a-f]{4} value=0x00000000$/,
      );
      expect(exit.status).toBe(127);
    });
  },
);
