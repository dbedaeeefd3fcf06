import { closeSync, openSync, writeSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { PlainValue } from '@ftvm/core';
import { ConfigError, ExitStatus, FtvmError } from '@ftvm/core';
import { RecordFileWriter } from '@ftvm/log-codec';
import type { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import type { CliOutput } from '../index.js';
import { bytesDigest } from '../options.js';
import { closeLiveMachine, openLiveMachine, runLiveMachine } from './live-machine.js';
import { addMachineFlags, type MachineFlags } from './machine-options.js';

interface RecordFlags extends MachineFlags {
  output: string;
  checkpointInterval: string;
}

/** Steps between state-hash checkpoints in a recording, unless `--checkpoint-interval` says. */
export const DEFAULT_CHECKPOINT_INTERVAL_STEPS = 10_000_000;

/** `ftvm record`: runs like `ftvm run` and writes every input (and output) to a record file. */
export function addRecordCommand(
  program: Command,
  output: CliOutput,
  setExitStatus: (status: number) => void,
): void {
  addMachineFlags(
    program
      .command('record')
      .description('run a guest like `run` and record the run to a file that `ftvm replay` re-executes'),
  )
    .requiredOption('-o, --output <file>', 'the record file to write')
    .option(
      '--checkpoint-interval <steps>',
      'steps between state-hash checkpoints',
      String(DEFAULT_CHECKPOINT_INTERVAL_STEPS),
    )
    .action(async (flags: RecordFlags) => {
      setExitStatus(await recordGuest(flags, output));
    });
}

function openOutput(path: string): number {
  try {
    return openSync(path, 'w');
  } catch (error) {
    throw new FtvmError(`cannot write ${path}: ${(error as Error).message}`, 'FTVM_IO', ExitStatus.ioError, {
      cause: error,
    });
  }
}

async function recordGuest(flags: RecordFlags, output: CliOutput): Promise<number> {
  const writer = new RecordFileWriter();
  // The file is opened only once the machine stands: a bad flag must not empty an existing file.
  let file: number | undefined;
  const write = (bytes: Uint8Array) => {
    if (bytes.length === 0 || file === undefined) return;
    try {
      writeSync(file, bytes);
    } catch (error) {
      throw new FtvmError(
        `cannot write ${flags.output}: ${(error as Error).message}`,
        'FTVM_IO',
        ExitStatus.ioError,
      );
    }
  };
  const live = await openLiveMachine(flags, {
    mode: 'record',
    logOutputs: true,
    checkpointIntervalSteps: Number(flags.checkpointInterval),
    log: { append: (entry) => write(writer.append(entry)) },
  });
  try {
    if (resolve(flags.output) === resolve(flags.kernel)) {
      throw new ConfigError(`-o ${flags.output}: that is the kernel; write the recording elsewhere`);
    }
    file = openOutput(flags.output);
    write(
      writer.start({
        // What a replay needs to build the same machine: its devices beyond the configuration.
        machine: {
          ...(live.machine.config as Record<string, PlainValue>),
          network: flags.netdev !== undefined,
          rng: live.rng,
        },
        image: {
          name: basename(flags.kernel),
          digest: bytesDigest(live.image),
          bytes: live.image,
        },
        disks: live.virtio.disks.map((disk) => ({ ...disk })),
        writer: `ftvm ${packageJson.version}`,
      }),
    );
    // Whole frames reach the file at every slice: a crash loses at most the last slice.
    const result = await runLiveMachine(live, flags, output, () => write(writer.flush()));
    live.machine.endRecording();
    write(writer.finish(result.exitStatus ?? null));
    return result.exitStatus ?? 0;
  } finally {
    await closeLiveMachine(live);
    if (file !== undefined) closeSync(file);
  }
}
