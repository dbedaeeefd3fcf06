#!/usr/bin/env node
// Records the register scripts of scripts.json on QEMU 7.2 and writes the reads to
// ../src/fixtures/qemu-register-transcripts.json, which the tests replay on the models.
// Needs riscv64-unknown-elf-gcc and qemu-system-riscv32 (scripts/setup.mjs installs them). Run:
//   node qemu-reference/record.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The reference command line: the guests package's (run `npm run build` first).
import { referenceQemuArgs } from '@ftvm/guests';

const here = dirname(fileURLToPath(import.meta.url));
const kinds = { r8: 0, r16: 1, r32: 2, w8: 3, w16: 4, w32: 5, mip: 6 };

const input = JSON.parse(readFileSync(join(here, 'scripts.json'), 'utf8'));
const qemuVersion = execFileSync('qemu-system-riscv32', ['--version'], { encoding: 'utf8' }).split('\n')[0];
const work = mkdtempSync(join(tmpdir(), 'ftvm-qemu-reference-'));
const transcripts = [];
try {
  for (const script of input.scripts) {
    const ops = script.ops
      .filter((op) => Array.isArray(op))
      .map(([kind, address, value]) => {
        if (!(kind in kinds)) throw new Error(`${script.name}: unknown op kind ${kind}`);
        return [kind, kind === 'mip' ? 0 : Number(address), value === undefined ? 0 : Number(value)];
      });
    const table = ops.map(
      ([kind, address, value]) => `  {${kinds[kind]}, 0x${address.toString(16)}u, 0x${value.toString(16)}u},`,
    );
    writeFileSync(join(work, 'script.h'), `static const struct op script[] = {\n${table.join('\n')}\n};\n`);
    const image = join(work, 'runner.elf');
    execFileSync('riscv64-unknown-elf-gcc', [
      '-march=rv32imac_zicsr',
      '-mabi=ilp32',
      '-O1',
      '-nostdlib',
      '-nostartfiles',
      '-ffreestanding',
      '-Wl,--no-warn-rwx-segments',
      '-I',
      work,
      '-T',
      join(here, 'link.ld'),
      join(here, 'start.S'),
      join(here, 'runner.c'),
      '-o',
      image,
    ]);
    const output = execFileSync('qemu-system-riscv32', referenceQemuArgs(image), {
      encoding: 'latin1',
      timeout: 20_000,
    });
    if (!/\nE\r?\n/.test(output)) throw new Error(`${script.name}: runner did not finish:\n${output}`);
    const reads = [];
    for (const line of output.split(/\r?\n/)) {
      const fault = /^F (\d+) ([0-9a-f]{8})$/.exec(line);
      if (fault)
        throw new Error(
          `${script.name}: op ${fault[1]} ${JSON.stringify(ops[fault[1]])} trapped, mcause 0x${fault[2]}`,
        );
      const read = /^R (\d+) ([0-9a-f]{8})$/.exec(line);
      if (read) reads.push([Number(read[1]), Number.parseInt(read[2], 16)]);
    }
    transcripts.push({ name: script.name, ops, reads });
    console.log(`${script.name}: ${ops.length} ops, ${reads.length} reads`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const fixture = {
  recordedWith: `${qemuVersion}, the reference command line (docs/platform.md); qemu-reference/record.mjs`,
  transcripts,
};
writeFileSync(
  join(here, '../src/fixtures/qemu-register-transcripts.json'),
  `${JSON.stringify(fixture, null, 1)}\n`,
);
