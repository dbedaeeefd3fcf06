import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitStatus, HostIoError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { describeIoError, RecordOutput, type WriteBytes } from './record-output.js';

const directory = mkdtempSync(join(tmpdir(), 'ftvm-record-output-'));
let fresh = 0;

/** A new folder for one test, and the output path in it. */
function outputPath(): { folder: string; path: string } {
  const folder = join(directory, `case${fresh++}`);
  mkdirSync(folder);
  return { folder, path: join(folder, 'run.ftlog') };
}

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}, write`), { code });
}

/** Catches what `action` throws. */
function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('nothing was thrown');
}

const bytes = (length: number, seed = 1) => Uint8Array.from({ length }, (_, i) => (i * 31 + seed) & 255);

describe('RecordOutput', () => {
  it('continues short writes until every byte is written, and puts the file in place at commit', () => {
    const { folder, path } = outputPath();
    const calls: number[] = [];
    // A file system that takes at most 7 bytes a call, as a disk that is full for a moment does.
    const shortWrite: WriteBytes = (fd, data, offset, length) => {
      calls.push(length);
      return writeSync(fd, data, offset, Math.min(length, 7));
    };
    const output = RecordOutput.open(path, { write: shortWrite });
    const first = bytes(100);
    const second = bytes(33, 5);
    output.write(first);
    output.write(second);
    expect(calls.length).toBeGreaterThan(2);
    // Not at its name before it is whole.
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(folder)).toEqual([expect.stringMatching(/^run\.ftlog\.[0-9a-f]{8}\.partial$/)]);
    output.commit();
    expect(new Uint8Array(readFileSync(path))).toEqual(Uint8Array.from([...first, ...second]));
    expect(readdirSync(folder)).toEqual(['run.ftlog']);
  });

  it('reports a failed write as one line naming the file, with exit status 74, and leaves no file', () => {
    const { folder, path } = outputPath();
    let written = 0;
    const fillsUp: WriteBytes = (fd, data, offset, length) => {
      if (written >= 50) throw errno('ENOSPC', 'no space left on device');
      const count = writeSync(fd, data, offset, Math.min(length, 50 - written));
      written += count;
      return count;
    };
    const output = RecordOutput.open(path, { write: fillsUp });
    const error = thrownBy(() => output.write(bytes(80)));
    expect(HostIoError.is(error)).toBe(true);
    expect((error as HostIoError).exitStatus).toBe(ExitStatus.ioError);
    expect((error as Error).message).toBe(`cannot write ${path}: no space left on device (ENOSPC)`);
    // Failed for good: nothing more is written, and nothing is committed.
    expect(thrownBy(() => output.write(bytes(1)))).toBe(error);
    expect(thrownBy(() => output.commit())).toBe(error);
    output.discard();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('fails instead of looping when a write writes nothing', () => {
    const { folder, path } = outputPath();
    const output = RecordOutput.open(path, { write: () => 0 });
    expect(() => output.write(bytes(10))).toThrow(/cannot write .*wrote none/);
    output.discard();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('leaves no file when the recording cannot be made durable', () => {
    const { folder, path } = outputPath();
    const output = RecordOutput.open(path, {
      fsync: () => {
        throw errno('EIO', 'i/o error');
      },
    });
    output.write(bytes(10));
    expect(() => output.commit()).toThrow(`cannot write ${path}: i/o error (EIO)`);
    output.discard();
    expect(readdirSync(folder)).toEqual([]);
  });

  it('leaves a file already at the path as it was until the new one is whole, then keeps its mode', () => {
    const { path } = outputPath();
    writeFileSync(path, 'an older recording');
    chmodSync(path, 0o600);
    const failing = RecordOutput.open(path, {
      write: () => {
        throw errno('EIO', 'i/o error');
      },
    });
    expect(() => failing.write(bytes(10))).toThrow(HostIoError);
    failing.discard();
    expect(readFileSync(path, 'utf8')).toBe('an older recording');
    const output = RecordOutput.open(path);
    output.write(bytes(10));
    expect(readFileSync(path, 'utf8')).toBe('an older recording');
    output.commit();
    expect(new Uint8Array(readFileSync(path))).toEqual(bytes(10));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('writes through a symlink to the file it names, keeping the link', () => {
    const { folder, path } = outputPath();
    const elsewhere = join(folder, 'real.ftlog');
    writeFileSync(elsewhere, 'old');
    symlinkSync('real.ftlog', path);
    const output = RecordOutput.open(path);
    output.write(bytes(12));
    output.commit();
    expect(lstatSync(path).isSymbolicLink()).toBe(true);
    expect(new Uint8Array(readFileSync(elsewhere))).toEqual(bytes(12));
  });

  it('writes a device in place, never renaming over it', () => {
    const output = RecordOutput.open('/dev/null');
    expect(output.partialPath).toBeUndefined();
    output.write(bytes(64));
    output.commit();
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });

  it('refuses a directory, or a folder that does not exist, with status 74', () => {
    const { folder } = outputPath();
    const error = thrownBy(() => RecordOutput.open(folder));
    expect((error as HostIoError).exitStatus).toBe(ExitStatus.ioError);
    expect((error as Error).message).toBe(`cannot write ${folder}: is a directory`);
    expect(() => RecordOutput.open(join(folder, 'missing', 'run.ftlog'))).toThrow(
      /cannot write .*run\.ftlog: no such file or directory \(ENOENT\)$/,
    );
  });

  it('names the error without the temporary path', () => {
    expect(
      describeIoError(new Error("EACCES: permission denied, open '/x/run.ftlog.1a2b3c4d.partial'")),
    ).toBe('permission denied (EACCES)');
    expect(describeIoError(new Error('something else'))).toBe('something else');
  });
});
