/** The guest console on the process's stdio, QEMU `-nographic` style. */

/** What the console needs of the UART's host half. */
export interface ConsoleUart {
  receive(bytes: Uint8Array): void;
}

const CTRL_A = 0x01;

/**
 * Feeds stdin to the UART. On a terminal, stdin is put in raw mode so keys reach the guest as
 * typed; Ctrl-A x quits (as in QEMU) and Ctrl-A Ctrl-A sends one Ctrl-A. SIGINT and SIGTERM quit.
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
          quit();
          return;
        }
        if (byte === CTRL_A) forward.push(CTRL_A);
        continue;
      }
      if (byte === CTRL_A) escaped = true;
      else forward.push(byte);
    }
    if (forward.length > 0) uart.receive(Uint8Array.from(forward));
  };
  if (isTerminal) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('error', () => {});
  const onSignal = () => quit();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    detach() {
      stdin.off('data', onData);
      if (isTerminal) stdin.setRawMode(false);
      stdin.pause();
      stdin.unref?.();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/**
 * Collects console bytes and writes them in one go per slice: a write per guest byte would cost
 * more than the guest's own work for chatty guests.
 */
export class ConsoleWriter {
  private chunks: Uint8Array[] = [];

  constructor(private readonly stream: NodeJS.WritableStream = process.stdout) {}

  write(data: Uint8Array): void {
    this.chunks.push(data);
  }

  flush(): void {
    if (this.chunks.length === 0) return;
    this.stream.write(Buffer.concat(this.chunks));
    this.chunks = [];
  }
}
