import { Machine, type MachineOptions, type RunResult, runMachine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import type { CliOutput } from '../index.js';
import { readInputFile } from '../options.js';
import { attachConsole, ConsoleWriter } from './console.js';
import { type MachineFlags, ramSize, splitDeviceFlags, statsLine, userDevices } from './machine-options.js';
import { openVirtio, type VirtioSetup } from './virtio-options.js';

/** A machine built from the command line's flags, with its host pieces, for `run` and `record`. */
export interface LiveMachine {
  readonly machine: Machine;
  readonly host: ReturnType<typeof createNodeHost>;
  readonly console: ConsoleWriter;
  readonly virtio: VirtioSetup;
  /** The guest image's bytes. */
  readonly image: Uint8Array;
  /** Whether a virtio-rng device was asked for. */
  readonly rng: boolean;
}

/** Builds the machine the flags describe and loads the image; `options` add a mode and a log. */
export async function openLiveMachine(
  flags: MachineFlags,
  options: Pick<MachineOptions, 'mode' | 'log' | 'logOutputs' | 'checkpointIntervalSteps'> = {},
): Promise<LiveMachine> {
  const ramSizeBytes = ramSize(flags);
  const image = readInputFile(flags.kernel, 'kernel');
  const deviceFlags = splitDeviceFlags(flags.device);
  const devices = await userDevices(deviceFlags.modules);
  const virtio = await openVirtio({ drive: flags.drive, netdev: flags.netdev, rng: deviceFlags.rng });
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
    machine.loadImage(image, flags.kernel);
    return { machine, host, console, virtio, image, rng: deviceFlags.rng };
  } catch (error) {
    // Devices may hold host resources (timers, files) that would keep the process alive.
    if (machine) machine.dispose();
    else for (const { device } of devices) device.dispose?.();
    await virtio.close();
    throw error;
  }
}

/**
 * Runs it with the console on stdio until the guest powers off or the user quits (Ctrl-A x, a
 * signal); prints the `--stats` line. `afterSlice` runs after every slice.
 */
export async function runLiveMachine(
  live: LiveMachine,
  flags: Pick<MachineFlags, 'stats'>,
  output: CliOutput,
  afterSlice?: () => void,
): Promise<RunResult> {
  const abort = new AbortController();
  const input = attachConsole(live.machine.uart, () => abort.abort());
  const startNs = live.host.monotonicNs();
  try {
    const result = await runMachine(live.machine, live.host, {
      signal: abort.signal,
      onProgress: () => {
        live.console.flush();
        afterSlice?.();
      },
    });
    if (flags.stats) output.stderr(statsLine(result.steps, (live.host.monotonicNs() - startNs) / 1e9));
    return result;
  } finally {
    live.console.flush();
    input.detach();
  }
}

/** Releases what `openLiveMachine` opened (devices' host resources, disks, sockets). */
export async function closeLiveMachine(live: LiveMachine): Promise<void> {
  live.machine.dispose();
  await live.virtio.close();
}
