import { readFileSync } from 'node:fs';
import type { FtMessage, Handshake, LogChannel } from '@ftvm/core';
import { FT_PROTOCOL_VERSION } from '@ftvm/core';
import { type ImageName, imagePath } from '@ftvm/guests';
import { Machine, type MachineOptions, type MachineOutput } from '@ftvm/machine';

export function loadGuest(name: ImageName): Uint8Array {
  return new Uint8Array(readFileSync(imagePath(name)));
}

/** Two ends of an in-process channel whose messages arrive on a later turn of the event loop. */
export function channelPair(vmId = 'vm1'): {
  primary: LogChannel;
  backup: LogChannel;
  /** Cuts the link: both ends see it close with an error; messages in flight are lost. */
  disconnect(): void;
} {
  const handshake = (role: 'primary' | 'backup'): Handshake => ({
    vmId,
    epoch: 1,
    role,
    protocolVersion: FT_PROTOCOL_VERSION,
    host: role,
  });
  let cut = false;
  const end = (peerRole: 'primary' | 'backup') => {
    let onMessage: (message: FtMessage) => void = () => {};
    let onClose: (error: Error | undefined) => void = () => {};
    let closed = false;
    const channel = {
      peer: handshake(peerRole),
      bufferedBytes: 0,
      other: undefined as unknown as { deliver(message: FtMessage): void; shut(error?: Error): void },
      send(message: FtMessage) {
        if (closed || cut) return;
        const other = channel.other;
        setImmediate(() => {
          if (!cut) other.deliver(message);
        });
      },
      onMessage(listener: (message: FtMessage) => void) {
        onMessage = listener;
      },
      onClose(listener: (error: Error | undefined) => void) {
        onClose = listener;
      },
      close() {
        if (closed) return;
        closed = true;
        onClose(undefined);
        const other = channel.other;
        setImmediate(() => other.shut());
      },
      get closed() {
        return closed;
      },
      deliver(message: FtMessage) {
        if (!closed) onMessage(message);
      },
      shut(error?: Error) {
        if (closed) return;
        closed = true;
        onClose(error);
      },
    };
    return channel;
  };
  const primary = end('backup');
  const backup = end('primary');
  primary.other = backup;
  backup.other = primary;
  return {
    primary,
    backup,
    disconnect() {
      cut = true;
      setImmediate(() => {
        primary.shut(new Error('link cut'));
        backup.shut(new Error('link cut'));
      });
    },
  };
}

/** Console bytes of released outputs, as text. */
export class ConsoleCapture {
  bytes: number[] = [];
  deliver = (output: MachineOutput): void => {
    if (output.kind === 'console') for (const byte of output.data) this.bytes.push(byte);
  };
  get text(): string {
    return new TextDecoder().decode(Uint8Array.from(this.bytes));
  }
}

/** A standalone run of an image with the deterministic clock: the reference console. */
export function standaloneConsole(
  image: ImageName,
  options: Partial<MachineOptions> = {},
): { console: string; exitStatus: number | undefined } {
  const capture = new ConsoleCapture();
  const machine = new Machine({ clock: 'icount', ...options, onOutput: capture.deliver });
  machine.loadImage(loadGuest(image), image);
  for (let round = 0; round < 100_000 && !machine.isStopped; round++) {
    const outcome = machine.runSlice(1_000_000);
    if (outcome.end === 'waiting' && machine.nextTimerDelayNs() === undefined) break;
  }
  return { console: capture.text, exitStatus: machine.exitStatus };
}
