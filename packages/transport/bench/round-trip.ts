// What one message between two threads costs on this machine: a worker thread and the main thread
// send a message back and forth. Every exchange wakes a sleeping thread, as a log message and its
// acknowledgement do. Three kinds:
//
//   tcp            40 bytes over loopback TCP (Nagle off, as the logging channel runs)
//   message-port   40 bytes over a MessagePort
//   channel        the logging channel itself over loopback TCP (openChannel: frames, checksums,
//                  the codec): a kv PUT's log message one way, its acknowledgement back, as a
//                  primary and its backup exchange them. Against tcp, it is what the channel and
//                  the codec add to a round trip.
//
// Figures: wall time and the process's CPU per round trip.
//
//   npm run bench -w @ftvm/transport        (FTVM_BENCH_ROUND_TRIPS=N, default 20,000)
//
// Prints each figure and writes them to packages/transport/bench/results.json.
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import { FT_PROTOCOL_VERSION, type Handshake, type LogChannel } from '@ftvm/core';
import { type ChannelListener, listenTcp } from '../src/node/index.js';

const ROUND_TRIPS = Number(process.env.FTVM_BENCH_ROUND_TRIPS ?? 20_000);

type Kind = 'tcp' | 'message-port' | 'channel';

const LABELS: Record<Kind, string> = {
  tcp: 'loopback TCP, 40 bytes',
  'message-port': 'MessagePort, 40 bytes',
  channel: 'logging channel over loopback TCP, log message + ack',
};

/**
 * The worker's side of tcp and message-port (plain JavaScript, so the worker needs no TypeScript
 * loader): sends, waits for the echo, sends again; posts its wall time when done.
 */
const ECHO_WORKER_SOURCE = `
const { connect } = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');
const { kind, port, messagePort, roundTrips } = workerData;
const message = new Uint8Array(40);
let started = 0;
let left = roundTrips;
const start = () => { parentPort.postMessage('ready'); started = performance.now(); };
const done = () => parentPort.postMessage(performance.now() - started);
if (kind === 'tcp') {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('connect', () => { start(); socket.write(message); });
  socket.on('data', () => {
    if (--left === 0) { socket.destroy(); done(); } else socket.write(message);
  });
} else {
  messagePort.on('message', () => {
    if (--left === 0) { messagePort.close(); done(); } else messagePort.postMessage(message);
  });
  start();
  messagePort.postMessage(message);
}
`;

/** The channel's primary end runs from the sources, through tsx's loader (as the tests' VM workers do). */
const CHANNEL_WORKER_SOURCE = `
import('tsx/esm/api').then(({ register }) => {
  register();
  return import(${JSON.stringify(new URL('./channel-peer.ts', import.meta.url).href)});
});
`;

function handshake(role: 'primary' | 'backup'): Handshake {
  return { vmId: 'bench', epoch: 1, role, protocolVersion: FT_PROTOCOL_VERSION, host: role };
}

async function measure(kind: Kind): Promise<{ wallUsPerRoundTrip: number; cpuUsPerRoundTrip: number }> {
  let server: Server | undefined;
  let listener: ChannelListener | undefined;
  let backup: LogChannel | undefined;
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
  } else if (kind === 'channel') {
    // The backup's end acknowledges each log message as it arrives, as BackupCore does.
    listener = await listenTcp({ port: 0, handshake: handshake('backup') }, (channel) => {
      backup = channel;
      channel.onMessage((message) => {
        if (message.type !== 'log') return;
        const last = message.entries.at(-1)?.seq ?? -1;
        channel.send({ type: 'ack', receivedSeq: last, appliedSeq: last - 1, appliedIcount: 0 });
      });
    });
    port = listener.port;
  } else {
    port1.on('message', (message) => port1.postMessage(message));
  }
  const child =
    kind === 'channel'
      ? new Worker(CHANNEL_WORKER_SOURCE, {
          eval: true,
          execArgv: ['--conditions=@ftvm/source'],
          workerData: { kind, serverPort: port, roundTrips: ROUND_TRIPS, handshake: handshake('primary') },
        })
      : new Worker(ECHO_WORKER_SOURCE, {
          eval: true,
          workerData: { kind, port, messagePort: port2, roundTrips: ROUND_TRIPS },
          transferList: [port2],
        });
  // The worker says 'ready' once connected, then posts its wall time: CPU is counted in between,
  // without starting the worker and loading its code.
  let cpuBefore = process.cpuUsage();
  const wallMs = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: 'ready' | number) => {
      if (message === 'ready') cpuBefore = process.cpuUsage();
      else resolve(message);
    });
    child.once('error', reject);
  });
  const cpu = process.cpuUsage(cpuBefore);
  await child.terminate();
  port1.close();
  server?.close();
  backup?.close();
  await listener?.close();
  return {
    wallUsPerRoundTrip: (wallMs * 1000) / ROUND_TRIPS,
    cpuUsPerRoundTrip: (cpu.user + cpu.system) / ROUND_TRIPS,
  };
}

const results: Record<string, unknown> = { date: new Date().toISOString(), roundTrips: ROUND_TRIPS };
// Alternating, twice each: the machine is shared and noisy.
for (const round of [1, 2]) {
  for (const kind of ['tcp', 'message-port', 'channel'] as const) {
    const figures = await measure(kind);
    results[`${kind}-${round}`] = figures;
    console.log(
      `${LABELS[kind]} (round ${round}): ${figures.wallUsPerRoundTrip.toFixed(1)} µs per round trip, ` +
        `${figures.cpuUsPerRoundTrip.toFixed(1)} µs of CPU per round trip (both threads)`,
    );
  }
}
const out = join(dirname(fileURLToPath(import.meta.url)), 'results.json');
writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
console.log(`figures written to ${out}`);
