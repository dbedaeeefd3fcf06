#!/usr/bin/env node
// Runs the RISC-V architectural tests (riscv-non-isa/riscv-arch-test) on ftvm and on QEMU, side by
// side, and compares their signatures. Builds every rv32i_m test of the extensions ftvm implements
// (I, M, A, C, Zicsr, Zifencei, and the privilege tests) with Debian's riscv64-unknown-elf-gcc and
// this platform's macros (scripts/riscv-arch-test/model_test.h: the signature is printed out of
// the UART, then the board powers off), each with the definitions its RVTEST_CASE names, as the
// suite's framework (riscof) does. Then runs each image with `ftvm run` and with the reference
// QEMU command line (docs/platform.md: QEMU's CPU cut down to ftvm's), and compares what they
// print. Tests that need an extension ftvm does not implement (Zcb, Zbb, ...) are skipped.
// The suite is not part of this repository. Usage, after `npm run build`:
//   node scripts/riscv-arch-test.mjs /path/to/riscv-arch-test
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  referenceQemuAvailable,
  referenceQemuBinary,
  runOnReferenceQemu,
} from '../packages/guests/dist/index.js';
import { CONFORMANCE_GCC, CONFORMANCE_GCC_FLAGS } from './conformance-gcc.mjs';

/** The suite's directories of ftvm's extensions. */
const SUITES = ['I', 'M', 'A', 'C', 'Zifencei', 'privilege'];
/** What an RVTEST_ISA string may name: ftvm's RV32IMAC with Zicsr and Zifencei. */
const IMPLEMENTED = new Set(['I', 'M', 'A', 'C', 'Zicsr', 'Zifencei', 'Zca']);
const RUN_TIMEOUT_MS = 60_000;

const source = process.argv[2];
const suiteRoot = source && join(source, 'riscv-test-suite');
if (!suiteRoot || !existsSync(join(suiteRoot, 'env', 'arch_test.h'))) {
  console.error('usage: node scripts/riscv-arch-test.mjs /path/to/riscv-arch-test');
  process.exit(64);
}
if (!referenceQemuAvailable()) {
  console.error(`${referenceQemuBinary} is not installed (Debian: qemu-system-misc)`);
  process.exit(69);
}
const model = fileURLToPath(new URL('./riscv-arch-test/', import.meta.url));
const ftvm = fileURLToPath(new URL('../apps/cli/bin/ftvm.js', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'ftvm-riscv-arch-test-'));

/** The extensions an RVTEST_ISA string names ("RV32IM_Zca_Zcb": I, M, Zca, Zcb). */
function extensionsOf(isa) {
  const [base, ...named] = isa.replace(/^RV32/i, '').split('_');
  return [...base.toUpperCase()].concat(named);
}

let same = 0;
let skipped = 0;
const failures = [];
for (const suite of SUITES) {
  const directory = join(suiteRoot, 'rv32i_m', suite, 'src');
  for (const file of readdirSync(directory)
    .filter((name) => name.endsWith('.S'))
    .sort()) {
    const name = `${suite}/${basename(file, '.S')}`;
    const text = readFileSync(join(directory, file), 'utf8');
    const isa = /RVTEST_ISA\("([^"]+)"\)/.exec(text)?.[1] ?? 'RV32I';
    const missing = extensionsOf(isa).filter((extension) => !IMPLEMENTED.has(extension));
    if (missing.length > 0) {
      skipped++;
      console.log(`skip ${name}: needs ${missing.join(', ')}`);
      continue;
    }
    // The definitions of its first test case ("def rvtest_mtrap_routine=True; def TEST_CASE_1=True").
    const testCase = /RVTEST_CASE\(\s*\d+\s*,\s*"([^"]*)"/.exec(text)?.[1] ?? '';
    const defines = [...testCase.matchAll(/def\s+(\w+)\s*=\s*(\w+)/g)].map(
      ([, key, value]) => `-D${key}=${value}`,
    );
    const elf = join(out, `${name.replace('/', '-')}.elf`);
    const built = spawnSync(CONFORMANCE_GCC, [
      ...CONFORMANCE_GCC_FLAGS,
      '-DXLEN=32',
      ...defines,
      `-I${join(suiteRoot, 'env')}`,
      `-I${model}`,
      `-T${join(model, 'link.ld')}`,
      join(directory, file),
      '-o',
      elf,
    ]);
    if (built.status !== 0) {
      failures.push(`${name}: does not build: ${built.stderr.toString().split('\n').slice(0, 3).join(' ')}`);
      continue;
    }
    const qemu = await runOnReferenceQemu(elf, { timeoutMs: RUN_TIMEOUT_MS });
    const ours = spawnSync(process.execPath, [ftvm, 'run', '--kernel', elf], {
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const expected = qemu.output.split('\n');
    const words = expected.filter((line) => /^[0-9a-f]{8}$/.test(line)).length;
    if (qemu.exit.status !== 0 || words === 0) {
      failures.push(`${name}: QEMU printed no signature (exit ${qemu.exit.status ?? qemu.exit.signal})`);
    } else if (ours.status !== 0 || ours.stdout !== qemu.output) {
      const ourLines = ours.stdout.split('\n');
      const at = expected.findIndex((line, index) => line !== ourLines[index]);
      failures.push(
        `${name}: ftvm (exit ${ours.status ?? ours.signal}) differs from QEMU at signature word ${at}: ${ourLines[at] ?? 'nothing'} against ${expected[at]}${ours.stderr ? ` (${ours.stderr.trim().split('\n')[0]})` : ''}`,
      );
    } else {
      same++;
    }
  }
}
for (const failure of failures) console.log(`FAIL ${failure}`);
console.log(
  `riscv-arch-test: ${same + failures.length} tests, ${same} with QEMU's signature, ${failures.length} failed, ${skipped} skipped (extensions ftvm does not implement)`,
);
process.exit(failures.length === 0 ? 0 : 1);
