import { ExitStatus, FtvmError } from '@ftvm/core';
import { demoCommand } from '@ftvm/demo/command';
import { Command, CommanderError } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { addClusterCommands } from './commands/cluster.js';
import { addRecordCommand } from './commands/record.js';
import { addReplayCommand } from './commands/replay.js';
import { addRunCommand } from './commands/run.js';
import { OutputError, outputFailure, watchOutput } from './output-stream.js';
import { rewriteQemuArgs } from './qemu-args.js';

export { RECORDING_SIZE_BYTES_MAX } from './commands/replay.js';
export { exitWhenFlushed, guardProcess } from './process.js';

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
    // A closed pipe ends quietly, as other Unix tools do; anything else says what failed.
    if (!(error instanceof OutputError && error.quiet)) output.stderr(`ftvm: ${error.message}\n`);
    return error.exitStatus;
  }
  const message = error instanceof Error ? error.message : String(error);
  output.stderr(`ftvm: internal error: ${message}\n`);
  return ExitStatus.software;
}

/** A status the command chose for a failure of its own: sysexits (64–78), or 128 + a signal's number. */
function isOwnFailure(status: number): boolean {
  return (status >= ExitStatus.usage && status <= 78) || status >= 128;
}

/**
 * Whether stdout failed (a full disk, a closed pipe) while the command ran: then its output is not
 * all there, and unless the command already failed on its own, it exits 74.
 */
async function checkStdout(status: number, output: CliOutput): Promise<number> {
  // A failed write's 'error' event comes on a later tick than the write.
  await new Promise((resolve) => setImmediate(resolve));
  const failure = outputFailure(process.stdout);
  if (!failure || isOwnFailure(status)) return status;
  return reportFailure(new OutputError('standard output', failure), output);
}

/** Runs the command with `argv` (as `process.argv`: node, script, arguments…); returns the exit status. */
export async function main(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  const onProcessStdio = output === processOutput;
  if (onProcessStdio) {
    watchOutput(process.stdout);
    watchOutput(process.stderr);
  }
  const status = await runCommand(argv, output);
  return onProcessStdio ? await checkStdout(status, output) : status;
}

async function runCommand(argv: readonly string[], output: CliOutput): Promise<number> {
  if (argv.length <= 2) {
    // The whole usage would bury the one thing to say.
    output.stderr("ftvm: no command given; try 'ftvm --help'\n");
    return ExitStatus.usage;
  }
  let exitStatus = 0;
  const program = buildProgram(output, (status) => {
    exitStatus = status;
  });
  try {
    await program.parseAsync([...argv.slice(0, 2), ...rewriteQemuArgs(argv.slice(2))]);
    return exitStatus;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exitCode 0; usage errors were already printed.
      return error.exitCode === 0 ? 0 : ExitStatus.usage;
    }
    return reportFailure(error, output);
  }
}
