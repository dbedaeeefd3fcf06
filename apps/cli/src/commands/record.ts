import { statSync } from 'node:fs';
import { basename, isAbsolute } from 'node:path';
import type { PlainValue } from '@ftvm/core';
import { ConfigError } from '@ftvm/core';
import { RecordFileWriter } from '@ftvm/log-codec';
import type { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import type { CliOutput } from '../index.js';
import { bytesDigest } from '../options.js';
import { closeLiveMachine, openLiveMachine, runExitStatus, runLiveMachine } from './live-machine.js';
import { addMachineFlags, firmwareOf, type MachineFlags, splitDeviceFlags } from './machine-options.js';
import { RecordOutput } from './record-output.js';
import { parseDriveSpec } from './virtio-options.js';

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
    .requiredOption('-o, --output <file>', 'the record file to write (not one of the inputs)')
    .option(
      '--checkpoint-interval <steps>',
      'steps between state-hash checkpoints (0: none)',
      String(DEFAULT_CHECKPOINT_INTERVAL_STEPS),
    )
    .addHelpText(
      'after',
      `
The recording is written to FILE.XXXXXXXX.partial beside FILE and renamed to FILE once it is whole
(after its trailer, on disk); after an error none is left. If ftvm is killed, the .partial file
stays: it holds every slice up to then, and \`ftvm replay\` replays it as a recording cut short.`,
    )
    .action(async (flags: RecordFlags) => {
      setExitStatus(await recordGuest(flags, output));
    });
}

/** `--checkpoint-interval`: a whole number of steps, 0 for none (what the machine accepts). */
export function parseCheckpointInterval(text: string): number {
  const steps = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(steps)) {
    throw new ConfigError(
      `--checkpoint-interval '${text}': expected a whole number of steps (0 for no checkpoints)`,
    );
  }
  return steps;
}

/** Device and inode of a file, or undefined when there is none to stat. */
function fileIdentity(path: string): { dev: bigint; ino: bigint } | undefined {
  try {
    const stats = statSync(path, { bigint: true });
    return { dev: stats.dev, ino: stats.ino };
  } catch {
    return undefined;
  }
}

/**
 * Refuses an output that is one of the run's inputs, under any name (a symlink, a hard link, another
 * path): the recording would replace the kernel, a disk or a device module. Compares files, not
 * paths. An input that does not exist is left to the open that reports it.
 */
function refuseOutputOverInput(flags: RecordFlags): void {
  const output = fileIdentity(flags.output);
  if (output === undefined) return;
  const firmware = firmwareOf(flags);
  const inputs = [
    { path: flags.kernel, what: 'the kernel' },
    ...(firmware === undefined ? [] : [{ path: firmware, what: 'the firmware' }]),
    ...flags.drive.map((spec) => ({ path: parseDriveSpec(spec).path, what: 'a --drive disk image' })),
    ...splitDeviceFlags(flags.device)
      .modules.map((spec) => spec.split(',')[0] ?? '')
      // A package name is not a file here (the module loader finds it); a path is.
      .filter((module) => module.startsWith('.') || isAbsolute(module))
      .map((module) => ({ path: module, what: 'a --device module' })),
  ];
  for (const input of inputs) {
    const identity = fileIdentity(input.path);
    if (identity?.dev === output.dev && identity.ino === output.ino) {
      throw new ConfigError(
        `-o ${flags.output}: that is ${input.what} (${input.path}); write the recording elsewhere`,
      );
    }
  }
}

async function recordGuest(flags: RecordFlags, output: CliOutput): Promise<number> {
  // Nothing is opened, written or truncated before the flags are known to be good.
  const checkpointIntervalSteps = parseCheckpointInterval(flags.checkpointInterval);
  refuseOutputOverInput(flags);
  const writer = new RecordFileWriter();
  // The file is opened only once the machine stands: a bad flag leaves no partial file behind.
  let file: RecordOutput | undefined;
  const write = (bytes: Uint8Array) => {
    if (bytes.length > 0) file?.write(bytes);
  };
  const live = await openLiveMachine(flags, {
    mode: 'record',
    logOutputs: true,
    checkpointIntervalSteps,
    log: { append: (entry) => write(writer.append(entry)) },
  });
  try {
    file = RecordOutput.open(flags.output);
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
        ...(live.firmware
          ? {
              firmware: {
                name: basename(firmwareOf(flags) as string),
                digest: bytesDigest(live.firmware),
                bytes: live.firmware,
              },
            }
          : {}),
        disks: live.virtio.disks.map((disk) => ({ ...disk })),
        writer: `ftvm ${packageJson.version}`,
      }),
    );
    // Whole frames reach the partial file at every slice: a crash loses at most the last slice.
    const result = await runLiveMachine(live, flags, output, () => write(writer.flush()));
    live.machine.endRecording();
    write(writer.finish(result.exitStatus ?? null));
    // Only a whole recording takes the output's name.
    file.commit();
    // Stopped by a signal: the recording is whole, and the status says the signal (128+N).
    return runExitStatus(result);
  } finally {
    // After an error: no file claims to be the recording (does nothing after a commit).
    file?.discard();
    await closeLiveMachine(live);
  }
}
