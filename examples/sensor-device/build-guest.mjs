#!/usr/bin/env node
// Builds guest/sensor.elf from guest/sensor.c and the @ftvm/guests SDK, byte for byte
// reproducibly (fixed flags, paths mapped away, no build id, no debug info).
// Usage: node build-guest.mjs [--out FILE]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const sdk = join(dirname(require.resolve('@ftvm/guests/package.json')), 'sdk');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : join(here, 'guest/sensor.elf');
const sdkSources = readdirSync(join(sdk, 'src'))
  .filter((file) => file.endsWith('.c') || file.endsWith('.S'))
  .sort()
  .map((file) => join(sdk, 'src', file));
const args = [
  '-march=rv32imac',
  '-misa-spec=2.2',
  '-mabi=ilp32',
  '-mcmodel=medany',
  '--specs=picolibc.specs',
  '-O2',
  '-Wall',
  '-Werror',
  '-fno-ident',
  `-ffile-prefix-map=${sdk}=sdk`,
  `-ffile-prefix-map=${here}=.`,
  `-I${join(sdk, 'include')}`,
  '-nostartfiles',
  `-T${join(sdk, 'src/ftvm.ld')}`,
  '-Wl,--gc-sections',
  '-Wl,--build-id=none',
  '-Wl,--no-warn-rwx-segments',
  '-Wl,--strip-all', // no symbols: temporary object names would differ from build to build
  '-o',
  out,
  join(here, 'guest/sensor.c'),
  ...sdkSources,
];
const result = spawnSync(process.env.FTVM_GUEST_CC ?? 'riscv64-unknown-elf-gcc', args, { stdio: 'inherit' });
if (result.error || result.status !== 0) {
  console.error(
    `build-guest: the guest toolchain failed (${result.error?.message ?? `status ${result.status}`})`,
  );
  process.exit(result.error ? 69 : 1);
}
console.log(`built ${relative(process.cwd(), out)}`);
