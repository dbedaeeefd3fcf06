import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogEntry } from '@ftvm/core';
import { imagePath } from '@ftvm/guests';
import { concatBytes, FrameDecoder, RecordFileWriter, readRecordFile } from '@ftvm/log-codec';
import { describe, expect, it } from 'vitest';
import { built, echoUntilQ, ftvm, scratchDirectory, writeRawProgram } from './support.js';

const directory = scratchDirectory('ftvm-record-');

/** Rewrites a record file with `edit` applied to its entries (a well-formed file that lies). */
function rewrite(source: string, target: string, edit: (entries: LogEntry[]) => LogEntry[]): void {
  const contents = readRecordFile(new Uint8Array(readFileSync(source)));
  const writer = new RecordFileWriter();
  const { format: _format, version: _version, ...header } = contents.header;
  const parts = [writer.start(header)];
  for (const entry of edit(contents.entries)) parts.push(writer.append(entry));
  parts.push(writer.finish(contents.trailer?.exitStatus ?? null));
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

      const replayed = ftvm(['replay', cut]);
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
