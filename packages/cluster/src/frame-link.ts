import { connect, type TLSSocket } from 'node:tls';
import { z } from 'zod';
import { NAME } from './api.js';
import { clientTlsOptions, explainTlsFailure } from './auth.js';
import type { Credentials } from './certs.js';
import { splitAddress } from './http.js';

/**
 * A VM's network link between a host and the gateway: mutual TLS (or TLS-PSK), then one hello line
 * of JSON (`{"vm":…,"host":…}`), then Ethernet frames, each as a 16-bit big-endian length and the
 * bytes.
 * The host end reconnects with a back-off when the link drops (frames sent meanwhile are lost, as
 * on a cable pulled for a moment; the guest's protocols retry).
 */

export const FRAME_BYTES_MAX = 65_535;
const HELLO_BYTES_MAX = 1024;

export const LINK_HELLO = z.object({ vm: NAME, host: NAME });
export type LinkHello = z.infer<typeof LINK_HELLO>;

/** Reads length-prefixed frames from a byte stream; a frame over the maximum ends the stream. */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (frame: Uint8Array) => void) {}

  /** Feeds bytes; returns false when the stream is malformed (close it). */
  push(chunk: Buffer): boolean {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 2) {
      const length = this.#pending.readUInt16BE(0);
      if (length === 0) return false;
      if (this.#pending.length < 2 + length) break;
      this.onFrame(new Uint8Array(this.#pending.subarray(2, 2 + length)));
      this.#pending = this.#pending.subarray(2 + length);
    }
    return true;
  }
}

export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + frame.length);
  out.writeUInt16BE(frame.length, 0);
  out.set(frame, 2);
  return out;
}

/** Reads the hello line from the start of a socket's bytes; the rest is handed back. */
export function readHello(socket: TLSSocket): Promise<{ hello: LinkHello; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline < 0) {
        if (buffered.length > HELLO_BYTES_MAX) fail(new Error('no hello line'));
        return;
      }
      socket.off('data', onData);
      try {
        const hello = LINK_HELLO.parse(JSON.parse(buffered.subarray(0, newline).toString('utf8')));
        resolve({ hello, rest: buffered.subarray(newline + 1) });
      } catch (error) {
        fail(error as Error);
      }
    };
    const fail = (error: Error) => {
      socket.off('data', onData);
      reject(error);
    };
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('closed before the hello')));
  });
}

/** The host end of a VM's network link; see the file comment. */
export class HostFrameLink {
  #socket: TLSSocket | undefined;
  #closed = false;
  #backoffMs = 100;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly credentials: Credentials,
    private readonly address: string,
    private readonly hello: LinkHello,
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly onState: (connected: boolean, error?: string) => void = () => {},
  ) {
    this.#connect();
  }

  send(frame: Uint8Array): void {
    if (frame.length === 0 || frame.length > FRAME_BYTES_MAX) return;
    const socket = this.#socket;
    if (socket && !socket.destroyed && socket.writable) socket.write(encodeFrame(frame));
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket?.destroy();
  }

  #connect(): void {
    if (this.#closed) return;
    const { host, port } = splitAddress(this.address);
    const socket = connect({ host, port, ...clientTlsOptions(this.credentials, host) });
    socket.setNoDelay(true);
    const reader = new FrameReader(this.onFrame);
    socket.once('secureConnect', () => {
      this.#socket = socket;
      this.#backoffMs = 100;
      socket.write(`${JSON.stringify(this.hello)}\n`);
      this.onState(true);
    });
    socket.on('data', (chunk: Buffer) => {
      if (!reader.push(chunk)) socket.destroy();
    });
    socket.on('error', (error) => this.onState(false, explainTlsFailure(this.credentials, error.message)));
    socket.on('close', () => {
      if (this.#socket === socket) this.#socket = undefined;
      if (this.#closed) return;
      this.#timer = setTimeout(() => this.#connect(), this.#backoffMs);
      this.#backoffMs = Math.min(2_000, this.#backoffMs * 2);
    });
  }
}
