#!/usr/bin/env node
// Installs the Debian packages ftvm's tests use when they are missing: the guest toolchain
// (gcc + picolibc for riscv64-unknown-elf), QEMU (the reference for guest behaviour), dtc,
// etcd (the arbiter's etcd backend) and Chromium (the demo report's test opens the report in it).
// Idempotent: does nothing when everything is present. Runs `apt-get update` at most once.
// Without root (or apt), it says what is missing; the tests that need it then skip and say why.
// Set FTVM_SKIP_SETUP=1 to skip this step entirely.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian package → how we tell it is installed. */
const requirements = [
  { debianPackage: 'gcc-riscv64-unknown-elf', command: 'riscv64-unknown-elf-gcc' },
  {
    debianPackage: 'picolibc-riscv64-unknown-elf',
    file: '/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs',
  },
  { debianPackage: 'qemu-system-misc', command: 'qemu-system-riscv32' },
  { debianPackage: 'device-tree-compiler', command: 'dtc' },
  { debianPackage: 'etcd-server', command: 'etcd' },
  { debianPackage: 'chromium', command: 'chromium' },
];

function commandExists(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function isPresent(requirement) {
  if (requirement.command) return commandExists(requirement.command);
  return existsSync(requirement.file);
}

function run(command, args) {
  console.log(`setup: ${command} ${args.join(' ')}`);
  const result = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return result.status === 0;
}

if (process.env.FTVM_SKIP_SETUP === '1') process.exit(0);

const missing = requirements.filter((requirement) => !isPresent(requirement));
if (missing.length === 0) process.exit(0);

const names = missing.map((requirement) => requirement.debianPackage);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!commandExists('apt-get')) {
  console.warn(
    `setup: apt-get not found; install ${names.join(', ')} by hand. Tests that need them will skip.`,
  );
  process.exit(0);
}
const prefix = isRoot ? [] : commandExists('sudo') ? ['sudo', '-n'] : null;
if (prefix === null) {
  console.warn(
    `setup: not root and no sudo; install ${names.join(', ')} by hand. Tests that need them will skip.`,
  );
  process.exit(0);
}
const apt = (args) =>
  prefix.length ? run(prefix[0], [...prefix.slice(1), 'apt-get', ...args]) : run('apt-get', args);
const installArgs = ['install', '-y', '-q', '--no-install-recommends', ...names];
if (!apt(installArgs)) {
  // The package lists may be missing or stale on a fresh machine: update once and try again.
  if (!apt(['update', '-q']) || !apt(installArgs)) {
    console.warn(`setup: could not install ${names.join(', ')}. Tests that need them will skip.`);
    process.exit(0);
  }
}
const stillMissing = requirements.filter((requirement) => !isPresent(requirement));
if (stillMissing.length > 0) {
  console.warn(`setup: still missing: ${stillMissing.map((r) => r.debianPackage).join(', ')}`);
}
