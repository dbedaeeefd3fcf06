import type { Command } from 'commander';
import type { CliOutput } from '../index.js';
import { closeLiveMachine, openLiveMachine, runExitStatus, runLiveMachine } from './live-machine.js';
import { addMachineFlags, type MachineFlags } from './machine-options.js';

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
  const live = await openLiveMachine(flags);
  try {
    return runExitStatus(await runLiveMachine(live, flags, output));
  } finally {
    await closeLiveMachine(live);
  }
}
