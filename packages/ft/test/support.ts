import { readFileSync } from 'node:fs';
import { MemoryArbiter, MemoryArbiterStore } from '@ftvm/arbiter';
import type { Handshake, LogChannel } from '@ftvm/core';
import { FT_PROTOCOL_VERSION } from '@ftvm/core';
import { type ImageName, imagePath } from '@ftvm/guests';
import { Machine, type MachineOptions, type MachineOutput } from '@ftvm/machine';
import { createMemoryChannelPair } from '@ftvm/transport';

export function loadGuest(name: ImageName): Uint8Array {
  return new Uint8Array(readFileSync(imagePath(name)));
}

/**
 * A logging channel between a primary and its backup in this process: the transport's memory
 * pair, with the handshake done. `disconnect()` cuts it (both ends see it close; bytes in flight
 * are lost).
 */
export async function memoryLink(
  vmId = 'vm1',
  epoch = 1,
): Promise<{
  primary: LogChannel;
  backup: LogChannel;
  disconnect(): void;
}> {
  const handshake = (role: 'primary' | 'backup'): Handshake => ({
    vmId,
    epoch,
    role,
    protocolVersion: FT_PROTOCOL_VERSION,
    host: role,
  });
  const pair = await createMemoryChannelPair({
    a: { handshake: handshake('primary') },
    b: { handshake: handshake('backup') },
  });
  return { primary: pair.a, backup: pair.b, disconnect: () => pair.link.disconnect() };
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

/** An in-memory arbiter where host-a owns epoch 1 of vm1 (as a pair booted together starts). */
export function arbiterAtEpochOne(): MemoryArbiter {
  const store = new MemoryArbiterStore();
  store.testAndSet('vm1', 0, 'host-a');
  return new MemoryArbiter({ store });
}
