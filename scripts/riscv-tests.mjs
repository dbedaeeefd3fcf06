#!/usr/bin/env node
// Runs the official RISC-V ISA tests (riscv-software-src/riscv-tests, with its env submodule
// checked out) on ftvm's machine: builds the rv32 ui, um, ua, uc, mi and si tests of the "p"
// environment with Debian's riscv64-unknown-elf-gcc, runs each with run slices of several sizes
// (so compiled code is cut at every kind of boundary), and reads the result the tests write to
// their `tohost` word (1: pass; (n << 1) | 1: test n failed).
// The sources are not part of this repository. Usage, after `npm run build`:
//   node scripts/riscv-tests.mjs /path/to/riscv-tests
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Machine } from '../packages/machine/dist/index.js';
import { CONFORMANCE_GCC, CONFORMANCE_GCC_FLAGS } from './conformance-gcc.mjs';

const SUITES = ['rv32ui', 'rv32um', 'rv32ua', 'rv32uc', 'rv32mi', 'rv32si'];
const SLICE_STEPS = [3, 97, 1000, 100_000];
const STEP_LIMIT = 5_000_000;

const source = process.argv[2];
if (
  !source ||
  !existsSync(join(source, 'isa', 'rv32ui')) ||
  !existsSync(join(source, 'env', 'p', 'link.ld'))
) {
  console.error('usage: node scripts/riscv-tests.mjs /path/to/riscv-tests  (with its env/ submodule)');
  process.exit(64);
}
const out = mkdtempSync(join(tmpdir(), 'ftvm-riscv-tests-'));
const tests = [];
for (const suite of SUITES) {
  for (const file of readdirSync(join(source, 'isa', suite))
    .filter((name) => name.endsWith('.S'))
    .sort()) {
    const name = `${suite}-p-${basename(file, '.S')}`;
    const elf = join(out, name);
    const built = spawnSync(CONFORMANCE_GCC, [
      ...CONFORMANCE_GCC_FLAGS,
      `-I${join(source, 'env', 'p')}`,
      `-I${join(source, 'isa', 'macros', 'scalar')}`,
      `-T${join(source, 'env', 'p', 'link.ld')}`,
      join(source, 'isa', suite, file),
      '-o',
      elf,
    ]);
    if (built.status !== 0) {
      console.error(`${name}: does not build: ${built.stderr}`);
      process.exit(1);
    }
    tests.push({ name, elf });
  }
}

/** The address of the `tohost` symbol. */
function tohostOf(elf) {
  const symbols = execFileSync('riscv64-unknown-elf-nm', [elf], { encoding: 'utf8' });
  const line = symbols.split('\n').find((each) => each.endsWith(' tohost'));
  if (!line) throw new Error(`${elf}: no tohost symbol`);
  return Number.parseInt(line.split(' ')[0], 16);
}

let failed = 0;
for (const { name, elf } of tests) {
  const tohost = tohostOf(elf);
  for (const sliceSteps of SLICE_STEPS) {
    const machine = new Machine({ clock: 'icount' });
    machine.loadImage(new Uint8Array(readFileSync(elf)), name);
    const ram = new DataView(machine.ram.bytes.buffer, machine.ram.bytes.byteOffset);
    let result = 0;
    for (let steps = 0; steps < STEP_LIMIT && result === 0 && !machine.isStopped; ) {
      steps += machine.runSlice(sliceSteps).steps || 1;
      result = ram.getUint32(tohost - machine.ram.base, true);
    }
    if (result !== 1) {
      failed++;
      console.log(
        `FAIL ${name} (slices of ${sliceSteps} steps): ${result === 0 ? 'no result' : `test ${result >>> 1}`}`,
      );
    }
  }
}
console.log(`riscv-tests: ${tests.length} tests × ${SLICE_STEPS.length} slice sizes, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
