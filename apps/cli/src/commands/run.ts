import { Machine, runMachine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import type { Command } from 'commander';
import type { CliOutput } from '../index.js';
import { readInputFile } from '../options.js';
import { attachConsole, ConsoleWriter } from './console.js';
import {
  addMachineFlags,
  type MachineFlags,
  ramSize,
  splitDeviceFlags,
  statsLine,
  userDevices,
} from './machine-options.js';
import { openVirtio } from './virtio-options.js';

/** `ftvm run`: boots a guest image with the console on stdio and exits with the guest's status. */
export function addRunCommand(
  program: Command,
  output: CliOutput,
  setExitStatus: (status: number) => void,
): void {
  addMachineFlags(
    program
      .command('run')
      .description('run a guest image on the board (console on stdio); exits with the guest status'),
  ).action(async (flags: MachineFlags) => {
    setExitStatus(await runGuest(flags, output));
  });
}

async function runGuest(flags: MachineFlags, output: CliOutput): Promise<number> {
  const ramSizeBytes = ramSize(flags);
  const image = readInputFile(flags.kernel, 'kernel');
  const deviceFlags = splitDeviceFlags(flags.device);
  const devices = await userDevices(deviceFlags.modules);
  const virtio = await openVirtio({ drive: flags.drive, netdev: flags.netdev, rng: deviceFlags.rng });
  const host = createNodeHost();
  const console = new ConsoleWriter();
  const machine = new Machine({
    virtioSlots: virtio.slots,
    ramSizeBytes,
    clock: flags.clock,
    bootArgs: flags.append,

    hostClock: host,
    devices,
    onOutput: (item) => {
      if (item.kind === 'console') console.write(item.data);
      else virtio.handleOutput(item);
    },
  });
  machine.loadImage(image, flags.kernel);
  const abort = new AbortController();
  const input = attachConsole(machine.uart, () => abort.abort());
  const startNs = host.monotonicNs();
  try {
    const result = await runMachine(machine, host, {
      signal: abort.signal,
      onProgress: () => console.flush(),
    });
    if (flags.stats) output.stderr(statsLine(result.steps, (host.monotonicNs() - startNs) / 1e9));
    // Interrupted by the user (Ctrl-A x, or a signal): as QEMU, not a failure of the guest.
    return result.exitStatus ?? 0;
  } finally {
    console.flush();
    input.detach();
    machine.dispose();
    await virtio.close();
  }
}
