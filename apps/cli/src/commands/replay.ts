import {
  ConfigError,
  DeviceError,
  DivergenceError,
  ExitStatus,
  FtvmError,
  progressMarkAfter,
} from '@ftvm/core';
import { type RecordFileContents, readRecordFile } from '@ftvm/log-codec';
import { type ClockMode, Machine, MemoryLog, RAM_SIZE_BYTES_MAX, runMachine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { CliOutput } from '../index.js';
import { bytesDigest, readInputFile } from '../options.js';
import { ConsoleWriter } from './console.js';
import { splitDeviceFlags, statsLine, userDevices } from './machine-options.js';
import { isRecordedDisk, replayVirtio } from './virtio-options.js';

interface ReplayFlags {
  device: string[];
  quiet?: boolean;
  stats?: boolean;
  progress: boolean;
}

/** `ftvm replay`: re-executes a recording and checks it does exactly what the recording did. */
export function addReplayCommand(
  program: Command,
  output: CliOutput,
  setExitStatus: (status: number) => void,
): void {
  program
    .command('replay')
    .description(
      're-execute a recording, checking outputs and state hashes; exits 65 at the first divergence',
    )
    .argument('<file>', 'a record file written by `ftvm record`')
    .option(
      '--device <module[,key=value...]>',
      'the same user devices the recording had (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('-q, --quiet', 'do not print the replayed console output')
    .option('--no-progress', 'no progress bar (shown only on a terminal anyway)')
    .option('--stats', 'print steps, seconds and MIPS on stderr at exit')
    .action(async (file: string, flags: ReplayFlags) => {
      setExitStatus(await replayRecording(file, flags, output));
    });
}

function badRecording(message: string): FtvmError {
  return new FtvmError(message, 'FTVM_LOG_FORMAT', ExitStatus.dataError);
}

async function replayRecording(path: string, flags: ReplayFlags, output: CliOutput): Promise<number> {
  const recording = readRecordFile(readInputFile(path, 'recording'));
  const { header } = recording;
  const config = header.machine as {
    ramSizeBytes?: unknown;
    clock?: unknown;
    realtimeBaseNs?: unknown;
    logOutputs?: unknown;
    bootArgs?: unknown;
    network?: unknown;
    rng?: unknown;
  };
  if (
    !Number.isSafeInteger(config?.ramSizeBytes) ||
    (config.ramSizeBytes as number) <= 0 ||
    (config.ramSizeBytes as number) % 4096 !== 0 ||
    (config.ramSizeBytes as number) > RAM_SIZE_BYTES_MAX ||
    (config.clock !== 'host' && config.clock !== 'icount')
  ) {
    throw badRecording(`${path}: the recording does not describe its machine`);
  }
  const image = header.image.bytes;
  if (!image) throw badRecording(`${path}: the recording does not hold its guest image`);
  const digest = bytesDigest(image);
  if (digest !== header.image.digest)
    throw badRecording(`${path}: the guest image in the recording is damaged`);

  const log = new MemoryLog();
  for (const entry of recording.entries) log.append(entry);
  if (recording.truncated) {
    // Cut short by a crash: replay its whole frames, up to the last point they reach.
    const last = recording.entries.at(-1);
    if (last && last.kind !== 'stop') log.append(progressMarkAfter(last));
    output.stderr(`ftvm: ${path} was cut short; replaying its ${recording.entries.length} whole entries\n`);
  }
  log.close();

  const disks = header.disks as readonly unknown[];
  if (!disks.every(isRecordedDisk)) throw badRecording(`${path}: the recording does not describe its disks`);
  const devices = await userDevices(splitDeviceFlags(flags.device).modules);
  const console = new ConsoleWriter();
  let machine: Machine;
  try {
    machine = new Machine({
      virtioSlots: replayVirtio(disks, config.network === true, config.rng === true),
      ramSizeBytes: config.ramSizeBytes as number,
      clock: config.clock as ClockMode,
      realtimeBaseNs: typeof config.realtimeBaseNs === 'number' ? config.realtimeBaseNs : undefined,
      bootArgs: typeof config.bootArgs === 'string' ? config.bootArgs : undefined,
      mode: 'replay',
      replayLog: log.reader(),
      logOutputs: config.logOutputs === true,
      replayOutputs: !flags.quiet,
      devices,
      onOutput: (item) => {
        if (item.kind === 'console') console.write(item.data);
      },
    });
  } catch (error) {
    for (const { device } of devices) device.dispose?.();
    // A configuration no machine can have is the recording's fault here, not the user's.
    if (ConfigError.is(error) || DeviceError.is(error)) throw badRecording(`${path}: ${error.message}`);
    throw error;
  }
  try {
    const recordedDevices = JSON.stringify((header.machine as { devices?: unknown }).devices);
    if (JSON.stringify((machine.config as { devices?: unknown }).devices) !== recordedDevices) {
      throw badRecording(`${path}: the recording had other devices; give the same --device flags`);
    }
    machine.loadImage(image, header.image.name);
    return await replayOn(machine, recording, path, flags, output, console);
  } finally {
    machine.dispose();
  }
}

async function replayOn(
  machine: Machine,
  recording: RecordFileContents,
  path: string,
  flags: ReplayFlags,
  output: CliOutput,
  console: ConsoleWriter,
): Promise<number> {
  const totalIcount = recording.trailer?.lastIcount ?? recording.entries.at(-1)?.icount ?? 0;
  const bar =
    flags.progress && process.stderr.isTTY
      ? new SingleBar({
          format: 'replay [{bar}] {percentage}% | icount {value}/{total}',
          stream: process.stderr,
        })
      : undefined;
  bar?.start(totalIcount, 0);
  const host = createNodeHost();
  const startNs = host.monotonicNs();
  try {
    const result = await runMachine(machine, host, {
      onProgress: () => {
        console.flush();
        bar?.update(Math.min(machine.cpu.icount, totalIcount));
      },
    });
    bar?.update(totalIcount);
    bar?.stop();
    console.flush();
    if (flags.stats) output.stderr(statsLine(result.steps, (host.monotonicNs() - startNs) / 1e9));
    return result.exitStatus ?? 0;
  } catch (error) {
    bar?.stop();
    console.flush();
    if (DivergenceError.is(error)) output.stderr(`ftvm: ${path}: ${error.message}\n`);
    else throw error;
    return error.exitStatus;
  }
}
