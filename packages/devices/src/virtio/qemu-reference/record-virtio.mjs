#!/usr/bin/env node
// Records the virtio register scripts of virtio-scripts.json on QEMU 7.2 and writes what each read
// returned to ../fixtures/qemu-virtio-transcripts.json; src/virtio/qemu-virtio.test.ts replays them
// on the models. It reuses the register-script runner of packages/devices/qemu-reference/.
//
// The reference command line (docs/platform.md) has no virtio device, and QEMU 7.2 makes its virtio-mmio slots
// legacy (Version 1) unless told otherwise. So the "empty slot" script runs on the exact command
// line; the device scripts add `-global virtio-mmio.force-legacy=false` (a modern transport, as
// ftvm has) and one `-device`, which QEMU puts in the last slot, 0x1000_8000.
//   node src/virtio/qemu-reference/record-virtio.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
// The reference command line: the guests package's (run `npm run build` first).
import { referenceQemuArgs } from '@ftvm/guests';

const here = dirname(fileURLToPath(import.meta.url));
const runner = join(here, '../../../qemu-reference');
const kinds = { r8: 0, r16: 1, r32: 2, w8: 3, w16: 4, w32: 5 };

const input = JSON.parse(readFileSync(join(here, 'virtio-scripts.json'), 'utf8'));
const qemuVersion = execFileSync('qemu-system-riscv32', ['--version'], { encoding: 'utf8' }).split('\n')[0];
const work = mkdtempSync(join(tmpdir(), 'ftvm-qemu-virtio-'));
const disk = join(work, 'disk.img');
writeFileSync(disk, new Uint8Array(input.diskSectors * 512));
// Each script's device, as the reference command line adds it (modern virtio-mmio included).
const deviceOptions = {
  none: {},
  rng: { rng: true },
  blk: { diskPath: disk },
  net: { network: { udpForwards: [] } },
};
const transcripts = [];
try {
  for (const script of input.scripts) {
    const base = Number(script.base);
    const ops = script.ops.map(([kind, offset, value]) => [
      kind,
      Number(offset),
      value === undefined ? 0 : Number(value),
    ]);
    const table = ops.map(
      ([kind, offset, value]) =>
        `  {${kinds[kind]}, 0x${(base + offset).toString(16)}u, 0x${(value >>> 0).toString(16)}u},`,
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
      join(runner, 'link.ld'),
      join(runner, 'start.S'),
      join(runner, 'runner.c'),
      '-o',
      image,
    ]);
    const output = execFileSync(
      'qemu-system-riscv32',
      referenceQemuArgs(image, deviceOptions[script.device]),
      { encoding: 'latin1', timeout: 20_000 },
    );
    if (!/\nE\r?\n/.test(output)) throw new Error(`${script.name}: runner did not finish:\n${output}`);
    const reads = [];
    for (const line of output.split(/\r?\n/)) {
      const fault = /^F (\d+) ([0-9a-f]{8})$/.exec(line);
      if (fault) throw new Error(`${script.name}: op ${fault[1]} trapped, mcause 0x${fault[2]}`);
      const read = /^R (\d+) ([0-9a-f]{8})$/.exec(line);
      if (read) reads.push([Number(read[1]), Number.parseInt(read[2], 16)]);
    }
    transcripts.push({ name: script.name, reads });
    console.log(`${script.name}: ${ops.length} ops, ${reads.length} reads`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
writeFileSync(
  join(here, '../fixtures/qemu-virtio-transcripts.json'),
  `${JSON.stringify({ recordedWith: `${qemuVersion}; src/virtio/qemu-reference/record-virtio.mjs`, transcripts }, null, 1)}\n`,
);
