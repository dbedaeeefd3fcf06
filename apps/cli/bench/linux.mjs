// Linux on ftvm and on QEMU, side by side on the same files: the time from starting the emulator to
// the console's `kv: ready` (the kernel booted, eth0 up, the disk formatted, the server listening),
// the instructions ftvm executed by then, and kv requests per second against Linux's server.
// Runs alternate between the two so that a noisy machine hurts both alike.
// Run: node apps/cli/bench/linux.mjs   (uses the built packages: npm run build first)
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageRoot, referenceQemuArgs, referenceQemuAvailable, referenceQemuBinary } from '@ftvm/guests';

const bin = fileURLToPath(new URL('../bin/ftvm.js', import.meta.url));
const directory = mkdtempSync(join(tmpdir(), 'ftvm-linux-bench-'));
const RUNS = Number(process.env.RUNS ?? 3);
const REQUESTS = Number(process.env.REQUESTS ?? 2000);
const linux = join(packageRoot(), 'images', 'linux');
const firmware = join(linux, 'sbi.elf');
const kernel = join(linux, 'Image');

async function freePort() {
  const socket = createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Starts a machine and resolves with the seconds until its console says `kv: ready`. */
function boot(command, args) {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    const check = setInterval(() => {
      if (output.includes('kv: ready')) {
        clearInterval(check);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        resolve({ seconds, child, exited, output: () => output });
      } else if (child.exitCode !== null) {
        clearInterval(check);
        reject(new Error(`${command} exited: ${output}`));
      }
    }, 5);
  });
}

/** Closed loop, 4 clients, PUT and INCR alternating; requests per second. */
async function load(port, requests) {
  let sent = 0;
  const started = process.hrtime.bigint();
  const worker = async (index) => {
    const socket = createSocket('udp4');
    await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
    let pending;
    socket.on('message', () => pending?.());
    let id = 0;
    while (sent < requests) {
      sent++;
      id++;
      const request = id % 2 === 0 ? `${id} INCR counter${index}` : `${id} PUT key${index} value${id}`;
      for (;;) {
        const answered = new Promise((resolve) => {
          pending = () => resolve(true);
          setTimeout(() => resolve(false), 1000);
        });
        socket.send(request, port, '127.0.0.1');
        if (await answered) break;
      }
    }
    socket.close();
  };
  await Promise.all([0, 1, 2, 3].map(worker));
  return Math.round(requests / (Number(process.hrtime.bigint() - started) / 1e9));
}

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
    ? await boot(referenceQemuBinary, args)
    : await boot(process.execPath, [bin, 'run', ...args, '--stats']);
  const requestsPerSecond = await load(port, REQUESTS);
  machine.child.stdin.write('poweroff\n');
  await machine.exited;
  const steps = /steps=(\d+)/.exec(machine.output())?.[1];
  return {
    bootSeconds: +machine.seconds.toFixed(2),
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
