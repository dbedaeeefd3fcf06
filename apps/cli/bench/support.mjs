// What the I/O benchmarks share: a free port, a process started until it prints a line, and a
// closed-loop kv load that measures requests per second and latency.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';

export async function freePort() {
  const socket = createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}

/** Starts `command` and resolves once its output shows `ready` (with `console`, stdin is a pipe). */
export function startProcess(command, args, ready, { console = false } = {}) {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: [console ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  // 'close', not 'exit': the last output (a --stats line) is read by then.
  const exited = new Promise((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    const check = setInterval(() => {
      if (output.includes(ready)) {
        clearInterval(check);
        resolve({
          child,
          exited,
          output: () => output,
          secondsToReady: Number(process.hrtime.bigint() - started) / 1e9,
        });
      } else if (child.exitCode !== null) {
        clearInterval(check);
        reject(new Error(`${command} exited: ${output}`));
      }
    }, 10);
  });
}

/** Closed loop: `concurrency` clients, each sends its next request when the answer arrives. */
export async function load(port, requests, concurrency = 4) {
  const latenciesMs = [];
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
      const begin = process.hrtime.bigint();
      // Retry on loss, as a real client would (same id: applied once).
      for (;;) {
        const answered = new Promise((resolve) => {
          pending = () => resolve(true);
          setTimeout(() => resolve(false), 1000);
        });
        socket.send(request, port, '127.0.0.1');
        if (await answered) break;
      }
      latenciesMs.push(Number(process.hrtime.bigint() - begin) / 1e6);
    }
    socket.close();
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latenciesMs.sort((a, b) => a - b);
  const at = (fraction) =>
    latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(latenciesMs.length * fraction))];
  return {
    requestsPerSecond: Math.round(latenciesMs.length / seconds),
    p50Ms: +at(0.5).toFixed(3),
    p99Ms: +at(0.99).toFixed(3),
  };
}
