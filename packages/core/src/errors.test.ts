import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  DeviceError,
  DivergenceError,
  ExitStatus,
  FtvmError,
  HostIoError,
  ImageError,
  LogFormatError,
  SnapshotError,
} from './errors.js';

/** Builds an error the way a second copy of @ftvm/core would: same Symbol.for brand, other class. */
function errorFromAnotherCopy(code: string): Error {
  const error = new Error('from another copy');
  Object.defineProperty(error, Symbol.for('@ftvm/core/FtvmError'), { value: code });
  return error;
}

describe('error brands', () => {
  it('recognises every subclass as an FtvmError and as itself only', () => {
    const cases = [
      [new ConfigError('bad -m'), ConfigError],
      [new ImageError('not an ELF'), ImageError],
      [new DivergenceError('state-hash', 42, 'aa', 'bb'), DivergenceError],
      [new SnapshotError('bad version'), SnapshotError],
      [new LogFormatError('bad-checksum', 'frame checksum mismatch', 12), LogFormatError],
      [new DeviceError('address clash'), DeviceError],
      [new HostIoError('disk full'), HostIoError],
    ] as const;
    for (const [error, own] of cases) {
      expect(FtvmError.is(error)).toBe(true);
      expect(error).toBeInstanceOf(own);
      for (const [, other] of cases) expect(other.is(error)).toBe(other === own);
    }
  });

  it('works across copies of the package, where instanceof cannot', () => {
    const foreign = errorFromAnotherCopy('FTVM_DIVERGENCE');
    expect(foreign instanceof DivergenceError).toBe(false);
    expect(FtvmError.is(foreign)).toBe(true);
    expect(DivergenceError.is(foreign)).toBe(true);
    expect(ImageError.is(foreign)).toBe(false);
  });

  it('rejects values that are not ftvm errors', () => {
    for (const value of [null, undefined, 0, 'FTVM_IMAGE', new Error('plain'), {}, { code: 'FTVM_IMAGE' }]) {
      expect(FtvmError.is(value)).toBe(false);
      expect(ImageError.is(value)).toBe(false);
    }
  });
});

describe('error contents', () => {
  it('maps each kind of failure to its sysexits status', () => {
    expect(new ConfigError('x').exitStatus).toBe(ExitStatus.usage);
    expect(new ImageError('x').exitStatus).toBe(ExitStatus.dataError);
    expect(new DivergenceError('output', 1, 'a', 'b').exitStatus).toBe(65);
    expect(new LogFormatError('truncated', 'x').exitStatus).toBe(65);
    expect(new HostIoError('x').exitStatus).toBe(74);
    expect(new FtvmError('x').exitStatus).toBe(ExitStatus.software);
  });

  it('names the icount and what differed in a divergence', () => {
    const error = new DivergenceError('nondet-mismatch', 123456, 'key mtime', 'key entropy', 'device clint');
    expect(error.message).toBe(
      'replay diverged at icount 123456 (nondet-mismatch): expected key mtime, found key entropy; device clint',
    );
    expect(error.icount).toBe(123456);
    expect(error.kind).toBe('nondet-mismatch');
    expect(error.name).toBe('DivergenceError');
    expect(error.code).toBe('FTVM_DIVERGENCE');
  });

  it('keeps the byte offset and reason of a log format error, and the cause', () => {
    const cause = new RangeError('inner');
    const error = new LogFormatError('oversized', 'frame of 9 GiB exceeds frameBytesMax', 4096, { cause });
    expect(error.reason).toBe('oversized');
    expect(error.offset).toBe(4096);
    expect(error.message).toBe('frame of 9 GiB exceeds frameBytesMax (at byte 4096)');
    expect(error.cause).toBe(cause);
  });
});
