import { ConfigError, ImageError } from '@ftvm/core';
import {
  looksLikeElf,
  Machine,
  type MachineOptions,
  RAM_SIZE_BYTES_MAX,
  type RunResult,
  runMachine,
} from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import type { CliOutput } from '../index.js';
import { checkInputFile, readInputFile, readInputHead } from '../options.js';
import { signalExitStatus, terminatingLine, trapRunStops } from '../terminal.js';
import { attachConsole, ConsoleWriter } from './console.js';
import {
  disposeDevices,
  firmwareOf,
  type MachineFlags,
  ramSize,
  splitDeviceFlags,
  statsLine,
  userDevices,
} from './machine-options.js';
import { openVirtio, type VirtioSetup } from './virtio-options.js';

/** A machine built from the command line's flags, with its host pieces, for `run` and `record`. */
export interface LiveMachine {
  readonly machine: Machine;
  readonly host: ReturnType<typeof createNodeHost>;
  readonly console: ConsoleWriter;
  readonly virtio: VirtioSetup;
  /** The guest image's bytes. */
  readonly image: Uint8Array;
  /** The firmware's bytes, when `--bios` gave one. */
  readonly firmware: Uint8Array | undefined;
  /** Whether a virtio-rng device was asked for. */
  readonly rng: boolean;
}

/** Builds the machine the flags describe and loads the image; `options` add a mode and a log. */
export async function openLiveMachine(
  flags: MachineFlags,
  options: Pick<MachineOptions, 'mode' | 'log' | 'logOutputs' | 'checkpointIntervalSteps'> = {},
): Promise<LiveMachine> {
  const ramSizeBytes = ramSize(flags);
  const image = readKernel(flags.kernel, ramSizeBytes);
  const firmwarePath = firmwareOf(flags);
  const firmware =
    firmwarePath === undefined ? undefined : readKernel(firmwarePath, ramSizeBytes, 'firmware');
  const deviceFlags = splitDeviceFlags(flags.device);
  const devices = await userDevices(deviceFlags.modules);
  let virtio: VirtioSetup;
  try {
    virtio = await openVirtio({ drive: flags.drive, netdev: flags.netdev, rng: deviceFlags.rng });
  } catch (error) {
    disposeDevices(devices);
    throw error;
  }
  let machine: Machine | undefined;
  try {
    const host = createNodeHost();
    const console = new ConsoleWriter();
    machine = new Machine({
      ...options,
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
    machine.loadImage(image, flags.kernel, {
      firmware: firmware && firmwarePath ? { bytes: firmware, name: firmwarePath } : undefined,
    });
    return { machine, host, console, virtio, image, firmware, rng: deviceFlags.rng };
  } catch (error) {
    // Devices may hold host resources (timers, files) that would keep the process alive.
    try {
      if (machine) machine.dispose();
      else disposeDevices(devices);
    } catch {
      // A device that fails to dispose too: the first error is the one to report.
    }
    await virtio.close();
    throw error;
  }
}

/**
 * Reads the kernel (or the firmware), its size checked first. A raw image must fit in the guest's RAM (more memory is
 * the fix: a usage matter, 64); an ELF file may be larger than what it loads (symbols, debug
 * information), so its segments are checked when loaded, and the file only against the largest
 * RAM there is (bad data beyond, 65).
 */
function readKernel(path: string, ramSizeBytes: number, what: 'kernel' | 'firmware' = 'kernel'): Uint8Array {
  const sizeBytes = checkInputFile(path, what);
  if (sizeBytes > ramSizeBytes && sizeBytes <= RAM_SIZE_BYTES_MAX && !looksLikeElf(readInputHead(path, 4))) {
    throw new ConfigError(
      `${what} ${path} (${sizeBytes} bytes) does not fit in ${ramSizeBytes} bytes of RAM; give the guest more memory (-m)`,
    );
  }
  return readInputFile(path, what, {
    maxBytes: RAM_SIZE_BYTES_MAX,
    tooLarge: (size) =>
      new ImageError(
        `${what} ${path} (${size} bytes) is larger than any guest RAM (${RAM_SIZE_BYTES_MAX} bytes)`,
      ),
  });
}

/** How a live run ended: the machine's result, and the signal that stopped it if one did. */
export interface LiveRunResult extends RunResult {
  /** The number of the signal (SIGINT 2, SIGTERM 15, SIGHUP 1) that stopped the run, if any. */
  readonly stoppedBySignal: number | undefined;
}

/**
 * The command's exit status for a run: 128 + N when signal N stopped it (as QEMU, and as shells
 * expect), the guest's own when it powered off, 0 when the user quit (Ctrl-A x, as in QEMU).
 */
export function runExitStatus(result: LiveRunResult): number {
  if (result.stoppedBySignal !== undefined) return signalExitStatus(result.stoppedBySignal);
  return result.exitStatus ?? 0;
}

/**
 * Runs it with the console on stdio until the guest powers off, the user quits (Ctrl-A x), a
 * signal stops it (`ftvm: terminating on signal N` on stderr; the result says which) or the console
 * cannot be written (the command then exits 74). Prints the `--stats` line. `afterSlice` runs after
 * every slice.
 */
export async function runLiveMachine(
  live: LiveMachine,
  flags: Pick<MachineFlags, 'stats'>,
  output: CliOutput,
  afterSlice?: () => void,
): Promise<LiveRunResult> {
  const stops = trapRunStops();
  const input = attachConsole(live.machine.uart, stops.stop);
  const startNs = live.host.monotonicNs();
  let result: RunResult;
  try {
    result = await runMachine(live.machine, live.host, {
      signal: stops.signal,
      onProgress: () => {
        live.console.flush();
        afterSlice?.();
      },
    });
  } finally {
    live.console.flush();
    input.detach();
    stops.release();
  }
  const stoppedBySignal = stops.stoppedBy(result.end);
  if (stoppedBySignal !== undefined) output.stderr(terminatingLine(stoppedBySignal));
  if (flags.stats) output.stderr(statsLine(result.steps, (live.host.monotonicNs() - startNs) / 1e9));
  return { ...result, stoppedBySignal };
}

/** Releases what `openLiveMachine` opened (devices' host resources, disks, sockets). */
export async function closeLiveMachine(live: LiveMachine): Promise<void> {
  live.machine.dispose();
  await live.virtio.close();
}
