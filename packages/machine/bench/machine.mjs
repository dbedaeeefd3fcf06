// Machine benchmarks on bench.elf, side by side in one run: standalone vs record vs replay MIPS,
// ftvm vs QEMU wall time, snapshot time and size for a 64 MiB guest, host memory.
// Run: npm run bench -w @ftvm/machine   (uses the built packages: npm run build first)
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { imagePath, referenceQemuArgs, referenceQemuAvailable, referenceQemuBinary } from '@ftvm/guests';
import { encodeSnapshot, Machine, MemoryLog } from '../dist/index.js';
import { createNodeHost } from '../dist/node/index.js';

const image = new Uint8Array(readFileSync(imagePath('bench')));
const host = createNodeHost();

function run(mode, log) {
  const machine = new Machine({
    mode,
    clock: 'host',
    hostClock: host,
    log: mode === 'record' ? log : undefined,
    replayLog: mode === 'replay' ? log.reader() : undefined,
    checkpointIntervalSteps: mode === 'record' ? 10_000_000 : 0,
    onOutput: () => {},
  });
  machine.loadImage(image, 'bench.elf');
  const start = process.hrtime.bigint();
  let steps = 0;
  while (!machine.isStopped) {
    const outcome = machine.runSlice(2_000_000);
    steps += outcome.steps;
    if (outcome.end === 'waiting') throw new Error('bench.elf should not idle');
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (machine.exitStatus !== 0) throw new Error(`bench.elf exited ${machine.exitStatus}`);
  return { steps, seconds, mips: steps / seconds / 1e6, machine };
}

const results = {};
const live = run('standalone');
results.standaloneMips = +live.mips.toFixed(1);
const log = new MemoryLog();
const recorded = run('record', log);
log.close();
results.recordMips = +recorded.mips.toFixed(1);
results.recordOverheadPercent = +((live.mips / recorded.mips - 1) * 100).toFixed(1);
results.logEntries = log.entries.length;
const replayed = run('replay', log);
results.replayMips = +replayed.mips.toFixed(1);
results.replayToLiveRatio = +(replayed.mips / live.mips).toFixed(2);
results.steps = live.steps;

if (referenceQemuAvailable()) {
  const args = referenceQemuArgs('bench');
  const start = process.hrtime.bigint();
  const qemu = spawnSync(referenceQemuBinary, args, { encoding: 'utf8' });

  const qemuSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  results.qemuSeconds = +qemuSeconds.toFixed(2);
  results.ftvmSeconds = +live.seconds.toFixed(2);
  results.ftvmToQemuSpeedRatio = +(qemuSeconds / live.seconds).toFixed(2);
  results.qemuStatus = qemu.status;
}

// Snapshot of a 64 MiB guest that has touched all of its RAM.
const full = new Machine({ clock: 'icount', onOutput: () => {} });
full.loadImage(image, 'bench.elf');
full.ram.bytes.fill(0xa5, 0, full.ram.size - 4 * 2 ** 20); // as if the guest had used its memory
let start = process.hrtime.bigint();
const snapshot = full.saveSnapshot();
const file = encodeSnapshot(snapshot);
results.snapshotMs = +(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1);
results.snapshotMiB = +(file.length / 2 ** 20).toFixed(1);
start = process.hrtime.bigint();
const restored = new Machine({ clock: 'icount', onOutput: () => {} });
restored.restoreSnapshot(snapshot);
results.restoreMs = +(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1);
global.gc?.();
results.hostRssMiB = Math.round(process.memoryUsage().rss / 2 ** 20);

for (const [name, value] of Object.entries(results)) console.log(`${name.padEnd(24)} ${value}`);
writeFileSync(
  new URL('./results.json', import.meta.url),
  `${JSON.stringify({ node: process.version, results }, null, 2)}\n`,
);
