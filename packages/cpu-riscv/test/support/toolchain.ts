import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { referenceQemuBinary, runOnReferenceQemu } from '@ftvm/guests';

export const GCC = 'riscv64-unknown-elf-gcc';
/** The reference QEMU (docs/platform.md): its command line is `referenceQemuArgs`. */
export const QEMU = referenceQemuBinary;
export const GUEST_CFLAGS = [
  '-march=rv32imac_zicsr_zifencei',
  '-mabi=ilp32',
  '--specs=picolibc.specs',
  '-nostdlib',
  '-nostartfiles',
  '-ffreestanding',
  '-O2',
  '-Wl,--no-warn-rwx-segments',
];

function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Which of the external tools the QEMU comparisons need are missing (empty when all are there). */
export function missingTools(): string[] {
  return [GCC, QEMU].filter((tool) => !hasCommand(tool));
}

/** A message for `it.skipIf` when tools are missing. */
export function skipMessage(): string {
  const missing = missingTools();
  return missing.length === 0 ? '' : ` (SKIPPED: ${missing.join(' and ')} not installed)`;
}

/** A temporary directory, removed by the returned cleanup. */
export function temporaryDirectory(): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'ftvm-cpu-test-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Compiles and links guest sources with the test link script into `output`. */
export function buildGuest(sources: string[], linkScript: string, output: string): void {
  execFileSync(GCC, [...GUEST_CFLAGS, '-T', linkScript, ...sources, '-o', output], { stdio: 'pipe' });
}

/** Runs an image on the reference QEMU; returns what the guest wrote to the UART. */
export async function runOnQemu(image: string, timeoutMs = 20_000): Promise<string> {
  return (await runOnReferenceQemu(image, { timeoutMs })).output;
}
