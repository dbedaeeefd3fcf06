import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogEntry } from '@ftvm/core';
import { imagePath } from '@ftvm/guests';
import {
  concatBytes,
  FrameDecoder,
  FrameType,
  type RecordFileContents,
  RecordFileWriter,
  readRecordFile,
} from '@ftvm/log-codec';
import { afterAll, describe, expect, it } from 'vitest';
import { bin, built, echoUntilQ, ftvm, scratchDirectory, writeRawProgram } from './support.js';

const directory = scratchDirectory('ftvm-record-');

/** Rewrites a record file with `edit` applied to its entries (a well-formed file that lies). */
function rewrite(source: string, target: string, edit: (entries: LogEntry[]) => LogEntry[]): void {
  const contents = readRecordFile(new Uint8Array(readFileSync(source)));
  const writer = new RecordFileWriter();
  const { format: _format, version: _version, ...header } = contents.header;
  const parts = [writer.start(header)];
  const edited = edit(contents.entries);
  for (const entry of edited) parts.push(writer.append(entry));
  // The trailer says what the log says: the power-off's exit status, or none.
  const last = edited.at(-1);
  parts.push(writer.finish(last?.kind === 'stop' ? last.exitStatus : null));
  writeFileSync(target, concatBytes(parts));
}

describe.skipIf(!built)('ftvm record and ftvm replay (needs `npm run build`)', () => {
  const clockRecording = join(directory, 'clock.ftlog');
  let recordedOutput = '';
  let recordedStatus: number | null = null;

  it('records a run and replays it to the same console output and exit status', () => {
    const recorded = ftvm([
      'record',
      '--kernel',
      imagePath('clock'),
      '-o',
      clockRecording,
      '--checkpoint-interval',
      '5000',
    ]);
    // clock.elf judges host time (it fails if a 20 ms sleep passes without its interrupt, which a
    // host too busy to run the machine for 20 ms can cause, on QEMU too). What is tested here is
    // that the replay does exactly what the recording did, whatever that was.
    expect(recorded.stderr).toBe('');
    recordedOutput = recorded.stdout;
    recordedStatus = recorded.status;
    expect(recordedOutput).toContain('clock: timer interrupts taken:');
    const replayed = ftvm(['replay', clockRecording]);
    expect(replayed.stderr).toBe('');
    expect(replayed.status).toBe(recorded.status);
    // Every line, the non-deterministic ones too: the replay reads the recorded times.
    expect(replayed.stdout).toBe(recordedOutput);
  });

  it('records console input and replays it without any', () => {
    const program = writeRawProgram(join(directory, 'echo.bin'), echoUntilQ);
    const recording = join(directory, 'echo.ftlog');
    expect(ftvm(['record', '--kernel', program, '-o', recording], 'typed q').stdout).toBe('typed q');
    const replayed = ftvm(['replay', recording]);
    expect(replayed.status).toBe(0);
    expect(replayed.stdout).toBe('typed q');
  });

  it('detects a recording whose values were changed, naming the icount, and exits 65', () => {
    const tampered = join(directory, 'tampered.ftlog');
    let victimIcount = -1;
    rewrite(clockRecording, tampered, (entries) =>
      entries.map((entry) => {
        // The real-time clock's value at boot: the guest prints the RTC, so moving it must show.
        if (victimIcount < 0 && entry.kind === 'event' && entry.event.type === 'realtime-at-boot') {
          victimIcount = entry.icount;
          return { ...entry, event: { ...entry.event, data: (entry.event.data as number) + 5e9 } };
        }
        return entry;
      }),
    );
    expect(victimIcount).toBeGreaterThanOrEqual(0);
    const replayed = ftvm(['replay', '-q', tampered]);
    expect(replayed.status).toBe(65);
    const match = /replay diverged at icount (\d+) \((output|state-hash)\)/.exec(replayed.stderr);
    expect(match).not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThanOrEqual(victimIcount);
    expect(replayed.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('replays the whole frames of a recording cut short, wherever it was cut', () => {
    const whole = new Uint8Array(readFileSync(clockRecording));
    const cut = join(directory, 'cut.ftlog');
    let longest = 0;
    // Cut in the middle of every frame after the header.
    const frames = new FrameDecoder().push(whole).slice(1);
    expect(frames.length).toBeGreaterThan(2);
    for (const frame of frames) {
      writeFileSync(cut, whole.subarray(0, frame.offset + Math.floor(frame.length / 2)));

      const replayed = ftvm(['replay', '--partial', cut]);
      expect(replayed.stderr).toMatch(/was cut short; replaying its \d+ whole entries/);
      // 0 when the cut leaves out the power-off; the recording's own status when it keeps it.
      expect([0, recordedStatus]).toContain(replayed.status);
      expect(recordedOutput.startsWith(replayed.stdout)).toBe(true);
      expect(replayed.stdout.length).toBeGreaterThanOrEqual(longest);
      longest = replayed.stdout.length;
    }
    expect(longest).toBeGreaterThan(0);
  });

  it('refuses a damaged or foreign file with one line and status 65, a missing one with 66', () => {
    const damaged = new Uint8Array(readFileSync(clockRecording));
    damaged[Math.floor(damaged.length / 2)] ^= 0x55;
    const damagedPath = join(directory, 'damaged.ftlog');
    writeFileSync(damagedPath, damaged);
    const result = ftvm(['replay', damagedPath]);
    expect(result.status).toBe(65);
    expect(result.stderr).toMatch(/^ftvm: .*(checksum|malformed)/);
    expect(ftvm(['replay', imagePath('hello')]).status).toBe(65);
    expect(ftvm(['replay', join(directory, 'missing.ftlog')]).status).toBe(66);
  });
});

describe.skipIf(!built)(
  'record and replay refuse what would lose data or hang (needs `npm run build`)',
  () => {
    it('does not empty an existing file when the flags are bad, nor record over the kernel', () => {
      const keep = join(directory, 'keep.ftlog');
      writeFileSync(keep, 'precious');
      expect(ftvm(['record', '--kernel', imagePath('hello'), '-m', '3G', '-o', keep]).status).toBe(64);
      expect(readFileSync(keep, 'utf8')).toBe('precious');
      const kernel = join(directory, 'kernel.elf');
      writeFileSync(kernel, readFileSync(imagePath('hello')));
      const overKernel = ftvm(['record', '--kernel', kernel, '-o', kernel]);
      expect(overKernel.status).toBe(64);
      expect(Buffer.compare(readFileSync(kernel), readFileSync(imagePath('hello')))).toBe(0);
    });

    it('replays a recording whose power-off falls on a checkpoint', () => {
      const first = join(directory, 'stop-first.ftlog');
      expect(ftvm(['record', '--kernel', imagePath('hello'), '--clock', 'icount', '-o', first]).status).toBe(
        0,
      );
      const stopIcount = readRecordFile(new Uint8Array(readFileSync(first))).trailer?.lastIcount ?? 0;
      expect(stopIcount).toBeGreaterThan(0);
      const onCheckpoint = join(directory, 'stop-checkpoint.ftlog');
      const recorded = ftvm([
        'record',
        '--kernel',
        imagePath('hello'),
        '--clock',
        'icount',
        '--checkpoint-interval',
        String(stopIcount),
        '-o',
        onCheckpoint,
      ]);
      expect(recorded.status).toBe(0);
      expect(ftvm(['replay', '-q', onCheckpoint]).status).toBe(0);
    });

    it('stops with 65 on a hostile file whose reads can never be made', () => {
      const base = join(directory, 'base.ftlog');
      expect(ftvm(['record', '--kernel', imagePath('hello'), '--clock', 'icount', '-o', base]).status).toBe(
        0,
      );
      const hostile = join(directory, 'hostile.ftlog');
      rewrite(base, hostile, () => [
        { kind: 'nondet', seq: 0, icount: 0, device: 'uart', key: 'x', value: 1 },
        { kind: 'progress', seq: 1, icount: 0 },
      ]);
      const replayed = ftvm(['replay', '-q', hostile]);
      expect(replayed.status).toBe(65);
      expect(replayed.stderr).toMatch(/replay diverged at icount 0/);
    });
  },
);

describe.skipIf(!built)(
  'every guest image records to a file and replays from it (needs `npm run build`)',
  () => {
    const cases: { image: Parameters<typeof imagePath>[0]; flags: (disk: string) => string[] }[] = [
      { image: 'hello', flags: () => [] },
      { image: 'paging', flags: () => [] },
      { image: 'bench', flags: () => ['--append', 'iterations=20'] },
      { image: 'rng', flags: () => ['--device', 'virtio-rng-device'] },
      { image: 'disk', flags: (disk) => ['--drive', `file=${disk}`] },
      { image: 'dmarace', flags: (disk) => ['--drive', `file=${disk}`] },
    ];
    for (const { image, flags } of cases) {
      it(`${image}.elf`, () => {
        const disk = join(directory, `${image}.img`);
        writeFileSync(disk, new Uint8Array(1 << 20));
        const recording = join(directory, `${image}.ftlog`);
        const recorded = ftvm(['record', '--kernel', imagePath(image), ...flags(disk), '-o', recording]);
        expect(recorded.stderr).toBe('');
        expect(recorded.status).toBe(0);
        const replayed = ftvm(['replay', recording]);
        expect(replayed.stderr).toBe('');
        expect(replayed.status).toBe(0);
        expect(replayed.stdout).toBe(recorded.stdout);
      });
    }
  },
);

/** Prints 'x' 81,920 times (about 650 KB of recording), then powers off with success. */
const chatty = [
  0x100002b7, // lui   t0, 0x10000        UART
  0x07800313, // li    t1, 'x'
  0x000143b7, // lui   t2, 20             81,920 times
  0x00628023, // sb    t1, 0(t0)          THR
  0xfff38393, // addi  t2, t2, -1
  0xfe039ce3, // bnez  t2, -8
  0x001002b7, // lui   t0, 0x100          test finisher
  0x00005337, // lui   t1, 0x5
  0x55530313, // addi  t1, t1, 0x555      0x5555: pass
  0x0062a023, // sw    t1, 0(t0)
  0x0000006f, // j     .
];

/** A 256 KiB file system for a recording to fill up: a tmpfs, which only root can mount. */
const smallDisk = ((): { path?: string; reason?: string } => {
  if (!built) return { reason: 'needs `npm run build`' };
  if (process.getuid?.() !== 0) return { reason: 'needs root to mount a tmpfs' };
  const path = join(directory, 'small-disk');
  mkdirSync(path);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', path], { encoding: 'utf8' });
  if (mounted.status !== 0) {
    return { reason: `cannot mount a tmpfs: ${(mounted.stderr || String(mounted.error)).trim()}` };
  }
  return { path };
})();
afterAll(() => {
  if (smallDisk.path) spawnSync('umount', [smallDisk.path]);
});

/** Runs `ftvm` with its stdout thrown away (a chatty guest's console would fill a pipe's buffer). */
function ftvmQuiet(args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 120_000,
  });
  return { status: result.status, stderr: result.stderr };
}

/** The console output a recording holds. */
function consoleOf(contents: RecordFileContents): string {
  return contents.entries
    .map((entry) => (entry.kind === 'output' && entry.stream === 'console' ? Buffer.from(entry.data) : ''))
    .join('');
}

/** Polls `probe` until it gives a value (or fails after 30 s). */
async function waitFor<T>(probe: () => T | undefined): Promise<T> {
  for (let tries = 0; tries < 600; tries++) {
    const value = probe();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error('timed out waiting');
}

describe.skipIf(!built)(
  'record writes a whole recording or none, and never over its inputs (needs `npm run build`)',
  () => {
    const kernelBytes = readFileSync(imagePath('hello'));

    it('refuses an output that is the kernel through a symlink or a hard link (64), leaving it intact', () => {
      const folder = mkdtempSync(join(directory, 'kernel-'));
      const kernel = join(folder, 'kernel.elf');
      writeFileSync(kernel, kernelBytes);
      symlinkSync('kernel.elf', join(folder, 'symlink.elf'));
      linkSync(kernel, join(folder, 'hardlink.elf'));
      for (const name of ['symlink.elf', 'hardlink.elf']) {
        const result = ftvm(['record', '--kernel', kernel, '-o', join(folder, name)]);
        expect(result.status).toBe(64);
        expect(result.stderr).toBe(
          `ftvm: -o ${join(folder, name)}: that is the kernel (${kernel}); write the recording elsewhere\n`,
        );
        expect(Buffer.compare(readFileSync(kernel), kernelBytes)).toBe(0);
      }
      expect(readdirSync(folder).sort()).toEqual(['hardlink.elf', 'kernel.elf', 'symlink.elf']);
    });

    it('refuses an output that is a --drive image, by its name or a link (64), leaving it intact', () => {
      const folder = mkdtempSync(join(directory, 'drive-'));
      const disk = join(folder, 'disk.img');
      const contents = Uint8Array.from({ length: 1 << 20 }, (_, i) => i & 255);
      writeFileSync(disk, contents);
      symlinkSync('disk.img', join(folder, 'link.img'));
      const second = join(folder, 'second.img');
      writeFileSync(second, new Uint8Array(1 << 20));
      for (const output of [disk, join(folder, 'link.img')]) {
        const result = ftvm([
          'record',
          '--kernel',
          imagePath('disk'),
          '--drive',
          `file=${second}`,
          '--drive',
          `file=${disk},format=raw`,
          '-o',
          output,
        ]);
        expect(result.status).toBe(64);
        expect(result.stderr).toMatch(
          /^ftvm: -o .*: that is a --drive disk image \(.*disk\.img\); write the recording elsewhere\n$/,
        );
        expect(Buffer.compare(readFileSync(disk), contents)).toBe(0);
      }
    });

    it('refuses an output that is a --device module file (64)', () => {
      const folder = mkdtempSync(join(directory, 'module-'));
      const module = join(folder, 'device.mjs');
      writeFileSync(module, 'export default () => { throw new Error("not loaded"); };\n');
      const result = ftvm([
        'record',
        '--kernel',
        imagePath('hello'),
        '--device',
        `${module},x=1`,
        '-o',
        module,
      ]);
      expect(result.status).toBe(64);
      expect(result.stderr).toMatch(/that is a --device module/);
      expect(readFileSync(module, 'utf8')).toMatch(/^export default/);
    });

    it('refuses a --checkpoint-interval that is not a whole number of steps (64), naming the flag', () => {
      const folder = mkdtempSync(join(directory, 'interval-'));
      const recording = join(folder, 'run.ftlog');
      for (const interval of ['', 'abc', '-5', '1.5', '9007199254740993']) {
        const result = ftvm([
          'record',
          '--kernel',
          imagePath('hello'),
          '--checkpoint-interval',
          interval,
          '-o',
          recording,
        ]);
        expect(result.status).toBe(64);
        expect(result.stderr).toBe(
          `ftvm: --checkpoint-interval '${interval}': expected a whole number of steps (0 for no checkpoints)\n`,
        );
      }
      expect(readdirSync(folder)).toEqual([]);
      // 0 is what the machine takes for "no checkpoints".
      const none = ftvm([
        'record',
        '--kernel',
        imagePath('hello'),
        '--checkpoint-interval',
        '0',
        '-o',
        recording,
      ]);
      expect(none.status).toBe(0);
      const contents = readRecordFile(new Uint8Array(readFileSync(recording)));
      expect(contents.entries.some((entry) => entry.kind === 'checkpoint')).toBe(false);
      // Only the recording, whole: no partial file left beside it.
      expect(readdirSync(folder)).toEqual(['run.ftlog']);
    });

    it.skipIf(!smallDisk.path)(
      `exits 74 with one line and leaves no recording when the disk fills up${smallDisk.reason ? ` (skipped: ${smallDisk.reason})` : ''}`,
      () => {
        const disk = smallDisk.path as string;
        const program = writeRawProgram(join(directory, 'chatty.bin'), chatty);
        const recording = join(disk, 'chatty.ftlog');
        const result = ftvmQuiet(['record', '--kernel', program, '-o', recording]);
        expect(result.status).toBe(74);
        expect(result.stderr).toBe(`ftvm: cannot write ${recording}: no space left on device (ENOSPC)\n`);
        expect(readdirSync(disk)).toEqual([]);
        // A file already at the name stays as it was.
        writeFileSync(recording, 'an older recording');
        expect(ftvmQuiet(['record', '--kernel', program, '-o', recording]).status).toBe(74);
        expect(readdirSync(disk)).toEqual(['chatty.ftlog']);
        expect(readFileSync(recording, 'utf8')).toBe('an older recording');
      },
    );

    it('leaves a killed run as NAME.XXXXXXXX.partial, a recording cut short, and nothing at NAME', async () => {
      const folder = mkdtempSync(join(directory, 'killed-'));
      const program = writeRawProgram(join(folder, 'echo.bin'), echoUntilQ);
      const recording = join(folder, 'echo.ftlog');
      const child = spawn(process.execPath, [bin, 'record', '--kernel', program, '-o', recording], {
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      try {
        child.stdin.write('abc');
        // The echo reaches the partial file in whole frames at the end of the slice.
        const partial = await waitFor(() => {
          const name = readdirSync(folder).find((file) => file.endsWith('.partial'));
          if (name === undefined) return undefined;
          const path = join(folder, name);
          try {
            return consoleOf(readRecordFile(new Uint8Array(readFileSync(path)))) === 'abc' ? path : undefined;
          } catch {
            return undefined; // read while the header's frame was still being written: try again
          }
        });
        expect(partial).toMatch(/echo\.ftlog\.[0-9a-f]{8}\.partial$/);
        child.kill('SIGKILL');
        await once(child, 'exit');
        expect(existsSync(recording)).toBe(false);
        const contents = readRecordFile(new Uint8Array(readFileSync(partial)));
        expect(contents.truncated).toBe(true);
        expect(consoleOf(contents)).toBe('abc');
      } finally {
        child.kill('SIGKILL');
      }
    });

    it('refuses a recording whose one length field is damaged (65), not replaying it as cut short', () => {
      const recording = join(directory, 'damaged-length.ftlog');
      expect(
        ftvm(['record', '--kernel', imagePath('hello'), '--clock', 'icount', '-o', recording]).status,
      ).toBe(0);
      const whole = new Uint8Array(readFileSync(recording));
      const entriesFrames = new FrameDecoder()
        .push(whole)
        .filter((frame) => frame.type === FrameType.entries);
      // The frames after it (an index point, the trailer) say the file was finished.
      expect(entriesFrames.length).toBeGreaterThan(0);
      const victim = entriesFrames[0] as { offset: number; length: number };
      const damaged = whole.slice();
      new DataView(damaged.buffer).setUint32(victim.offset + 4, whole.length, true);
      writeFileSync(recording, damaged);
      const replayed = ftvm(['replay', '-q', recording]);
      expect(replayed.status).toBe(65);
      expect(replayed.stderr).toMatch(/^ftvm: .*length field is damaged.*\n$/);
      expect(replayed.stderr).not.toMatch(/cut short/);
    });
  },
);
