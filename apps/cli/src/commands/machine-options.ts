import type { ClockMode, UserDeviceSpec } from '@ftvm/machine';
import { type Command, Option } from 'commander';
import { parseMemorySize } from '../options.js';
import { loadUserDevice } from './user-device.js';

/** The flags that describe the machine, shared by `run` and `record`. */
export interface MachineFlags {
  kernel: string;
  /** A firmware to boot the kernel through (QEMU's `-bios FILE`); `none` or absent: no firmware. */
  bios?: string;
  memory: string;
  clock: ClockMode;
  device: string[];
  stats?: boolean;
  append?: string;
  drive: string[];
  netdev?: string;
}

/** The firmware `--bios` names, if any (`none`, as on QEMU, is none). */
export function firmwareOf(flags: Pick<MachineFlags, 'bios'>): string | undefined {
  return flags.bios === undefined || flags.bios === 'none' ? undefined : flags.bios;
}

/** Devices built into the board that `--device` names as QEMU's `-device` does. */
export const BUILTIN_DEVICES = ['virtio-rng-device'] as const;

/** Splits `--device` values into built-in device names and user device modules. */
export function splitDeviceFlags(values: readonly string[]): { rng: boolean; modules: string[] } {
  const modules = values.filter((value) => !(BUILTIN_DEVICES as readonly string[]).includes(value));
  return { rng: values.includes('virtio-rng-device'), modules };
}

export function addMachineFlags(command: Command): Command {
  return command
    .requiredOption(
      '--kernel <file>',
      'guest image: an RV32 ELF executable, or a raw binary loaded at 0x80000000',
    )
    .option(
      '--bios <file>',
      'firmware (ELF or raw) loaded at 0x80000000 and started there, with --kernel after it as QEMU -bios does; none: boot --kernel directly',
    )
    .option('-m, --memory <size>', 'guest RAM, as QEMU -m (e.g. 64M, 1G)', '64M')
    .addOption(
      new Option('--clock <source>', 'guest time: the host clock, or derived from the instruction count')
        .choices(['host', 'icount'])
        .default('host'),
    )
    .option(
      '--device <module[,key=value...]>',
      'add virtio-rng-device, or a device from a module whose default export makes one (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option(
      '--drive <file=PATH[,format=raw][,readonly=on]>',
      'attach a raw disk image as a virtio-blk device (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option(
      '--netdev <spec>',
      'attach a virtio-net device on the user-mode network: user,hostfwd=udp:[HOSTIP]:HOSTPORT-:GUESTPORT[,hostfwd=…]',
    )
    .option('--append <cmdline>', 'kernel command line, as QEMU -append (the guest reads /chosen/bootargs)')
    .option('--stats', 'print steps, seconds and MIPS on stderr at exit');
}

/** Loads the user devices; when one fails, those already made are disposed (their timers stopped). */
export async function userDevices(specs: readonly string[]): Promise<UserDeviceSpec[]> {
  const devices: UserDeviceSpec[] = [];
  try {
    for (const spec of specs) devices.push(await loadUserDevice(spec, devices.length));
  } catch (error) {
    disposeDevices(devices);
    throw error;
  }
  return devices;
}

/** Disposes devices that no machine took (a machine disposes its own). */
export function disposeDevices(devices: readonly UserDeviceSpec[]): void {
  for (const { device } of devices) {
    try {
      device.dispose?.();
    } catch {
      // Already failing: the first error is the one to report.
    }
  }
}

export function ramSize(flags: Pick<MachineFlags, 'memory'>): number {
  return parseMemorySize(flags.memory);
}

/** The `--stats` line: `ftvm: steps=N seconds=S mips=M`. */
export function statsLine(steps: number, seconds: number): string {
  return `ftvm: steps=${steps} seconds=${seconds.toFixed(3)} mips=${(steps / Math.max(seconds, 1e-9) / 1e6).toFixed(1)}\n`;
}
