import { spawnSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath } from '@ftvm/guests';
import { concatBytes, FrameDecoder, RecordFileWriter, readRecordFile } from '@ftvm/log-codec';
import { beforeAll, describe, expect, it } from 'vitest';
import { bin, built, ftvm, scratchDirectory } from './support.js';

const directory = scratchDirectory('ftvm-inputs-');

/** A FIFO nothing writes to: opening it for reading would block for ever. */
function fifo(name: string): string | undefined {
  const path = join(directory, name);
  return spawnSync('mkfifo', [path]).status === 0 ? path : undefined;
}

describe.skipIf(!built)('what run, record and replay read (needs `npm run build`)', () => {
  const clock = join(directory, 'clock.ftlog');
  let recordedOutput = '';
  beforeAll(() => {
    const recorded = ftvm(['record', '--kernel', imagePath('clock'), '--clock', 'icount', '-o', clock]);
    expect(recorded.status).toBe(0);
    recordedOutput = recorded.stdout;
  });

  it('refuses a device, a FIFO or a directory as an input before reading it (66)', () => {
    const pipe = fifo('pipe');
    const cases: [string[], RegExp][] = [
      [['run', '--kernel', '/dev/zero'], /^ftvm: cannot read kernel \/dev\/zero: not a regular file\n$/],
      [['replay', '/dev/zero'], /^ftvm: cannot read recording \/dev\/zero: not a regular file\n$/],
      [['run', '--kernel', directory], /^ftvm: cannot read kernel .*: is a directory\n$/],
      [
        ['run', '--kernel', imagePath('hello'), '--drive', 'file=/dev/zero'],
        /^ftvm: cannot read disk image \/dev\/zero: not a regular file\n$/,
      ],
    ];
    if (pipe) {
      cases.push([['run', '--kernel', pipe], /^ftvm: cannot read kernel .*pipe: not a regular file\n$/]);
      cases.push([['replay', pipe], /^ftvm: cannot read recording .*pipe: not a regular file\n$/]);
    }
    for (const [args, message] of cases) {
      // Reading /dev/zero or a FIFO would not end: a short timeout shows a hang as status null.
      const result = spawnSync(process.execPath, [bin, ...args], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(result.stderr).toMatch(message);
      expect(result.status).toBe(66);
    }
  });

  it('checks sizes before reading: a kernel larger than the RAM (64), a recording larger than the limit (65)', () => {
    // Sparse files: their size is what counts, no disk is used.
    const kernel = join(directory, 'big.bin');
    writeFileSync(kernel, '');
    truncateSync(kernel, 65 * 2 ** 20);
    const tooBig = ftvm(['run', '--kernel', kernel]);
    expect(tooBig.status).toBe(64);
    expect(tooBig.stderr).toBe(
      `ftvm: kernel ${kernel} (68157440 bytes) does not fit in 67108864 bytes of RAM; give the guest more memory (-m)\n`,
    );
    const recording = join(directory, 'big.ftlog');
    writeFileSync(recording, '');
    truncateSync(recording, 2 ** 31);
    const huge = ftvm(['replay', recording]);
    expect(huge.status).toBe(65);
    expect(huge.stderr).toBe(
      `ftvm: ${recording}: 2147483648 bytes is larger than a recording ftvm replays (2147483647 bytes)\n`,
    );
  });

  it('a RAM too small for the image: 64 with "give more memory" on run, bad data (65) in a recording', () => {
    const run = ftvm(['run', '--kernel', imagePath('hello'), '-m', '64K']);
    expect(run.status).toBe(64);
    expect(run.stderr).toMatch(/overlaps the device tree .*give the guest more memory/);

    const contents = readRecordFile(new Uint8Array(readFileSync(clock)));
    const { format: _format, version: _version, ...header } = contents.header;
    const writer = new RecordFileWriter();
    const small = join(directory, 'small-ram.ftlog');
    writeFileSync(
      small,
      concatBytes([
        writer.start({ ...header, machine: { ...(header.machine as object), ramSizeBytes: 64 * 1024 } }),
        ...contents.entries.map((entry) => writer.append(entry)),
        writer.finish(contents.trailer?.exitStatus ?? null),
      ]),
    );
    const replayed = ftvm(['replay', small]);
    expect(replayed.status).toBe(65);
    expect(replayed.stderr).toMatch(/^ftvm: .*small-ram\.ftlog: .*overlaps the device tree/);
  });

  it('replays a recording cut short only with --partial; without, a distinct status (64) that says so', () => {
    const whole = new Uint8Array(readFileSync(clock));
    const cut = join(directory, 'cut.ftlog');
    // Cut inside the last frame before the trailer, as a crash while writing it would.
    const lastEntries = new FrameDecoder().push(whole).at(-2);
    expect(lastEntries).toBeDefined();
    writeFileSync(
      cut,
      whole.subarray(0, (lastEntries?.offset ?? 0) + Math.floor((lastEntries?.length ?? 0) / 2)),
    );

    const refused = ftvm(['replay', cut]);
    expect(refused.status).toBe(64);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      /^ftvm: .*cut\.ftlog was cut short \(no trailer after its \d+ whole entries\); give --partial to replay what it holds\n$/,
    );

    const partial = ftvm(['replay', '--partial', cut]);
    expect(partial.stderr).toMatch(/was cut short; replaying its \d+ whole entries\n$/);
    expect(partial.status).toBe(0);
    expect(partial.stdout.length).toBeGreaterThan(0);
    expect(recordedOutput.startsWith(partial.stdout)).toBe(true);

    // A whole recording needs no flag, and --partial changes nothing for one.
    expect(ftvm(['replay', '--partial', '-q', clock]).status).toBe(0);
  });
});
