/**
 * CPU benchmark: runs bench/guest/workload.elf (a CPU-bound C program, see build.sh) on RiscvCpu
 * with the flat bus and prints guest MIPS; then runs the same image on the reference QEMU and
 * prints its wall time and the ratio. Run with `npm run bench` (bundles this file first, so the
 * CPU runs as it does from the published build).
 *
 * Figures are medians and bests of several runs, taken side by side in one process on a shared
 * machine: read the ratio, not the absolute numbers.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceQemuArgs } from '@ftvm/guests';
import { createFlatBus, RiscvCpu } from '../src/index.js';
import { parseElf32 } from '../test/support/elf.js';
import { QEMU } from '../test/support/toolchain.js';

const GUEST_DIRECTORY = join(dirname(fileURLToPath(import.meta.url)), '..', 'guest');
const WORKLOAD = join(GUEST_DIRECTORY, 'workload.elf');
const STARTUP = join(GUEST_DIRECTORY, 'startup.elf');
const REPETITIONS = Number(process.env.BENCH_REPETITIONS ?? 5);
const STEP_LIMIT = 2_000_000_000;

interface GuestRun {
  readonly steps: number;
  readonly seconds: number;
  readonly output: string;
}

function runOnRiscvCpu(image: string, compileBlocks = true): GuestRun {
  let output = '';
  let finished = false;
  let cpu: RiscvCpu | undefined;
  const bus = createFlatBus({
    ramBase: 0x8000_0000,
    ramSizeBytes: 64 * 1024 * 1024,
    mmio: [
      {
        base: 0x1000_0000,
        size: 0x100,
        read: (offset) => (offset === 5 ? 0x60 : 0),
        write: (offset, _width, value) => {
          if (offset === 0) output += String.fromCharCode(value & 0xff);
          return true;
        },
      },
      {
        base: 0x0010_0000,
        size: 0x1000,
        read: () => 0,
        write: () => {
          finished = true;
          cpu?.requestStop();
          return true;
        },
      },
    ],
  });
  const elf = parseElf32(readFileSync(image));
  for (const segment of elf.segments) bus.load(segment.address, segment.data);
  cpu = new RiscvCpu({ bus, compileBlocks });
  cpu.reset(elf.entry, 0, 0);
  const start = performance.now();
  let steps = 0;
  while (!finished && steps < STEP_LIMIT) steps += cpu.run(10_000_000).steps;
  const seconds = (performance.now() - start) / 1000;
  return { steps, seconds, output };
}

function runOnQemu(image: string): { seconds: number; output: string } {
  const start = performance.now();
  const result = spawnSync(QEMU, referenceQemuArgs(image), {
    encoding: 'latin1',
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seconds = (performance.now() - start) / 1000;
  if (result.error) throw result.error;
  return { seconds, output: result.stdout };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function format(value: number, digits = 1): string {
  return value.toFixed(digits);
}

const ours: GuestRun[] = [];
for (let i = 0; i < REPETITIONS; i++) ours.push(runOnRiscvCpu(WORKLOAD));
const steps = ours[0]?.steps ?? 0;
const oursSeconds = ours.map((run) => run.seconds);
const mips = oursSeconds.map((seconds) => steps / seconds / 1e6);
console.log(`workload: ${steps} guest instructions, output ${JSON.stringify(ours[0]?.output.trim())}`);
console.log(
  `ftvm RiscvCpu: median ${format(median(mips))} MIPS, best ${format(Math.max(...mips))} MIPS ` +
    `(median ${format(median(oursSeconds), 3)} s over ${REPETITIONS} runs)`,
);

const interpreted = Array.from({ length: Math.min(REPETITIONS, 3) }, () => runOnRiscvCpu(WORKLOAD, false));
const interpretedMips = interpreted.map((run) => run.steps / run.seconds / 1e6);
console.log(
  `ftvm RiscvCpu, interpreter only (compileBlocks: false): median ${format(median(interpretedMips))} MIPS, ` +
    `best ${format(Math.max(...interpretedMips))} MIPS`,
);

const results: Record<string, number | string | boolean> = {
  steps,
  repetitions: REPETITIONS,
  medianMips: +format(median(mips)),
  bestMips: +format(Math.max(...mips)),
  interpreterOnlyMedianMips: +format(median(interpretedMips)),
};
const hasQemu = spawnSync('sh', ['-c', `command -v ${QEMU}`], { stdio: 'ignore' }).status === 0;
if (!hasQemu) {
  console.log(`QEMU: ${QEMU} not installed, no comparison`);
} else {
  const qemuRuns = Array.from({ length: REPETITIONS }, () => runOnQemu(WORKLOAD));
  const startupRuns = Array.from({ length: REPETITIONS }, () => runOnQemu(STARTUP));
  const qemuSeconds = median(qemuRuns.map((run) => run.seconds));
  const startupSeconds = median(startupRuns.map((run) => run.seconds));
  const qemuNetSeconds = Math.max(qemuSeconds - startupSeconds, 1e-6);
  const sameOutput = qemuRuns[0]?.output === ours[0]?.output;
  console.log(
    `QEMU 7.2 (TCG): median wall ${format(qemuSeconds, 3)} s, of which start-up ${format(startupSeconds, 3)} s; ` +
      `net ${format(steps / qemuNetSeconds / 1e6)} MIPS; output ${sameOutput ? 'identical' : 'DIFFERENT'}`,
  );
  console.log(
    `ratio ftvm/QEMU time: ${format(median(oursSeconds) / qemuSeconds, 2)}x against QEMU wall time, ` +
      `${format(median(oursSeconds) / qemuNetSeconds, 2)}x against QEMU net of start-up`,
  );
  Object.assign(results, {
    qemuMedianWallSeconds: +format(qemuSeconds, 3),
    qemuStartupSeconds: +format(startupSeconds, 3),
    qemuNetMips: +format(steps / qemuNetSeconds / 1e6),
    sameOutputAsQemu: sameOutput,
    timeRatioToQemuWall: +format(median(oursSeconds) / qemuSeconds, 2),
    timeRatioToQemuNet: +format(median(oursSeconds) / qemuNetSeconds, 2),
  });
}
// The figures go next to the benchmark too (docs/benchmarks.md quotes them with the command).
writeFileSync(
  join(GUEST_DIRECTORY, '..', 'results.json'),
  `${JSON.stringify({ node: process.version, results }, null, 2)}\n`,
);
