/**
 * Error classes shared by every ftvm package.
 *
 * Each class carries a brand registered with `Symbol.for`, so `FtvmError.is(x)` and
 * `DivergenceError.is(x)` work even when two copies of `@ftvm/core` end up in one program (a user's
 * device package pinned to another version, say), where `instanceof` would silently say no.
 *
 * Every error has a stable `code` (for logs and programs) and the sysexits status the `ftvm`
 * command exits with when the error reaches it.
 */

/** sysexits(3) statuses the `ftvm` command uses for its own failures. */
export const ExitStatus = {
  /** The command was used incorrectly: a bad flag or value. */
  usage: 64,
  /** The input data was malformed: an image, a log, a snapshot, a diverging replay. */
  dataError: 65,
  /** An input file did not exist or was not readable. */
  noInput: 66,
  /** An internal software error: a bug in ftvm. */
  software: 70,
  /** An error while reading or writing a file or socket. */
  ioError: 74,
} as const;
export type ExitStatus = (typeof ExitStatus)[keyof typeof ExitStatus];

const ftvmErrorBrand: unique symbol = Symbol.for('@ftvm/core/FtvmError') as never;

/** Stable machine-readable codes of {@link FtvmError}. */
export type FtvmErrorCode =
  | 'FTVM_ERROR'
  | 'FTVM_CONFIG'
  | 'FTVM_IMAGE'
  | 'FTVM_DIVERGENCE'
  | 'FTVM_SNAPSHOT'
  | 'FTVM_LOG_FORMAT'
  | 'FTVM_DEVICE'
  | 'FTVM_IO'
  | 'FTVM_ARBITER_UNAVAILABLE'
  | 'FTVM_CHANNEL';

export interface FtvmErrorOptions {
  cause?: unknown;
}

/**
 * Base class of every error an ftvm package throws on purpose. Anything else that escapes is a bug.
 */
export class FtvmError extends Error {
  /** The brand that {@link FtvmError.is} checks; one per class, shared by subclasses. */
  readonly [ftvmErrorBrand]: string;
  /** Machine-readable code, stable across versions. */
  readonly code: FtvmErrorCode;
  /** The sysexits status the `ftvm` command exits with for this error. */
  readonly exitStatus: ExitStatus;

  constructor(
    message: string,
    code: FtvmErrorCode = 'FTVM_ERROR',
    exitStatus: ExitStatus = ExitStatus.software,
    options?: FtvmErrorOptions,
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitStatus = exitStatus;
    this[ftvmErrorBrand] = code;
  }

  /** True for any ftvm error, from any copy of `@ftvm/core`. */
  static is(value: unknown): value is FtvmError {
    return typeof value === 'object' && value !== null && ftvmErrorBrand in value;
  }
}

/** Makes the cross-copy `is` check of one subclass, keyed by its code. */
function brandCheck<T extends FtvmError>(code: FtvmErrorCode) {
  return (value: unknown): value is T =>
    FtvmError.is(value) && (value as unknown as Record<symbol, unknown>)[ftvmErrorBrand] === code;
}

/** A bad setting: a flag, a memory size, a device configuration. */
export class ConfigError extends FtvmError {
  constructor(message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_CONFIG', ExitStatus.usage, options);
  }
  static override is = brandCheck<ConfigError>('FTVM_CONFIG');
}

/** A guest image that cannot be loaded: malformed, truncated, for another machine, outside RAM. */
export class ImageError extends FtvmError {
  constructor(message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_IMAGE', ExitStatus.dataError, options);
  }
  static override is = brandCheck<ImageError>('FTVM_IMAGE');
}

/** What a replay found different from the log it follows. */
export type DivergenceKind =
  /** The guest read a non-deterministic value under another key than the log holds at this point. */
  | 'nondet-mismatch'
  /** The log holds an entry the replay never reached or consumed out of order. */
  | 'missing-entry'
  /** The replay needed an entry (a non-deterministic read) that the log does not hold. */
  | 'extra-entry'
  /** A state-hash checkpoint differs. */
  | 'state-hash'
  /** The guest's output (console bytes, frames) differs from what was recorded. */
  | 'output'
  /** The replay ended (guest stopped) at another point than the recording. */
  | 'end';

/**
 * A replay that no longer does what the recording did. Replay stops at once: continuing would
 * silently produce a different execution.
 */
export class DivergenceError extends FtvmError {
  /** The execution point (steps since boot) where the divergence was seen. */
  readonly icount: number;
  readonly kind: DivergenceKind;
  /** What was expected (from the log) and what was found, as short human-readable strings. */
  readonly expected: string;
  readonly actual: string;

  constructor(kind: DivergenceKind, icount: number, expected: string, actual: string, detail?: string) {
    super(
      `replay diverged at icount ${icount} (${kind}): expected ${expected}, found ${actual}${detail ? `; ${detail}` : ''}`,
      'FTVM_DIVERGENCE',
      ExitStatus.dataError,
    );
    this.kind = kind;
    this.icount = icount;
    this.expected = expected;
    this.actual = actual;
  }
  static override is = brandCheck<DivergenceError>('FTVM_DIVERGENCE');
}

/** A snapshot that cannot be restored: wrong format, version, machine shape or a damaged section. */
export class SnapshotError extends FtvmError {
  constructor(message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_SNAPSHOT', ExitStatus.dataError, options);
  }
  static override is = brandCheck<SnapshotError>('FTVM_SNAPSHOT');
}

/** Why a log frame or file was refused. Each is distinct so callers can tell damage from misuse. */
export type LogFormatReason =
  | 'bad-magic'
  | 'unsupported-version'
  | 'bad-checksum'
  | 'truncated'
  | 'oversized'
  | 'malformed-entry'
  | 'out-of-order';

/** Corrupt, truncated, oversized, wrong-version or hostile log input. */
export class LogFormatError extends FtvmError {
  readonly reason: LogFormatReason;
  /** Byte offset in the stream or file where the problem was found, when known. */
  readonly offset: number | undefined;
  constructor(reason: LogFormatReason, message: string, offset?: number, options?: FtvmErrorOptions) {
    super(
      `${message}${offset === undefined ? '' : ` (at byte ${offset})`}`,
      'FTVM_LOG_FORMAT',
      ExitStatus.dataError,
      options,
    );
    this.reason = reason;
    this.offset = offset;
  }
  static override is = brandCheck<LogFormatError>('FTVM_LOG_FORMAT');
}

/** A device that cannot be attached or configured (address clash, bad backend, full slot table). */
export class DeviceError extends FtvmError {
  constructor(message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_DEVICE', ExitStatus.usage, options);
  }
  static override is = brandCheck<DeviceError>('FTVM_DEVICE');
}

/** A host I/O failure: a file, a socket. */
export class HostIoError extends FtvmError {
  constructor(message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_IO', ExitStatus.ioError, options);
  }
  static override is = brandCheck<HostIoError>('FTVM_IO');
}

/** The arbiter could not be reached, or could not say: the caller must not act as if it had won. */
export class ArbiterUnavailableError extends FtvmError {
  constructor(message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_ARBITER_UNAVAILABLE', ExitStatus.ioError, options);
  }
  static override is = brandCheck<ArbiterUnavailableError>('FTVM_ARBITER_UNAVAILABLE');
}

/** Why a logging channel was refused or closed. */
export type ChannelErrorReason =
  /** The peer failed authentication (wrong key, no or untrusted certificate). */
  | 'authentication'
  /** The peer speaks another protocol version. */
  | 'version'
  /** The peer claims an epoch older than ours, or another VM. */
  | 'stale-epoch'
  | 'wrong-vm'
  /** The peer's handshake or a later frame was malformed, corrupt or too large. */
  | 'protocol'
  /** The connection could not be made, was reset or timed out. */
  | 'connection';

/** A logging channel that was refused at its handshake or closed by an error. */
export class ChannelError extends FtvmError {
  readonly reason: ChannelErrorReason;
  constructor(reason: ChannelErrorReason, message: string, options?: FtvmErrorOptions) {
    super(message, 'FTVM_CHANNEL', ExitStatus.ioError, options);
    this.reason = reason;
  }
  static override is = brandCheck<ChannelError>('FTVM_CHANNEL');
}
