// Runs each image on the reference QEMU and compares its deterministic transcript and exit status.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  deterministicLines,
  expectedTranscripts,
  nondeterministicLinePrefix,
  ReferenceQemu,
  referenceQemuArgs,
  referenceQemuBinary,
  runOnReferenceQemu,
} from './index.js';
import { qemuMissing } from './test-support.js';

const scratch = mkdtempSync(join(tmpdir(), 'ftvm-guests-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A fresh zero-filled raw disk image. */
function blankDisk(name: string, sizeBytes: number): string {
  const path = join(scratch, name);
  writeFileSync(path, Buffer.alloc(sizeBytes));
  return path;
}

/** The byte disk.elf writes at `offset` of `sector`. */
function diskPattern(sector: number, offset: number): number {
  return ((sector * 31 + offset * 7) ^ 0x5a) & 0xff;
}

describe.skipIf(qemuMissing !== undefined)(`guest images on the reference QEMU ${qemuMissing ?? ''}`, () => {
  it('hello prints a greeting and what the device tree says, then exits 0', async () => {
    const { output, exit } = await runOnReferenceQemu('hello');
    expect(deterministicLines(output)).toEqual(expectedTranscripts.hello.lines);
    expect(exit.status).toBe(0);
  });

  it('hello sees the memory size QEMU was given', async () => {
    const { output, exit } = await runOnReferenceQemu('hello', { memoryMiB: 128 });
    expect(output).toContain('hello: memory at 0x80000000, 128 MiB');
    expect(exit.status).toBe(0);
  });

  it('bench does its work right (every iteration gives the known crc) and exits 0', async () => {
    const { output, exit } = await runOnReferenceQemu('bench');
    expect(deterministicLines(output)).toEqual(expectedTranscripts.bench.lines);
    expect(output).toMatch(/^\[nondet\] bench: \d+ mtime ticks \(\d+ ms\)$/m);
    expect(exit.status).toBe(0);
  });

  it('bench takes its iteration count from the kernel command line', async () => {
    const { output, exit } = await runOnReferenceQemu('bench', { append: 'iterations=10' });
    expect(deterministicLines(output)).toEqual([
      'bench: 10 iterations of lists, matrices, state machine, crc',
      'bench: iteration crc 0x0e779e6f (expected 0x0e779e6f)',
      'bench: combined crc 0xc8484d3f',
      'bench: ok',
    ]);
    expect(exit.status).toBe(0);
  });

  it('clock reads mtime and the rtc and sleeps on timer interrupts', async () => {
    const { output, exit } = await runOnReferenceQemu('clock');
    expect(deterministicLines(output)).toEqual(expectedTranscripts.clock.lines);
    const nondeterministic = output.split('\n').filter((line) => line.startsWith(nondeterministicLinePrefix));
    expect(nondeterministic).toHaveLength(5);
    expect(exit.status).toBe(0);
  });

  it('paging runs S and U mode with Sv32, page faults and system calls', async () => {
    const { output, exit } = await runOnReferenceQemu('paging');
    expect(deterministicLines(output)).toEqual(expectedTranscripts.paging.lines);
    expect(exit.status).toBe(0);
  });

  it('rng reads virtio-rng through modern virtio-mmio', async () => {
    const { output, exit } = await runOnReferenceQemu('rng', { rng: true });
    expect(deterministicLines(output)).toEqual(expectedTranscripts.rng.lines);
    expect(output).toMatch(/^\[nondet\] rng: digest 0x[0-9a-f]{8}, \d+ distinct byte values$/m);
    expect(exit.status).toBe(0);
  });

  it('the virtio drivers refuse a legacy (version 1) transport with a clear message', async () => {
    // The reference line without -global virtio-mmio.force-legacy=false: QEMU's default, legacy.
    const args = referenceQemuArgs('rng', { rng: true }).filter(
      (arg, index, all) => arg !== '-global' && all[index - 1] !== '-global',
    );
    const child = spawn(referenceQemuBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('latin1');
    });
    const status = await new Promise<number | null>((resolvePromise) => child.on('close', resolvePromise));
    expect(output).toContain(
      'rng: cannot open virtio-rng: the device is legacy virtio-mmio (version 1); ftvm guests need version 2',
    );
    expect(status).toBe(1);
  });

  it('rng says so when there is no virtio-rng device', async () => {
    const { output, exit } = await runOnReferenceQemu('rng');
    expect(deterministicLines(output)).toEqual(['rng: cannot open virtio-rng: no such virtio device']);
    expect(exit.status).toBe(1);
  });

  it('disk writes, reads back and checksums blocks, and the data lands in the disk file', async () => {
    const diskPath = blankDisk('disk.img', 1 << 20);
    const { output, exit } = await runOnReferenceQemu('disk', { diskPath });
    expect(deterministicLines(output)).toEqual(expectedTranscripts.disk.lines);
    expect(exit.status).toBe(0);
    const disk = readFileSync(diskPath);
    for (const sector of [0, 5, 63, 100, 399]) {
      const expected = Buffer.from(Array.from({ length: 512 }, (_, offset) => diskPattern(sector, offset)));
      expect(disk.subarray(sector * 512, sector * 512 + 512)).toEqual(expected);
    }
    expect(disk.subarray(64 * 512, 100 * 512).every((byte) => byte === 0)).toBe(true);
    expect(disk.subarray(2047 * 512).every((byte) => byte === 0xa5)).toBe(true);
  });

  it('diskbench writes 16 MiB, reads it back and reports its throughput', async () => {
    const diskPath = blankDisk('diskbench.img', 16 << 20);
    const { output, exit } = await runOnReferenceQemu('diskbench', { diskPath });
    expect(deterministicLines(output)).toEqual(expectedTranscripts.diskbench.lines);
    expect(output).toMatch(/\[nondet\] diskbench: write \d+ KiB\/s, read \d+ KiB\/s/);
    expect(exit.status).toBe(0);
  });

  it('memtouch fills the free RAM, rewrites its working set and checks every page (rounds=1024)', async () => {
    const { output, exit } = await runOnReferenceQemu('memtouch', {
      append: expectedTranscripts.memtouch.setup.bootArgs,
    });
    expect(deterministicLines(output)).toEqual(expectedTranscripts.memtouch.lines);
    expect(output).toMatch(/^\[nondet\] memtouch: fill took \d+ ms \(\d+ MiB\/s\)$/m);
    expect(exit.status).toBe(0);
  });

  it('memtouch runs for minutes by default, printing the same rounds; stopped after round 192', async () => {
    const qemu = new ReferenceQemu('memtouch');
    try {
      await qemu.waitForOutput(/^memtouch: round 192 checksum .*\n/m);
    } finally {
      await qemu.stop();
    }
    const lines = deterministicLines(qemu.output);
    const throughRound192 = expectedTranscripts.memtouch.lines.slice(0, 6);
    expect(throughRound192.at(-1)).toMatch(/^memtouch: round 192 /);
    expect(lines.slice(0, 6)).toEqual(throughRound192);
  });

  it('memtouch fills up to 2 MiB below the top of whatever RAM it has', async () => {
    const { output, exit } = await runOnReferenceQemu('memtouch', { memoryMiB: 128, append: 'rounds=64' });
    expect(deterministicLines(output).slice(0, 2)).toEqual([
      'memtouch: 128 MiB of RAM at 0x80000000, free 0x80115000-0x87e00000',
      'memtouch: filled 124 MiB',
    ]);
    expect(output).toContain('memtouch: ok after 64 rounds');
    expect(exit.status).toBe(0);
  });

  it('dmarace races its own DMA and still ends with the right data', async () => {
    const diskPath = blankDisk('dmarace.img', 1 << 20);
    const { output, exit } = await runOnReferenceQemu('dmarace', { diskPath });
    expect(deterministicLines(output)).toEqual(expectedTranscripts.dmarace.lines);
    const racy = output.split('\n').filter((line) => line.startsWith(nondeterministicLinePrefix));
    expect(racy).toHaveLength(2);
    expect(exit.status).toBe(0);
  });
});
