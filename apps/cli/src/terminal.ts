/**
 * The terminal and the signals that end a machine command: what was changed on the terminal is put
 * back on every way out, and a signal ends the command as QEMU does (a message, status 128 + N).
 */
import { constants } from 'node:os';
import { onOutputFailure } from './output-stream.js';

/** The signals that stop `run`, `record` and `replay`, as QEMU's own handler takes them. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The status a command stopped by signal `number` exits with, as shells report one killed by it. */
export function signalExitStatus(number: number): number {
  return 128 + number;
}

/** The line printed when a signal stops a machine (QEMU: `qemu-system-riscv32: terminating on signal 2`). */
export function terminatingLine(number: number): string {
  return `ftvm: terminating on signal ${number}\n`;
}

const restorers = new Set<() => void>();

/**
 * Registers what puts the terminal back (raw mode off, the progress line cleared); the returned
 * function runs it once and unregisters it. Whatever is still registered runs at process exit, so
 * even an exit no `finally` sees (a second signal, `process.exit`) leaves the terminal as it was.
 */
export function onTerminalRestore(restore: () => void): () => void {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    restorers.delete(once);
    try {
      restore();
    } catch {
      // The terminal may be gone (a hang-up): nothing left to put back.
    }
  };
  restorers.add(once);
  return once;
}

/** Runs every registered restorer now. */
export function restoreTerminal(): void {
  for (const restore of [...restorers]) restore();
}

/** A trap for {@link STOP_SIGNALS} while a machine runs. */
export interface SignalTrap {
  /** The number of the first signal received, if any. */
  readonly signal: number | undefined;
  release(): void;
}

/**
 * Traps SIGINT, SIGTERM and SIGHUP: the first calls `stop` (the command then ends by its normal
 * path, writing what it must, and exits 128 + N); a second one, for a command that does not stop,
 * restores the terminal and exits at once.
 */
export function trapStopSignals(stop: (signal: number) => void): SignalTrap {
  let received: number | undefined;
  const handlers = STOP_SIGNALS.map((name) => {
    const number = constants.signals[name];
    const handler = () => {
      if (received !== undefined) {
        restoreTerminal();
        process.stderr.write(terminatingLine(number));
        process.exit(signalExitStatus(number));
      }
      received = number;
      stop(number);
    };
    process.on(name, handler);
    return [name, handler] as const;
  });
  return {
    get signal() {
      return received;
    },
    release() {
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}

/** What stops a machine command's run besides its guest, while it runs. */
export interface RunStops {
  /** For `runMachine`: aborted at a stop. */
  readonly signal: AbortSignal;
  /** Stops the run (Ctrl-A x). */
  stop(): void;
  /** The number of the signal that stopped a run that ended with `end`, if one did. */
  stoppedBy(end: string): number | undefined;
  release(): void;
}

/**
 * Stops a run at a stop signal (see {@link trapStopSignals}), at a write failure of stdout (the
 * command then exits 74), or at {@link RunStops.stop}.
 */
export function trapRunStops(): RunStops {
  const abort = new AbortController();
  const stop = () => abort.abort();
  const signals = trapStopSignals(stop);
  const unwatch = onOutputFailure(process.stdout, stop);
  return {
    signal: abort.signal,
    stop,
    stoppedBy: (end) => (end === 'aborted' ? signals.signal : undefined),
    release() {
      unwatch();
      signals.release();
    },
  };
}
