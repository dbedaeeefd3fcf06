// Linux on ftvm and on QEMU, side by side on the same files: the time from starting the emulator to
// the console's `kv: ready` (the kernel booted, eth0 up, the disk formatted, the server listening),
// the instructions ftvm executed by then, and kv requests per second against Linux's server.
// Runs alternate between the two so that a noisy machine hurts both alike.
// Run: node apps/cli/bench/linux.mjs   (uses the built packages: npm run build first)
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot, referenceQemuArgs, referenceQemuAvailable, referenceQemuBinary } from '@ftvm/guests';
import { freePort, load, startProcess } from './support.mjs';

const bin = fileURLToPath(new URL('../bin/ftvm.js', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'ftvm-linux-bench-'));
const RUNS = Number(process.env.RUNS ?? 3);
const REQUESTS = Number(process.env.REQUESTS ?? 2000);
const linux = join(packageRoot(), 'images', 'linux');
const firmware = join(linux, 'sbi.elf');
const kernel = join(linux, 'Image');

/** One boot, a load, a clean power-off; ftvm's run also reports the steps it executed. */
async function measure(onQemu, run) {
  const disk = join(directory, `${onQemu ? 'qemu' : 'ftvm'}-${run}.img`);
  writeFileSync(disk, new Uint8Array(2 << 20));
  const port = await freePort();
  const args = referenceQemuArgs(kernel, {
    bios: firmware,
    diskPath: disk,
    network: { udpForwards: [{ hostPort: port, guestPort: 5555 }] },
  });
  const machine = onQemu
    ? await startProcess(referenceQemuBinary, args, 'kv: ready', { console: true })
    : await startProcess(process.execPath, [bin, 'run', ...args, '--stats'], 'kv: ready', { console: true });
  const { requestsPerSecond } = await load(port, REQUESTS);
  machine.child.stdin.write('poweroff\n');
  await machine.exited;
  const steps = /steps=(\d+)/.exec(machine.output())?.[1];
  return {
    bootSeconds: +machine.secondsToReady.toFixed(2),
    requestsPerSecond,
    steps: steps ? Number(steps) : undefined,
  };
}

const ftvm = [];
const qemu = [];
const withQemu = referenceQemuAvailable();
for (let run = 0; run < RUNS; run++) {
  ftvm.push(await measure(false, run));
  if (withQemu) qemu.push(await measure(true, run));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = {
  runs: RUNS,
  requests: REQUESTS,
  ftvm,
  qemu,
  ftvmBootSecondsMedian: median(ftvm.map((r) => r.bootSeconds)),
  qemuBootSecondsMedian: withQemu ? median(qemu.map((r) => r.bootSeconds)) : undefined,
  ftvmRequestsPerSecondMedian: median(ftvm.map((r) => r.requestsPerSecond)),
  qemuRequestsPerSecondMedian: withQemu ? median(qemu.map((r) => r.requestsPerSecond)) : undefined,
};
console.log(JSON.stringify(results, null, 2));
writeFileSync(
  fileURLToPath(new URL('./results-linux.json', import.meta.url)),
  `${JSON.stringify(results, null, 2)}\n`,
);
