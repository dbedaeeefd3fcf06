#!/usr/bin/env node
// Rebuilds the project's SBI firmware (images/linux/sbi.elf, from linux/sbi/) and its S-mode test
// payload (images/linux/sbi-test.elf, from linux/sbi/test/), byte for byte reproducibly.
//
// Usage: node scripts/build-sbi.mjs [--out DIR] [--objects DIR]
//   --out DIR      where sbi.elf and sbi-test.elf go (default: images/linux/)
//   --objects DIR  where object files go (default: build/sbi-objects)
//
// Reproducible as build-images.mjs is: gcc runs from the package root on relative paths,
// -ffile-prefix-map maps the root away anyway, no debug info, -Wl,--build-id=none, fixed flags and
// link order, and nothing reads the time. Both programs are freestanding (no C library): the
// firmware must not depend on anything it does not carry, and the payload is the firmware's test.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const compiler = process.env.FTVM_GUEST_CC ?? 'riscv64-unknown-elf-gcc';

/** The two programs: their sources in link order, and their linker scripts. */
export const sbiPrograms = [
  {
    name: 'sbi',
    sources: [
      'linux/sbi/entry.S',
      'linux/sbi/boot.c',
      'linux/sbi/console.c',
      'linux/sbi/ecall.c',
      'linux/sbi/fdt.c',
      'linux/sbi/lib.c',
      'linux/sbi/trap.c',
    ],
    linkerScript: 'linux/sbi/sbi.ld',
  },
  {
    name: 'sbi-test',
    sources: ['linux/sbi/test/start.S', 'linux/sbi/test/payload.c'],
    linkerScript: 'linux/sbi/test/payload.ld',
  },
];

const targetFlags = ['-march=rv32imac', '-misa-spec=2.2', '-mabi=ilp32', '-mcmodel=medany'];
const compileFlags = [
  ...targetFlags,
  '-std=gnu11',
  '-O2',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-ffreestanding',
  // Keeps memcpy-like loops loops: lib.c's memcpy must not become a call to memcpy.
  '-fno-tree-loop-distribute-patterns',
  '-ffunction-sections',
  '-fdata-sections',
  '-fno-common',
  '-fno-ident',
  '-fno-asynchronous-unwind-tables',
  `-ffile-prefix-map=${packageRoot}=.`,
];
const linkFlags = [
  ...targetFlags,
  '-nostdlib',
  '-nostartfiles',
  '-Wl,--gc-sections',
  '-Wl,--build-id=none',
  '-Wl,--no-warn-rwx-segments',
  '-Wl,--strip-debug',
];

function run(args) {
  const result = spawnSync(compiler, args, { cwd: packageRoot, encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${compiler} ${args.join(' ')} exited with ${result.status}\n${result.stderr}`);
  }
  if (result.stderr !== '') process.stderr.write(result.stderr);
}

function objectPath(objectsDir, source) {
  return relative(packageRoot, join(objectsDir, `${source.replaceAll('/', '_')}.o`));
}

export function toolchainVersion() {
  const result = spawnSync(compiler, ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) return undefined;
  return result.stdout.split('\n')[0];
}

/** Builds both programs; returns the paths of the ELF files. */
export function buildSbi({ outDir, objectsDir } = {}) {
  const out = resolve(packageRoot, outDir ?? 'images/linux');
  const objects = resolve(packageRoot, objectsDir ?? 'build/sbi-objects');
  mkdirSync(out, { recursive: true });
  mkdirSync(objects, { recursive: true });
  const built = [];
  for (const program of sbiPrograms) {
    for (const source of program.sources) {
      run([...compileFlags, `-I${dirname(source)}`, '-c', source, '-o', objectPath(objects, source)]);
    }
    const elf = join(out, `${program.name}.elf`);
    run([
      ...linkFlags,
      `-T${program.linkerScript}`,
      ...program.sources.map((source) => objectPath(objects, source)),
      '-lgcc',
      '-o',
      relative(packageRoot, elf),
    ]);
    built.push(elf);
  }
  return built;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const options = {};
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') options.outDir = resolve(args[++i]);
    else if (args[i] === '--objects') options.objectsDir = resolve(args[++i]);
    else {
      console.error(`build-sbi: unknown argument ${args[i]}`);
      process.exit(64);
    }
  }
  if (toolchainVersion() === undefined) {
    console.error(`build-sbi: ${compiler} not found (Debian: gcc-riscv64-unknown-elf)`);
    process.exit(69);
  }
  try {
    for (const file of buildSbi(options)) console.log(`built ${relative(process.cwd(), file)}`);
  } catch (error) {
    console.error(`build-sbi: ${error.message}`);
    process.exit(1);
  }
}
