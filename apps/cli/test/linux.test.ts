import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, referenceQemuArgs, referenceQemuAvailable, referenceQemuBinary } from '@ftvm/guests';
import { afterEach, describe, expect, it } from 'vitest';
import { bin, built, scratchDirectory } from './support.js';

/**
 * Linux on ftvm: Debian's kernel built for rv32 with the project's kv server as its init
 * (`packages/guests/linux`), booted through the project's SBI firmware, served over real UDP,
 * powered off from its console, and a whole boot recorded and replayed bit-exact.
 */

const linux = join(packageRoot(), 'images', 'linux');
const firmware = join(linux, 'sbi.elf');
const kernel = join(linux, 'Image');
const present = existsSync(firmware) && existsSync(kernel);
const directory = scratchDirectory('ftvm-linux-');
/** A boot takes seconds; the machines that run the tests are shared and slow. */
const BOOT_TIMEOUT_MS = 180_000;

async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

/**
 * Starts `ftvm …` (or another command: QEMU) with a console on stdin, and resolves once the
 * console shows `ready`.
 */
async function boot(args: string[], ready = 'kv: ready', command = [process.execPath, bin]) {
  const [executable, ...leading] = command as [string, ...string[]];
  const child = spawn(executable, [...leading, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  while (!stdout.includes(ready)) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`Linux did not get ready on ${executable}:\n${stdout}\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    /** Types a line on the console. */
    type: (line: string) => child.stdin?.write(`${line}\n`),
  };
}

/** One client address: sends a datagram, waits for the answer. */
async function client(port: number) {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const answers: string[] = [];
  socket.on('message', (message) => answers.push(message.toString().trim()));
  return {
    async request(text: string, timeoutMs = 10_000): Promise<string | undefined> {
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

function machineArgs(disk: string, port: number): string[] {
  return [
    '--bios',
    firmware,
    '--kernel',
    kernel,
    '--drive',
    `file=${disk}`,
    '--netdev',
    `user,hostfwd=udp:127.0.0.1:${port}-:5555`,
  ];
}

describe.skipIf(!built || !present)('Linux on ftvm (needs `npm run build`)', () => {
  it('boots to kv: ready, serves kv over real UDP from Linux userland, persists, and powers off cleanly', async () => {
    const disk = join(directory, 'kv.img');
    writeFileSync(disk, new Uint8Array(2 << 20));
    const port = await freePort();
    const first = await boot(['run', ...machineArgs(disk, port)]);
    expect(first.stdout()).toContain('Linux version 6.1');
    const kv = await client(port);
    expect(await kv.request('1 PUT colour blue')).toBe('1 OK');
    expect(await kv.request('2 GET colour')).toBe('2 OK blue');
    expect(await kv.request('3 INCR hits')).toBe('3 OK 1');
    expect(await kv.request('3 INCR hits')).toBe('3 OK 1'); // a retry: the same answer, applied once
    expect(await kv.request('4 INCR hits')).toBe('4 OK 2');
    expect(await kv.request('5 DEL colour')).toBe('5 OK');
    expect(await kv.request('6 GET colour')).toBe('6 NOTFOUND');
    expect(await kv.request('7 FLY away')).toBe('7 ERR unknown operation');
    expect(await kv.request('8 PUT kept yes')).toBe('8 OK');
    kv.close();
    first.type('poweroff');
    expect(await first.exited).toBe(0);
    expect(first.stderr()).toBe('');

    // The same disk on the next boot: the store is still there.
    const second = await boot(['run', ...machineArgs(disk, port)]);
    expect(second.stdout()).toContain('kv: disk: loaded 2 keys');
    const again = await client(port);
    expect(await again.request('9 GET kept')).toBe('9 OK yes');
    expect(await again.request('10 GET hits')).toBe('10 OK 2');
    again.close();
    second.type('poweroff');
    expect(await second.exited).toBe(0);
  }, 600_000);

  it('records a whole boot with clients and a power-off, and replays it bit-exact from the recording alone', async () => {
    const disk = join(directory, 'kv-record.img');
    writeFileSync(disk, new Uint8Array(2 << 20));
    const port = await freePort();
    const recording = join(directory, 'linux.ftlog');
    const recorder = await boot(['record', ...machineArgs(disk, port), '-o', recording]);
    const kv = await client(port);
    for (let id = 1; id <= 10; id++) expect(await kv.request(`${id} INCR counter`)).toBe(`${id} OK ${id}`);
    expect(await kv.request('11 GET counter')).toBe('11 OK 10');
    kv.close();
    recorder.type('poweroff');
    expect(await recorder.exited).toBe(0);

    // The replay checks every output and state hash against the recording: a divergence is 65.
    const replay = await boot(['replay', recording, '--no-progress']);
    expect(await replay.exited).toBe(0);
    expect(replay.stderr()).toBe('');
    expect(replay.stdout()).toBe(recorder.stdout());
  }, 600_000);
});

/** A console transcript without what depends on timing: CR, and the kernel's RNG readiness line. */
function transcript(output: string): string[] {
  return output
    .replaceAll('\r', '')
    .split('\n')
    .filter((line) => !line.startsWith('random: '));
}

describe.skipIf(!built || !present || !referenceQemuAvailable())('Linux on ftvm and on QEMU', () => {
  it('prints the same console transcript on both, from the same files and the same command line', async () => {
    const transcripts: string[][] = [];
    for (const onQemu of [true, false]) {
      const disk = join(directory, onQemu ? 'qemu.img' : 'ftvm.img');
      writeFileSync(disk, new Uint8Array(2 << 20));
      const port = await freePort();
      const args = referenceQemuArgs(kernel, {
        bios: firmware,
        diskPath: disk,
        network: { udpForwards: [{ hostPort: port, guestPort: 5555 }] },
      });
      // ftvm takes QEMU's own command line.
      const run = await boot(
        onQemu ? args : ['run', ...args],
        'kv: ready',
        onQemu ? [referenceQemuBinary] : undefined,
      );
      const kv = await client(port);
      expect(await kv.request('1 PUT linux yes')).toBe('1 OK');
      kv.close();
      run.type('poweroff');
      expect(await run.exited).toBe(0);
      transcripts.push(transcript(run.stdout()));
    }
    expect(transcripts[1]).toEqual(transcripts[0]);
    expect(transcripts[0]).toContain('kv: ready: listening on udp port 5555 (persistent)');
  }, 600_000);
});
