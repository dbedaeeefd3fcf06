import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import type { PlainValue } from '@ftvm/core';
import { ExitStatus, FtvmError } from '@ftvm/core';
import { RecordFileWriter } from '@ftvm/log-codec';
import { Machine, runMachine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import type { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
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
  const ramSizeBytes = ramSize(flags);
  const checkpointIntervalSteps = Number(flags.checkpointInterval);
  const image = readInputFile(flags.kernel, 'kernel');
  const deviceFlags = splitDeviceFlags(flags.device);
  const devices = await userDevices(deviceFlags.modules);
  const virtio = await openVirtio({ drive: flags.drive, netdev: flags.netdev, rng: deviceFlags.rng });
  const file = openOutput(flags.output);
  const writer = new RecordFileWriter();
  const write = (bytes: Uint8Array) => {
    if (bytes.length === 0) return;
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
  const host = createNodeHost();
  const console = new ConsoleWriter();
  const machine = new Machine({
    virtioSlots: virtio.slots,
    ramSizeBytes,
    clock: flags.clock,
    bootArgs: flags.append,

    hostClock: host,
    devices,
    mode: 'record',
    logOutputs: true,
    checkpointIntervalSteps,
    log: { append: (entry) => write(writer.append(entry)) },
    onOutput: (item) => {
      if (item.kind === 'console') console.write(item.data);
      else virtio.handleOutput(item);
    },
  });
  machine.loadImage(image, flags.kernel);
  write(
    writer.start({
      // What a replay needs to build the same machine: its devices beyond the configuration.
      machine: {
        ...(machine.config as Record<string, PlainValue>),
        network: flags.netdev !== undefined,
        rng: deviceFlags.rng,
      },
      image: {
        name: basename(flags.kernel),
        digest: `sha256:${createHash('sha256').update(image).digest('hex')}`,
        bytes: image,
      },
      disks: virtio.disks.map((disk) => ({ ...disk })),
      writer: `ftvm ${packageJson.version}`,
    }),
  );
  const abort = new AbortController();
  const input = attachConsole(machine.uart, () => abort.abort());
  const startNs = host.monotonicNs();
  try {
    const result = await runMachine(machine, host, {
      signal: abort.signal,
      onProgress: () => {
        console.flush();
        // Whole frames reach the file at every slice: a crash loses at most the last slice.
        write(writer.flush());
      },
    });
    machine.endRecording();
    write(writer.finish(result.exitStatus ?? null));
    if (flags.stats) output.stderr(statsLine(result.steps, (host.monotonicNs() - startNs) / 1e9));
    return result.exitStatus ?? 0;
  } finally {
    console.flush();
    input.detach();
    machine.dispose();
    closeSync(file);
    await virtio.close();
  }
}
