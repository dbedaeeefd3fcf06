import { readFileSync } from 'node:fs';
import type { LogSink, LogSource } from '@ftvm/core';
import { type ImageName, imagePath } from '@ftvm/guests';
import type { HostClock } from '../src/host.js';
import { Machine, type MachineOptions } from '../src/machine.js';

/**
 * A host clock under the test's control: it moves only when the test says, so a run with the
 * host clock mode is still reproducible in tests (the machine logs every reading anyway).
 */
export class ManualHostClock implements HostClock {
  monotonic = 1_000_000;
  realtime = 1_764_000_000_000_000_000;
  monotonicNs(): number {
    return this.monotonic;
  }
  realtimeNs(): number {
    return this.realtime + this.monotonic;
  }
  advance(ns: number): void {
    this.monotonic += ns;
  }
}

export interface GuestRun {
  machine: Machine;
  console: string;
  steps: number;
}

export function loadGuest(name: ImageName): Uint8Array {
  return new Uint8Array(readFileSync(imagePath(name)));
}

/**
 * Runs a machine synchronously until it stops. When the hart idles, time jumps to the next timer
 * (the manual clock advances), as a real host would after sleeping.
 */
export function runToEnd(machine: Machine, clock: ManualHostClock | undefined, stepLimit = 5e9): number {
  let steps = 0;
  let idleRounds = 0;
  while (!machine.isStopped && steps < stepLimit) {
    const outcome = machine.runSlice(1_000_000);
    steps += outcome.steps;
    // The host's clock moves while the guest runs: 10 ns per step, like a 100 MIPS host.
    clock?.advance(outcome.steps * 10);
    if (outcome.end === 'waiting') {
      const delay = machine.nextTimerDelayNs();
      if (delay === undefined)
        throw new Error(`guest waits for input that never comes (icount ${machine.cpu.icount})`);
      clock?.advance(delay);
      if (++idleRounds > 1_000_000) throw new Error('guest idles forever');
    }
    if (outcome.end === 'log-starved') throw new Error('replay starved: the log is not closed');
  }
  return steps;
}

export interface BootOptions extends Omit<MachineOptions, 'onOutput' | 'hostClock'> {
  clock?: MachineOptions['clock'];
  log?: LogSink;
  replayLog?: LogSource;
}

/** A machine with a guest loaded, its console captured and a manual host clock. */
function bootGuest(image: ImageName | Uint8Array, options: BootOptions) {
  const hostClock = new ManualHostClock();
  const chunks: number[] = [];
  const machine = new Machine({
    ...options,
    hostClock,
    replayOutputs: true,
    onOutput: (output) => {
      if (output.kind === 'console') chunks.push(...output.data);
    },
  });
  machine.loadImage(
    typeof image === 'string' ? loadGuest(image) : image,
    typeof image === 'string' ? image : 'image',
  );
  const consoleText = () => new TextDecoder().decode(Uint8Array.from(chunks));
  return { machine, hostClock, consoleText };
}

/** Boots a guest image and runs it to the end, returning its console output. */
export function runGuest(image: ImageName | Uint8Array, options: BootOptions = {}): GuestRun {
  const { machine, hostClock, consoleText } = bootGuest(image, options);
  const steps = runToEnd(machine, hostClock);
  return { machine, console: consoleText(), steps };
}

/**
 * As {@link runToEnd}, for guests whose devices do host I/O (a disk backend's promises): lets the
 * host's event loop run whenever the guest waits, and jumps time to the next timer only when no I/O
 * is pending.
 */
export async function runToEndAsync(
  machine: Machine,
  clock: ManualHostClock | undefined,
  stepLimit = 5e9,
): Promise<number> {
  let steps = 0;
  let idleRounds = 0;
  while (!machine.isStopped && steps < stepLimit) {
    const outcome = machine.runSlice(200_000);
    steps += outcome.steps;
    clock?.advance(outcome.steps * 10);
    if (outcome.end === 'waiting' || outcome.end === 'budget') {
      // Host I/O completes on the event loop; give it a turn.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (outcome.end === 'waiting' && !machine.hasPendingInput) {
        const delay = machine.nextTimerDelayNs();
        if (delay !== undefined) clock?.advance(delay);
        if (++idleRounds > 1_000_000) throw new Error('guest idles forever');
      }
    }
    if (outcome.end === 'log-starved') throw new Error('replay starved: the log is not closed');
  }
  return steps;
}

/** As {@link runGuest}, with virtio devices and host I/O. */
export async function runGuestAsync(image: ImageName, options: BootOptions = {}): Promise<GuestRun> {
  const { machine, hostClock, consoleText } = bootGuest(image, options);
  const steps = await runToEndAsync(machine, hostClock);
  return { machine, console: consoleText(), steps };
}

/** A raw RV32 program (loaded at the start of RAM) from its instruction words. */
export function program(words: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  words.forEach((word, index) => {
    view.setUint32(index * 4, word, true);
  });
  return bytes;
}
