/** What the CLI's tests share: the built command, captured output, a scratch folder, raw guest programs. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliOutput } from '../src/index.js';

export const bin = fileURLToPath(new URL('../bin/ftvm.js', import.meta.url));
/** The tests run the built command: `npm test` builds it first (turbo), a bare vitest may not. */
export const built = existsSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)));

/** Output that `main` writes into strings, for in-process tests of the command. */
export function capture(): CliOutput & { out: string; err: string } {
  const sink = {
    out: '',
    err: '',
    stdout: (text: string) => {
      sink.out += text;
    },
    stderr: (text: string) => {
      sink.err += text;
    },
  };
  return sink;
}

/** A fresh scratch folder. */
export function scratchDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A running `ftvm …` started by {@link startFtvm}. */
export interface RunningFtvm {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr as they arrived. */
  output(): string;
  readonly exited: Promise<number | null>;
  /** Types a line on the guest's console (needs `console: true`). */
  type(line: string): void;
}

const started: ChildProcess[] = [];

/** Kills whatever {@link startFtvm} started and is still running (for `afterEach`). */
export function killStartedProcesses(): void {
  for (const child of started.splice(0)) child.kill('SIGKILL');
}

/**
 * Starts `ftvm …` and resolves once its output shows `ready`. With `console`, stdin is a pipe the
 * test types on; otherwise there is no stdin.
 */
export async function startFtvm(
  args: readonly string[],
  ready: string,
  options: { readonly console?: boolean; readonly timeoutMs?: number } = {},
): Promise<RunningFtvm> {
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: [options.console ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!output.includes(ready)) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`ftvm ${args[0]} did not get ready: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    exited,
    type: (line) => {
      child.stdin?.write(`${line}\n`);
    },
  };
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** A UDP client on a port of its own: sends one datagram and waits for the answer (or a timeout). */
export async function udpClient(port: number, defaultTimeoutMs = 5000) {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const answers: string[] = [];
  socket.on('message', (message) => answers.push(message.toString().trim()));
  return {
    async request(text: string, timeoutMs = defaultTimeoutMs): Promise<string | undefined> {
      const before = answers.length;
      socket.send(text, port, '127.0.0.1');
      const deadline = Date.now() + timeoutMs;
      while (answers.length === before && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 5));
      return answers[before];
    },
    close: () => socket.close(),
  };
}

/** Runs `ftvm` to the end with `input` on stdin. */
export function ftvm(args: string[], input = '') {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Writes a raw RV32 program (little-endian instruction words) to `path` and returns the path. */
export function writeRawProgram(path: string, words: readonly number[]): string {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  words.forEach((word, index) => {
    view.setUint32(index * 4, word, true);
  });
  writeFileSync(path, bytes);
  return path;
}

/** Echoes UART input until it reads 'q', then powers off with success. */
export const echoUntilQ = [
  0x100002b7, // lui   t0, 0x10000        UART
  0x0052c303, // lbu   t1, 5(t0)          LSR
  0x00137313, // andi  t1, t1, 1          data ready?
  0xfe030ce3, // beqz  t1, -8
  0x0002c383, // lbu   t2, 0(t0)          RBR
  0x00728023, // sb    t2, 0(t0)          THR
  0x07100e13, // li    t3, 'q'
  0xffc394e3, // bne   t2, t3, -24
  0x001002b7, // lui   t0, 0x100          test finisher
  0x00005337, // lui   t1, 0x5
  0x55530313, // addi  t1, t1, 0x555      0x5555: pass
  0x0062a023, // sw    t1, 0(t0)
  0x0000006f, // j     .
];

/** Powers off with failure code 42: (42 << 16) | 0x3333. */
export const exitWith42 = [0x001002b7, 0x002a3337, 0x33330313, 0x0062a023, 0x0000006f];
