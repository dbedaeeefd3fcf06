/**
 * Write failures of the process's stdout and stderr (a full disk, a closed pipe). Node reports them
 * as an 'error' event, which, unheard, ends the process with a stack trace; here they are heard,
 * remembered and turned into the sysexits I/O status (74).
 */
import { HostIoError } from '@ftvm/core';

type Listener = (error: NodeJS.ErrnoException) => void;

interface Watch {
  failure: NodeJS.ErrnoException | undefined;
  readonly listeners: Set<Listener>;
}

const watches = new WeakMap<NodeJS.EventEmitter, Watch>();

function watchOf(stream: NodeJS.EventEmitter): Watch {
  let watch = watches.get(stream);
  if (!watch) {
    const created: Watch = { failure: undefined, listeners: new Set() };
    stream.on('error', (error: NodeJS.ErrnoException) => {
      created.failure ??= error;
      for (const listener of [...created.listeners]) listener(error);
    });
    watches.set(stream, created);
    watch = created;
  }
  return watch;
}

/** Starts listening for write failures of `stream` (once per stream; it never stops). */
export function watchOutput(stream: NodeJS.EventEmitter): void {
  watchOf(stream);
}

/** The first write failure of `stream`, if any. */
export function outputFailure(stream: NodeJS.EventEmitter): NodeJS.ErrnoException | undefined {
  return watches.get(stream)?.failure;
}

/** Calls `listener` at a write failure of `stream` (at once if it already failed); returns an unsubscribe. */
export function onOutputFailure(stream: NodeJS.EventEmitter, listener: Listener): () => void {
  const watch = watchOf(stream);
  if (watch.failure) listener(watch.failure);
  watch.listeners.add(listener);
  return () => watch.listeners.delete(listener);
}

/** A closed pipe (`ftvm run … | head`): the reader wanted no more, so it ends quietly. */
export function isClosedPipe(error: NodeJS.ErrnoException): boolean {
  return error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED';
}

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EPIPE: 'broken pipe',
  EIO: 'input/output error',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
};

/** A failed write to the standard output: 74, with no line when the pipe was closed by its reader. */
export class OutputError extends HostIoError {
  /** Whether to end without a message (a closed pipe). */
  readonly quiet: boolean;
  constructor(what: string, cause: NodeJS.ErrnoException) {
    const reason = (cause.code && REASONS[cause.code]) ?? cause.message;
    super(`cannot write ${what}: ${reason}`, { cause });
    this.quiet = isClosedPipe(cause);
  }
}
