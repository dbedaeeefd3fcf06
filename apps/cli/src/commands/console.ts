/** The guest console on the process's stdio, QEMU `-nographic` style. */
import { outputFailure, watchOutput } from '../output-stream.js';
import { onTerminalRestore } from '../terminal.js';

/** What the console needs of the UART's host half. */
export interface ConsoleUart {
  receive(bytes: Uint8Array): void;
}

const CTRL_A = 0x01;

/**
 * The escape keys ftvm supports, as QEMU -nographic lists them for Ctrl-A h (QEMU's other keys —
 * s, t, b, c — have nothing to act on here). It starts on a line of its own, as QEMU's does, and
 * plain LF ends a line: Node's raw mode keeps the terminal's LF → CR LF output translation.
 */
export const ESCAPE_HELP = ['', 'C-a h    print this help', 'C-a x    exit emulator', 'C-a C-a  sends C-a']
  .map((line) => `${line}\n`)
  .join('');

/**
 * Feeds stdin to the UART. On a terminal, stdin is put in raw mode so keys reach the guest as
 * typed (Ctrl-C too, as in QEMU); Ctrl-A x quits, Ctrl-A h prints the escape keys on stderr and
 * Ctrl-A Ctrl-A sends one Ctrl-A. Raw mode is undone on detach, or at exit if detach never runs.
 */
export function attachConsole(uart: ConsoleUart, quit: () => void): { detach(): void } {
  const stdin = process.stdin;
  const isTerminal = stdin.isTTY === true;
  let escaped = false;
  const onData = (chunk: Buffer) => {
    if (!isTerminal) {
      uart.receive(new Uint8Array(chunk));
      return;
    }
    const forward: number[] = [];
    for (const byte of chunk) {
      if (escaped) {
        escaped = false;
        if (byte === 0x78 /* x */) {
          if (forward.length > 0) uart.receive(Uint8Array.from(forward));
          quit();
          return;
        }
        if (byte === 0x68 /* h */) process.stderr.write(ESCAPE_HELP);
        else if (byte === CTRL_A) forward.push(CTRL_A);
        continue;
      }
      if (byte === CTRL_A) escaped = true;
      else forward.push(byte);
    }
    if (forward.length > 0) uart.receive(Uint8Array.from(forward));
  };
  const restore = onTerminalRestore(() => {
    if (isTerminal) stdin.setRawMode(false);
  });
  if (isTerminal) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('error', () => {});
  return {
    detach() {
      stdin.off('data', onData);
      restore();
      stdin.pause();
      stdin.unref?.();
    },
  };
}

/** What happens around each write of console bytes (the replay's progress line is erased first). */
export interface ConsoleWriteHooks {
  before(): void;
  after(bytes: Uint8Array): void;
}

/**
 * Collects console bytes and writes them in one go per slice: a write per guest byte would cost
 * more than the guest's own work for chatty guests.
 */
export class ConsoleWriter {
  private chunks: Uint8Array[] = [];

  constructor(
    private readonly stream: NodeJS.WritableStream = process.stdout,
    private readonly hooks?: ConsoleWriteHooks,
  ) {
    // A full disk or a closed pipe is heard here, not left to end the process with a stack trace.
    watchOutput(stream);
  }

  write(data: Uint8Array): void {
    this.chunks.push(data);
  }

  flush(): void {
    if (this.chunks.length === 0) return;
    const bytes = Buffer.concat(this.chunks);
    this.chunks = [];
    // Nothing more goes to a stream that failed: the command is stopping with 74.
    if (outputFailure(this.stream)) return;
    this.hooks?.before();
    this.stream.write(bytes);
    this.hooks?.after(bytes);
  }
}
