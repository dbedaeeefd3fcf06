#!/usr/bin/env node
// Rebuilds every guest image from sdk/ and images/*.c, byte for byte reproducibly.
//
// Usage: node scripts/build-images.mjs [--out DIR] [--objects DIR] [IMAGE ...]
//   --out DIR      where the .elf files go (default: images/)
//   --objects DIR  where object files go (default: build/objects)
//   IMAGE          only these images (default: all)
//
// Reproducible because: gcc runs from the package root on relative paths, -ffile-prefix-map
// maps the root away anyway, no debug info, -Wl,--build-id=none, fixed flags and link order, and
// nothing reads the time. The toolchain version is written to images/TOOLCHAIN.txt; a fresh build
// matches the committed images only with that same toolchain.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const compiler = process.env.FTVM_GUEST_CC ?? 'riscv64-unknown-elf-gcc';

/** Every image: its name and its own sources (the SDK is linked into all of them). */
export const images = [
  { name: 'hello', sources: ['images/hello.c'] },
  { name: 'bench', sources: ['images/bench.c'] },
  { name: 'clock', sources: ['images/clock.c'] },
  { name: 'paging', sources: ['images/paging.c'] },
  { name: 'rng', sources: ['images/rng.c'] },
  { name: 'disk', sources: ['images/disk.c'] },
  { name: 'dmarace', sources: ['images/dmarace.c'] },
  { name: 'echo', sources: ['images/echo.c'] },
  { name: 'kv', sources: ['images/kv.c'] },
  { name: 'diskbench', sources: ['images/diskbench.c'] },
  { name: 'memtouch', sources: ['images/memtouch.c'] },
];

const targetFlags = [
  '-march=rv32imac',
  '-misa-spec=2.2',
  '-mabi=ilp32',
  '-mcmodel=medany',
  '--specs=picolibc.specs',
];
const compileFlags = [
  ...targetFlags,
  '-std=gnu11',
  '-O2',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-ffunction-sections',
  '-fdata-sections',
  '-fno-common',
  '-fno-ident',
  `-ffile-prefix-map=${packageRoot}=.`,
  '-Isdk/include',
];
const linkFlags = [
  ...targetFlags,
  '-nostartfiles',
  '-Tsdk/src/ftvm.ld',
  '-Wl,--gc-sections',
  '-Wl,--build-id=none',
  '-Wl,--no-warn-rwx-segments',
  '-Wl,--strip-debug',
];

function sdkSources() {
  return readdirSync(join(packageRoot, 'sdk/src'))
    .filter((file) => file.endsWith('.c') || file.endsWith('.S'))
    .sort()
    .map((file) => `sdk/src/${file}`);
}

function run(args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(compiler, args, { cwd: packageRoot, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${compiler} ${args.join(' ')} exited with ${code}`));
    });
  });
}

async function inParallel(tasks, limit) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, tasks.length) }, async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      await task();
    }
  });
  await Promise.all(workers);
}

function objectPath(objectsDir, source) {
  return join(objectsDir, `${source.replaceAll('/', '_')}.o`);
}

export function toolchainVersion() {
  const result = spawnSync(compiler, ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  return result.stdout.split('\n')[0];
}

export async function buildImages({ outDir, objectsDir, only } = {}) {
  const out = resolve(packageRoot, outDir ?? 'images');
  const objects = resolve(packageRoot, objectsDir ?? 'build/objects');
  mkdirSync(out, { recursive: true });
  mkdirSync(objects, { recursive: true });
  const selected = only && only.length > 0 ? images.filter((image) => only.includes(image.name)) : images;
  const sdk = sdkSources();
  const sources = [...new Set([...sdk, ...selected.flatMap((image) => image.sources)])];
  const parallelism = Math.max(1, availableParallelism());
  await inParallel(
    sources.map(
      (source) => () =>
        run([...compileFlags, '-c', source, '-o', relative(packageRoot, objectPath(objects, source))]),
    ),
    parallelism,
  );
  await inParallel(
    selected.map(
      (image) => () =>
        run([
          ...linkFlags,
          ...image.sources.map((source) => relative(packageRoot, objectPath(objects, source))),
          ...sdk.map((source) => relative(packageRoot, objectPath(objects, source))),
          '-o',
          relative(packageRoot, join(out, `${image.name}.elf`)),
        ]),
    ),
    parallelism,
  );
  return selected.map((image) => join(out, `${image.name}.elf`));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const options = { only: [] };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') options.outDir = resolve(args[++i]);
    else if (args[i] === '--objects') options.objectsDir = resolve(args[++i]);
    else options.only.push(args[i]);
  }
  const version = toolchainVersion();
  if (version === undefined) {
    console.error(
      `build-images: ${compiler} not found (Debian: gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)`,
    );
    process.exit(69);
  }
  try {
    const built = await buildImages(options);
    if (options.outDir === undefined)
      writeFileSync(join(packageRoot, 'images/TOOLCHAIN.txt'), `${version}\n`);
    for (const file of built) console.log(`built ${relative(process.cwd(), file)}`);
  } catch (error) {
    console.error(`build-images: ${error.message}`);
    process.exit(1);
  }
}
