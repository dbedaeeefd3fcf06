// Shared by this package's tests: whether QEMU and the guest toolchain are here, free ports, and a
// UDP client for the network guests.
import { spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { referenceQemuAvailable } from './qemu.js';
import { guestCompiler } from './sdk-build.js';

export const qemuMissing = referenceQemuAvailable()
  ? undefined
  : 'qemu-system-riscv32 is not installed (Debian: qemu-system-misc); skipping the QEMU runs';

export function guestToolchainVersion(): string | undefined {
  const result = spawnSync(guestCompiler, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.split('\n')[0] : undefined;
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolvePromise) => socket.bind(0, '127.0.0.1', resolvePromise));
  const { port } = socket.address();
  await new Promise<void>((resolvePromise) => socket.close(() => resolvePromise()));
  return port;
}

/** A UDP client bound to its own port (so the server sees one client per instance). */
export class UdpClient {
  readonly #socket: Socket = createSocket('udp4');
  readonly #received: Buffer[] = [];
  #wake: (() => void) | undefined;

  constructor(readonly serverPort: number) {
    this.#socket.on('message', (message) => {
      this.#received.push(message);
      this.#wake?.();
    });
  }

  send(payload: string | Buffer): void {
    this.#socket.send(payload, this.serverPort, '127.0.0.1');
  }

  /** The next datagram received, or undefined after `timeoutMs`. */
  async next(timeoutMs: number): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.#received.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolvePromise) => {
        const timer = setTimeout(resolvePromise, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolvePromise();
        };
      });
      this.#wake = undefined;
    }
    return this.#received.shift();
  }

  /**
   * Sends `payload` and returns the first reply that `accept`s, resending the very same datagram
   * if none comes within a second (UDP may drop it; the protocol makes resending safe).
   */
  async request(payload: string, accept: (reply: string) => boolean = () => true): Promise<string> {
    for (let attempt = 0; attempt < 10; attempt++) {
      this.send(payload);
      for (;;) {
        const reply = await this.next(1000);
        if (reply === undefined) break;
        const text = reply.toString('latin1');
        if (accept(text)) return text;
      }
    }
    throw new Error(`no reply to ${JSON.stringify(payload)}`);
  }

  close(): void {
    this.#socket.close();
  }
}
