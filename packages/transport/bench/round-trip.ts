// What one message between two threads costs on this machine: a worker thread and the main thread
// send a 40-byte message back and forth, over loopback TCP (Nagle off, as the logging channel runs)
// and over a MessagePort. Every exchange wakes a sleeping thread, as a log message and its
// acknowledgement do. Figures: wall time and the process's CPU per round trip.
//
//   npm run bench -w @ftvm/transport        (FTVM_BENCH_ROUND_TRIPS=N, default 20,000)
//
// Prints each figure and writes them to packages/transport/bench/results.json.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';

const ROUND_TRIPS = Number(process.env.FTVM_BENCH_ROUND_TRIPS ?? 20_000);

type Kind = 'tcp' | 'message-port';

/**
 * The worker's side (plain JavaScript, so the worker needs no TypeScript loader): sends, waits for
 * the echo, sends again; posts its wall time when done.
 */
const WORKER_SOURCE = `
const { connect } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { kind, port, messagePort, roundTrips } = workerData;
const message = new Uint8Array(40);
const started = performance.now();
let left = roundTrips;
const done = () => parentPort.postMessage(performance.now() - started);
if (kind === 'tcp') {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('connect', () => socket.write(message));
  socket.on('data', () => {
    if (--left === 0) { socket.destroy(); done(); } else socket.write(message);
  });
} else {
  messagePort.on('message', () => {
    if (--left === 0) { messagePort.close(); done(); } else messagePort.postMessage(message);
  });
  messagePort.postMessage(message);
}
`;

async function measure(kind: Kind): Promise<{ wallUsPerRoundTrip: number; cpuUsPerRoundTrip: number }> {
  let server: Server | undefined;
  let port = 0;
  const { port1, port2 } = new MessageChannel();
  if (kind === 'tcp') {
    server = createServer((socket) => {
      socket.setNoDelay(true);
      socket.on('data', (data) => socket.write(data));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  } else {
    port1.on('message', (message) => port1.postMessage(message));
  }
  const cpuBefore = process.cpuUsage();
  const child = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { kind, port, messagePort: port2, roundTrips: ROUND_TRIPS },
    transferList: [port2],
  });
  const wallMs = await new Promise<number>((resolve, reject) => {
    child.once('message', resolve);
    child.once('error', reject);
  });
  const cpu = process.cpuUsage(cpuBefore);
  await child.terminate();
  port1.close();
  server?.close();
  return {
    wallUsPerRoundTrip: (wallMs * 1000) / ROUND_TRIPS,
    // Includes starting the worker: a few ms, spread over the round trips.
    cpuUsPerRoundTrip: (cpu.user + cpu.system) / ROUND_TRIPS,
  };
}

const results: Record<string, unknown> = { date: new Date().toISOString(), roundTrips: ROUND_TRIPS };
// Alternating, twice each: the machine is shared and noisy.
for (const round of [1, 2]) {
  for (const kind of ['tcp', 'message-port'] as const) {
    const figures = await measure(kind);
    results[`${kind}-${round}`] = figures;
    console.log(
      `${kind === 'tcp' ? 'loopback TCP' : 'MessagePort'} (round ${round}): ${figures.wallUsPerRoundTrip.toFixed(1)} µs per round trip, ` +
        `${figures.cpuUsPerRoundTrip.toFixed(1)} µs of CPU per round trip (both threads)`,
    );
  }
}
const out = join(dirname(fileURLToPath(import.meta.url)), 'results.json');
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`figures written to ${out}`);
