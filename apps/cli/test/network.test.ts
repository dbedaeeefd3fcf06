import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath } from '@ftvm/guests';
import { afterEach, describe, expect, it } from 'vitest';
import { bin, built, scratchDirectory } from './support.js';

const directory = scratchDirectory('ftvm-net-');

/** A UDP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

interface Running {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

/** Starts `ftvm …` and resolves once its stdout shows `ready`. */
async function start(args: string[], ready: string): Promise<Running> {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!output.includes(ready)) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`ftvm did not get ready: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { child, output: () => output, exited };
}

/** A UDP client that sends one datagram and waits for the answer (or a timeout). */
async function client(port: number) {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const answers: string[] = [];
  socket.on('message', (message) => answers.push(message.toString().trim()));
  return {
    async request(text: string, timeoutMs = 5000): Promise<string | undefined> {
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

describe.skipIf(!built)('the kv guest on ftvm over real UDP (needs `npm run build`)', () => {
  it('serves PUT/GET/DEL/INCR, applies a retried INCR once, answers ERR, survives garbage, persists', async () => {
    const disk = join(directory, 'kv.img');
    writeFileSync(disk, new Uint8Array(1 << 20));
    const port = await freePort();
    const args = [
      'run',
      '--kernel',
      imagePath('kv'),
      '--drive',
      `file=${disk}`,
      '--netdev',
      `user,hostfwd=udp:127.0.0.1:${port}-:5555`,
    ];
    const first = await start(args, 'listening');
    const kv = await client(port);
    expect(await kv.request('1 PUT colour blue')).toBe('1 OK');
    expect(await kv.request('2 GET colour')).toBe('2 OK blue');
    expect(await kv.request('3 INCR hits')).toBe('3 OK 1');
    expect(await kv.request('3 INCR hits')).toBe('3 OK 1'); // a retry: same answer, applied once
    expect(await kv.request('4 INCR hits')).toBe('4 OK 2');
    expect(await kv.request('5 DEL colour')).toBe('5 OK');
    expect(await kv.request('6 GET colour')).toBe('6 NOTFOUND');
    expect(await kv.request('7 FLY away')).toMatch(/^7 ERR /);
    expect(await kv.request('8 PUT bad key! x')).toMatch(/^8 ERR /);
    expect(await kv.request('\u0000\u0001 garbage without an id', 500)).toBeUndefined();
    expect(await kv.request('9 PUT kept yes')).toBe('9 OK');
    kv.close();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(143);

    const second = await start(args, 'listening');
    const again = await client(port);
    expect(await again.request('10 GET kept')).toBe('10 OK yes');
    expect(await again.request('11 GET hits')).toBe('11 OK 2');
    again.close();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(143);
  });

  it('records kv serving a client and replays it to the same console, with no network', async () => {
    const disk = join(directory, 'kv-record.img');
    writeFileSync(disk, new Uint8Array(1 << 20));
    const port = await freePort();
    const recording = join(directory, 'kv.ftlog');
    const recorder = await start(
      [
        'record',
        '--kernel',
        imagePath('kv'),
        '--drive',
        `file=${disk}`,
        '--netdev',
        `user,hostfwd=udp:127.0.0.1:${port}-:5555`,
        '-o',
        recording,
      ],
      'listening',
    );
    const kv = await client(port);
    for (let id = 1; id <= 20; id++) expect(await kv.request(`${id} INCR counter`)).toBe(`${id} OK ${id}`);
    expect(await kv.request('21 GET counter')).toBe('21 OK 20');
    kv.close();
    recorder.child.kill('SIGTERM');
    // Stopped by the signal (128+15), with a whole recording that replays to its end.
    expect(await recorder.exited).toBe(143);
    expect(recorder.output()).toContain('ftvm: terminating on signal 15\n');

    const replay = await start(['replay', recording], 'listening');
    expect(await replay.exited).toBe(0);
    expect(replay.output()).toBe(recorder.output().replace('ftvm: terminating on signal 15\n', ''));
  });

  it('records echo.elf until it is told to quit, and replays it', async () => {
    const port = await freePort();
    const recording = join(directory, 'echo.ftlog');
    const recorder = await start(
      [
        'record',
        '--kernel',
        imagePath('echo'),
        '--netdev',
        `user,hostfwd=udp:127.0.0.1:${port}-:7`,
        '-o',
        recording,
      ],
      'echo',
    );
    const peer = await client(port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await peer.request('one')).toBe('one');
    expect(await peer.request('two')).toBe('two');
    expect(await peer.request('quit')).toBe('bye');
    peer.close();
    expect(await recorder.exited).toBe(0);
    const replay = await start(['replay', recording], 'echo');
    expect(await replay.exited).toBe(0);
    expect(replay.output()).toBe(recorder.output());
  });

  it('echoes datagrams with echo.elf', async () => {
    const port = await freePort();
    const echo = await start(
      ['run', '--kernel', imagePath('echo'), '--netdev', `user,hostfwd=udp:127.0.0.1:${port}-:7`],
      'echo',
    );
    const peer = await client(port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await peer.request('ping 1')).toBe('ping 1');
    expect(await peer.request('x'.repeat(1000))).toBe('x'.repeat(1000));
    peer.close();
    echo.child.kill('SIGTERM');
    expect(await echo.exited).toBe(143);
  });
});
