import { ExitStatus, FtvmError } from '@ftvm/core';
import { demoCommand } from '@ftvm/demo';
import { Command, CommanderError } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { addClusterCommands } from './commands/cluster.js';
import { addRecordCommand } from './commands/record.js';
import { addReplayCommand } from './commands/replay.js';
import { addRunCommand } from './commands/run.js';

/** Where the command writes; tests pass their own. */
export interface CliOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processOutput: CliOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Builds the `ftvm` command. `setExitStatus` receives the status a subcommand wants to exit with. */
export function buildProgram(
  output: CliOutput = processOutput,
  setExitStatus: (status: number) => void = () => {},
): Command {
  const program = new Command('ftvm')
    .description(
      'Fault-tolerant RISC-V virtual machines: run, record and replay guests; a fault-tolerant demo; a cluster',
    )
    .version(packageJson.version, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.stdout(text),
      writeErr: (text) => output.stderr(text),
      outputError: (text, write) => write(text.startsWith('error: ') ? `ftvm: ${text.slice(7)}` : text),
    });
  addRunCommand(program, output, setExitStatus);
  addRecordCommand(program, output, setExitStatus);
  addReplayCommand(program, output, setExitStatus);
  program.addCommand(demoCommand(setExitStatus).copyInheritedSettings(program));
  addClusterCommands(program, output);

  return program;
}

/** One line on stderr for the tool's own failures; the exit status says which kind (sysexits). */
export function reportFailure(error: unknown, output: CliOutput = processOutput): number {
  if (FtvmError.is(error)) {
    output.stderr(`ftvm: ${error.message}\n`);
    return error.exitStatus;
  }
  const message = error instanceof Error ? error.message : String(error);
  output.stderr(`ftvm: internal error: ${message}\n`);
  return ExitStatus.software;
}

/** Runs the command with `argv` (as `process.argv`: node, script, arguments…); returns the exit status. */
export async function main(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  let exitStatus = 0;
  const program = buildProgram(output, (status) => {
    exitStatus = status;
  });
  try {
    await program.parseAsync([...argv]);
    return exitStatus;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exitCode 0; usage errors were already printed.
      return error.exitCode === 0 ? 0 : ExitStatus.usage;
    }
    return reportFailure(error, output);
  }
}
