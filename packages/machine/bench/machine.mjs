// Machine benchmarks on bench.elf, side by side in one run: the bare CPU vs the machine, standalone
// vs record vs replay (medians of interleaved rounds), ftvm vs QEMU wall time, snapshot time and
// size for a 64 MiB guest, host memory.
// Run: npm run bench -w @ftvm/machine   (uses the built packages: npm run build first)
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createFlatBus, RiscvCpu } from '@ftvm/cpu-riscv';
import { imagePath, referenceQemuArgs, referenceQemuAvailable, referenceQemuBinary } from '@ftvm/guests';
import { encodeEntries } from '@ftvm/log-codec';
import { encodeSnapshot, Machine, MemoryLog, parseElf, runMachine } from '../dist/index.js';
import { createNodeHost } from '../dist/node/index.js';

const imageBytes = new Uint8Array(readFileSync(imagePath('bench')));
const host = createNodeHost();

function run(mode, log, checkpoints = true) {
  const machine = new Machine({
    mode,
    clock: 'host',
    hostClock: host,
    log: mode === 'record' ? log : undefined,
    replayLog: mode === 'replay' ? log.reader() : undefined,
    checkpointIntervalSteps: mode === 'record' && checkpoints ? 10_000_000 : 0,
    onOutput: () => {},
  });
  machine.loadImage(imageBytes, 'bench.elf');
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

/** The same image on the CPU alone: a flat bus with RAM and stubs for the UART, CLINT and finisher. */
function runBare() {
  let exitStatus;
  let cpu;
  const bus = createFlatBus({
    ramBase: 0x8000_0000,
    ramSizeBytes: 64 * 2 ** 20,
    mmio: [
      { base: 0x1000_0000, size: 0x100, read: (offset) => (offset === 5 ? 0x60 : 0), write: () => true },
      { base: 0x0200_0000, size: 0x10000, read: () => 0, write: () => true },
      {
        base: 0x0010_0000,
        size: 0x1000,
        read: () => 0,
        write: (_offset, _width, value) => {
          exitStatus = (value & 0xffff) === 0x5555 ? 0 : value >>> 16;
          cpu.requestStop();
          return true;
        },
      },
    ],
  });
  const image = parseElf(imageBytes, bus.ramRegion);
  for (const segment of image.segments) bus.load(segment.address, segment.bytes);
  cpu = new RiscvCpu({ bus, readTime: () => 0 });
  cpu.reset(image.entry, 0, 0);
  const start = process.hrtime.bigint();
  let steps = 0;
  while (exitStatus === undefined) steps += cpu.run(2_000_000).steps;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (exitStatus !== 0) throw new Error(`bench.elf exited ${exitStatus} on the bare CPU`);
  return { steps, seconds, mips: steps / seconds / 1e6 };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const mips = { bare: [], standalone: [], record: [], recordWithoutCheckpoints: [], replay: [] };
let steps = 0;
let logEntries = 0;
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved, so the machine's load drifts over every configuration alike.
  mips.bare.push(runBare().mips);
  const live = run('standalone');
  mips.standalone.push(live.mips);
  steps = live.steps;
  const log = new MemoryLog();
  mips.record.push(run('record', log).mips);
  log.close();
  logEntries = log.entries.length;
  mips.replay.push(run('replay', log).mips);
  mips.recordWithoutCheckpoints.push(run('record', new MemoryLog(), false).mips);
}
const results = {
  rounds: ROUNDS,
  steps,
  bareCpuMips: +median(mips.bare).toFixed(1),
  standaloneMips: +median(mips.standalone).toFixed(1),
  machineToBareCpuRatio: +(median(mips.standalone) / median(mips.bare)).toFixed(2),
  recordMips: +median(mips.record).toFixed(1),
  recordOverheadPercent: +((median(mips.standalone) / median(mips.record) - 1) * 100).toFixed(1),
  checkpointOverheadPercent: +(
    (median(mips.recordWithoutCheckpoints) / median(mips.record) - 1) *
    100
  ).toFixed(1),
  replayMips: +median(mips.replay).toFixed(1),
  replayToLiveRatio: +(median(mips.replay) / median(mips.standalone)).toFixed(2),
  logEntries,
};

if (referenceQemuAvailable()) {
  const args = referenceQemuArgs('bench');
  const start = process.hrtime.bigint();
  const qemu = spawnSync(referenceQemuBinary, args, { encoding: 'utf8' });
  const qemuSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (qemu.status !== 0) throw new Error(`bench.elf exited ${qemu.status} on QEMU`);
  results.qemuSeconds = +qemuSeconds.toFixed(2);
  results.ftvmSeconds = +(steps / median(mips.standalone) / 1e6).toFixed(2);
  results.ftvmTimeToQemuTimeRatio = +(results.ftvmSeconds / qemuSeconds).toFixed(2);
  // CoreMark-style figures: the image's iterations (it prints how many) per second of wall time.
  const iterations = Number(/bench: (\d+) iterations/.exec(qemu.stdout)?.[1] ?? Number.NaN);
  results.qemuIterationsPerSecond = +(iterations / qemuSeconds).toFixed(1);
  results.ftvmIterationsPerSecond = +(iterations / results.ftvmSeconds).toFixed(1);
}

// The log rate of a guest that mostly sleeps in wfi on timer interrupts (clock.elf), with the host
// clock and the real driver, encoded as the logging channel and record files carry it.
{
  const log = new MemoryLog();
  const machine = new Machine({ mode: 'record', log, clock: 'host', hostClock: host, onOutput: () => {} });
  machine.loadImage(new Uint8Array(readFileSync(imagePath('clock'))), 'clock.elf');
  const start = process.hrtime.bigint();
  await runMachine(machine, host);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const bytes = encodeEntries(log.entries).length;
  results.idleGuestLogEntries = log.entries.length;
  results.idleGuestLogBytesPerSecond = Math.round(bytes / seconds);
}

// Snapshot of a 64 MiB guest that has touched all of its RAM.
const full = new Machine({ clock: 'icount', onOutput: () => {} });
full.loadImage(imageBytes, 'bench.elf');
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
// Host memory for one 64 MiB guest that writes every page of its RAM, in a process of its own.
{
  const touchAllRam = [
    0x801002b7, // lui  t0, 0x80100
    0x83e00337, // lui  t1, 0x83e00        (below the device tree)
    0x0052a023, // sw   t0, 0(t0)
    0x04028293, // addi t0, t0, 64
    0xfe62ece3, // bltu t0, t1, -8
    0x001002b7,
    0x00005337,
    0x55530313,
    0x0062a023,
    0x0000006f, // power off: pass
  ];
  const child = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { Machine } from ${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)};
       const words = ${JSON.stringify(touchAllRam)};
       const image = new Uint8Array(words.length * 4);
       words.forEach((word, i) => new DataView(image.buffer).setUint32(i * 4, word, true));
       const machine = new Machine({ clock: 'icount', onOutput: () => {} });
       machine.loadImage(image);
       while (!machine.isStopped) machine.runSlice(1_000_000);
       console.log(JSON.stringify({ rssBytes: process.memoryUsage().rss, exit: machine.exitStatus }));`,
    ],
    { encoding: 'utf8' },
  );
  // Resident memory at the end, with every guest page written. (Not maxRSS: on Linux a child's
  // maxRSS starts from its parent's at fork, and this parent is large.)
  const { rssBytes, exit } = JSON.parse(child.stdout);
  if (exit !== 0) throw new Error('the RAM-touching guest failed');
  results.hostRssMiBFor64MiBGuest = Math.round(rssBytes / 2 ** 20);
}

for (const [name, value] of Object.entries(results)) console.log(`${name.padEnd(24)} ${value}`);
writeFileSync(
  new URL('./results.json', import.meta.url),
  `${JSON.stringify({ node: process.version, results }, null, 2)}\n`,
);
