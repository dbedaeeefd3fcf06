#!/usr/bin/env node
// Builds guest/sensor.elf from guest/sensor.c and the @ftvm/guests SDK, byte for byte
// reproducibly (the SDK's flags, paths mapped away, no build id, no symbols).
// Usage: node build-guest.mjs [--out FILE]   (needs the built @ftvm/guests: npm run build)
import { spawnSync } from 'node:child_process';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestCompiler, sdkCompilerArgs, sdkPath } from '@ftvm/guests';

const here = dirname(fileURLToPath(import.meta.url));
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? resolve(process.argv[outIndex + 1]) : join(here, 'guest/sensor.elf');
const args = sdkCompilerArgs([join(here, 'guest/sensor.c')], out, [
  '-Wall',
  '-Werror',
  '-fno-ident',
  `-ffile-prefix-map=${sdkPath()}=sdk`,
  `-ffile-prefix-map=${here}=.`,
  '-Wl,--build-id=none',
  '-Wl,--strip-all', // no symbols: temporary object names would differ from build to build
]);
const result = spawnSync(guestCompiler, args, { stdio: 'inherit' });
if (result.error || result.status !== 0) {
  console.error(
    `build-guest: the guest toolchain failed (${result.error?.message ?? `status ${result.status}`})`,
  );
  process.exit(result.error ? 69 : 1);
}
console.log(`built ${relative(process.cwd(), out)}`);
