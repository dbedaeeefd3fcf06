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
import type { Command } from 'commander';
import type { CliOutput } from '../index.js';
import { bytesDigest, readInputFile } from '../options.js';
import { ProgressLine } from '../progress.js';
import { onTerminalRestore, terminatingLine, trapRunStops } from '../terminal.js';
import { ConsoleWriter } from './console.js';
import { runExitStatus } from './live-machine.js';
import {
  BUILTIN_DEVICES,
  disposeDevices,
  splitDeviceFlags,
  statsLine,
  userDevices,
} from './machine-options.js';
import { UserDeviceError } from './user-device.js';
import { isRecordedDisk, replayVirtio } from './virtio-options.js';

interface ReplayFlags {
  device: string[];
  quiet?: boolean;
  stats?: boolean;
  progress: boolean;
  partial?: boolean;
}

/**
 * The largest record file `ftvm replay` reads: a replay holds the whole file in memory, and this is
 * the most Node reads into one buffer (2 GiB − 1). Larger is refused (65) before a byte is read.
 */
export const RECORDING_SIZE_BYTES_MAX = 2 ** 31 - 1;

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
    .option('--no-progress', 'no progress line (shown only when stderr is a terminal anyway)')
    .option(
      '--partial',
      'replay a recording cut short (no trailer: its recorder crashed) up to its last whole frame',
    )
    .option('--stats', 'print steps, seconds and MIPS on stderr at exit')
    .action(async (file: string, flags: ReplayFlags) => {
      setExitStatus(await replayRecording(file, flags, output));
    });
}

function badRecording(message: string): FtvmError {
  return new FtvmError(message, 'FTVM_LOG_FORMAT', ExitStatus.dataError);
}

/** The devices of the board itself, which every recording has: the rest came from `--device`. */
const BOARD_DEVICE = /^(test|rtc|clint|plic|uart|virtio[0-7])$/;

interface PlacedDevice {
  name: string;
  kind: string;
  base: number;
  irq: number;
}

/** The user devices of a machine configuration (a recording's or a replay's). */
function userDevicesOf(config: unknown): PlacedDevice[] {
  const devices = (config as { devices?: unknown } | null)?.devices;
  if (!Array.isArray(devices)) return [];
  return (devices as PlacedDevice[]).filter((device) => !BOARD_DEVICE.test(String(device?.name)));
}

function describeDevices(devices: readonly PlacedDevice[], rng: boolean): string {
  const names = devices.map(
    (device) => `${device.name} (${device.kind} at 0x${Number(device.base).toString(16)}, irq ${device.irq})`,
  );
  if (rng) names.push(BUILTIN_DEVICES[0]);
  return names.length > 0 ? names.join(', ') : 'none';
}

function readRecording(path: string): RecordFileContents {
  return readRecordFile(
    readInputFile(path, 'recording', {
      maxBytes: RECORDING_SIZE_BYTES_MAX,
      tooLarge: (sizeBytes) =>
        badRecording(
          `${path}: ${sizeBytes} bytes is larger than a recording ftvm replays (${RECORDING_SIZE_BYTES_MAX} bytes)`,
        ),
    }),
  );
}

async function replayRecording(path: string, flags: ReplayFlags, output: CliOutput): Promise<number> {
  const recording = readRecording(path);
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
  const firmware = header.firmware;
  if (firmware && !firmware.bytes) throw badRecording(`${path}: the recording does not hold its firmware`);
  if (firmware?.bytes && bytesDigest(firmware.bytes) !== firmware.digest)
    throw badRecording(`${path}: the firmware in the recording is damaged`);

  const log = new MemoryLog();
  for (const entry of recording.entries) log.append(entry);
  if (recording.truncated) {
    // Cut short by a crash: not damaged, but not the whole run either. A script must ask for a
    // partial replay, or it would take one for a replay of the whole run.
    if (!flags.partial) {
      throw new FtvmError(
        `${path} was cut short (no trailer after its ${recording.entries.length} whole entries); give --partial to replay what it holds`,
        'FTVM_LOG_FORMAT',
        ExitStatus.usage,
      );
    }
    // Replay its whole frames, up to the last point they reach.
    const last = recording.entries.at(-1);
    if (last && last.kind !== 'stop') log.append(progressMarkAfter(last));
    output.stderr(`ftvm: ${path} was cut short; replaying its ${recording.entries.length} whole entries\n`);
  }
  log.close();

  const disks = header.disks as readonly unknown[];
  if (!disks.every(isRecordedDisk)) throw badRecording(`${path}: the recording does not describe its disks`);
  const deviceFlags = splitDeviceFlags(flags.device);
  const devices = await userDevices(deviceFlags.modules);
  // Console bytes share the progress line's terminal when stdout is one too: then the line is
  // erased before each write (to a file or a pipe, they do not meet).
  const sharesTerminal = process.stdout.isTTY === true && !flags.quiet;
  const totalIcount = recording.trailer?.lastIcount ?? recording.entries.at(-1)?.icount ?? 0;
  const progress =
    flags.progress && process.stderr.isTTY
      ? new ProgressLine(process.stderr, totalIcount, sharesTerminal)
      : undefined;
  const console = new ConsoleWriter(
    process.stdout,
    progress && sharesTerminal
      ? { before: () => progress.clear(), after: (bytes) => progress.consoleWrote(bytes) }
      : undefined,
  );
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
    disposeDevices(devices);
    if (error instanceof UserDeviceError) throw error;
    // A configuration no machine can have is the recording's fault here, not the user's.
    if (ConfigError.is(error) || DeviceError.is(error)) throw badRecording(`${path}: ${error.message}`);
    throw error;
  }
  try {
    const recorded = userDevicesOf(header.machine);
    const given = userDevicesOf(machine.config);
    if (JSON.stringify(recorded) !== JSON.stringify(given) || (deviceFlags.rng && config.rng !== true)) {
      throw new ConfigError(
        `${path}: the recording had ${describeDevices(recorded, config.rng === true)}; ` +
          `given: ${describeDevices(given, deviceFlags.rng)}. Give the recording's devices with --device ` +
          `(${BUILTIN_DEVICES[0]}, a disk and the network come back by themselves)`,
      );
    }
    try {
      machine.loadImage(image, header.image.name, {
        firmware: firmware?.bytes ? { bytes: firmware.bytes, name: firmware.name } : undefined,
      });
    } catch (error) {
      // Too little RAM for the image (it overlaps the device tree): no flag fixes a recording.
      if (ConfigError.is(error)) throw badRecording(`${path}: ${error.message}`);
      throw error;
    }
    return await replayOn(machine, totalIcount, path, flags, output, console, progress);
  } finally {
    machine.dispose();
  }
}

async function replayOn(
  machine: Machine,
  totalIcount: number,
  path: string,
  flags: ReplayFlags,
  output: CliOutput,
  console: ConsoleWriter,
  progress: ProgressLine | undefined,
): Promise<number> {
  // Ctrl-C, a signal or a console that cannot be written stops the replay; the progress line goes
  // on every way out (a second signal, too).
  const stops = trapRunStops();
  const clearProgress = onTerminalRestore(() => progress?.clear());
  const host = createNodeHost();
  const startNs = host.monotonicNs();
  const finish = () => {
    console.flush();
    clearProgress();
  };
  try {
    progress?.update(0);
    const result = await runMachine(machine, host, {
      signal: stops.signal,
      onProgress: () => {
        console.flush();
        progress?.update(Math.min(machine.cpu.icount, totalIcount));
      },
    });
    finish();
    const stoppedBySignal = stops.stoppedBy(result.end);
    if (stoppedBySignal !== undefined) output.stderr(terminatingLine(stoppedBySignal));
    if (flags.stats) output.stderr(statsLine(result.steps, (host.monotonicNs() - startNs) / 1e9));
    return runExitStatus({ ...result, stoppedBySignal });
  } catch (error) {
    finish();
    if (!DivergenceError.is(error)) throw error;
    output.stderr(`ftvm: ${path}: ${error.message}\n`);
    return error.exitStatus;
  } finally {
    stops.release();
  }
}
