import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  packageRoot,
  ReferenceQemu,
  type ReferenceQemuOptions,
  referenceQemuArgs,
  referenceQemuAvailable,
} from '@ftvm/guests';
import { afterEach, describe, expect, it } from 'vitest';
import {
  built,
  freeUdpPort,
  killStartedProcesses,
  scratchDirectory,
  startFtvm,
  udpClient,
} from './support.js';

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

const qemus = new Set<ReferenceQemu>();
afterEach(async () => {
  killStartedProcesses();
  await Promise.all([...qemus].map((qemu) => qemu.stop()));
  qemus.clear();
});

/** Boots Linux on `ftvm …` with a console to type on, and resolves at `kv: ready`. */
function boot(args: string[]) {
  return startFtvm(args, 'kv: ready', { console: true, timeoutMs: BOOT_TIMEOUT_MS });
}

/** Linux's kv server answers slower than kv.elf: a patient client. */
function client(port: number) {
  return udpClient(port, 10_000);
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
    const port = await freeUdpPort();
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
    const port = await freeUdpPort();
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

/** Boots Linux on QEMU, or on ftvm from QEMU's own command line, up to `kv: ready`. */
async function bootOn(onQemu: boolean, options: ReferenceQemuOptions) {
  if (!onQemu) {
    const ftvm = await boot(['run', ...referenceQemuArgs(kernel, options)]);
    return { type: ftvm.type, exited: ftvm.exited, console: ftvm.stdout };
  }
  const qemu = new ReferenceQemu(kernel, options);
  qemus.add(qemu);
  await qemu.waitForOutput(/kv: ready/, BOOT_TIMEOUT_MS);
  return {
    type: (line: string) => qemu.type(`${line}\n`),
    exited: qemu.exited.then((exit) => exit.status),
    console: () => qemu.output,
  };
}

describe.skipIf(!built || !present || !referenceQemuAvailable())('Linux on ftvm and on QEMU', () => {
  it('prints the same console transcript on both, from the same files and the same command line', async () => {
    const transcripts: string[][] = [];
    for (const onQemu of [true, false]) {
      const disk = join(directory, onQemu ? 'qemu.img' : 'ftvm.img');
      writeFileSync(disk, new Uint8Array(2 << 20));
      const port = await freeUdpPort();
      const options = {
        bios: firmware,
        diskPath: disk,
        network: { udpForwards: [{ hostPort: port, guestPort: 5555 }] },
      };
      const run = await bootOn(onQemu, options);
      const kv = await client(port);
      expect(await kv.request('1 PUT linux yes')).toBe('1 OK');
      kv.close();
      run.type('poweroff');
      expect(await run.exited).toBe(0);
      transcripts.push(transcript(run.console()));
    }
    expect(transcripts[1]).toEqual(transcripts[0]);
    expect(transcripts[0]).toContain('kv: ready: listening on udp port 5555 (persistent)');
  }, 600_000);
});
