import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { sdkPath } from './images.js';

/** The guest C compiler: Debian's `riscv64-unknown-elf-gcc`, or `FTVM_GUEST_CC`. */
export const guestCompiler = process.env.FTVM_GUEST_CC ?? 'riscv64-unknown-elf-gcc';

/**
 * The compiler arguments that build a guest from C (or assembly) sources with the SDK in one go,
 * as the README shows: rv32imac/ilp32 with picolibc, the SDK's start-up code and linker script.
 * `extraFlags` go before the sources (warnings, reproducibility flags).
 */
export function sdkCompilerArgs(
  sources: readonly string[],
  output: string,
  extraFlags: readonly string[] = [],
): string[] {
  const sdk = sdkPath();
  const sdkSources = readdirSync(join(sdk, 'src'))
    .filter((file) => file.endsWith('.c') || file.endsWith('.S'))
    .sort()
    .map((file) => join(sdk, 'src', file));
  return [
    '-march=rv32imac',
    '-misa-spec=2.2',
    '-mabi=ilp32',
    '-mcmodel=medany',
    '--specs=picolibc.specs',
    '-O2',
    `-I${join(sdk, 'include')}`,
    '-nostartfiles',
    `-T${join(sdk, 'src', 'ftvm.ld')}`,
    '-Wl,--gc-sections',
    '-Wl,--no-warn-rwx-segments',
    ...extraFlags,
    '-o',
    output,
    ...sources,
    ...sdkSources,
  ];
}
