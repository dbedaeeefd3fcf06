/**
 * What only the `ftvm` process itself does (bin/ftvm.js), not `main` called from a program: its
 * last-resort guards and its exit.
 */
import { reportFailure } from './index.js';
import { restoreTerminal } from './terminal.js';

/** How long the exit waits for stdout and stderr to take what was written (a reader that stalls). */
export const FLUSH_TIMEOUT_MS = 5000;

/**
 * Puts the terminal back at any exit, and turns an exception nothing caught (in a user device's
 * timer, say) into one line and a status instead of a stack trace.
 */
export function guardProcess(): void {
  process.on('exit', restoreTerminal);
  const fail = (error: unknown) => {
    restoreTerminal();
    process.exit(reportFailure(error));
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}

function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || !stream.writable) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, FLUSH_TIMEOUT_MS);
    stream.write('', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Exits with `status` once stdout and stderr are flushed. The status is final when the command
 * returns: the process must not wait for handles something else left open (a user device's
 * timer that its `dispose` did not clear), or a guest that powered off would leave ftvm hanging.
 */
export async function exitWhenFlushed(status: number): Promise<never> {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(status);
}
