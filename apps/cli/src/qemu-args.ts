/**
 * QEMU spellings on ftvm's machine commands. People arrive with QEMU command lines: `-kernel X`
 * (which commander would read as `-k ernel`), `-monitor stdio` (read as `-m onitor`). Before
 * commander parses, `run` and `record` arguments are rewritten: QEMU's single-dash long options
 * that ftvm shares become ftvm's, the ones that mean nothing here (`-nographic`, `-machine virt`)
 * go, and the ones ftvm does not have are refused by name.
 */
import { ConfigError } from '@ftvm/core';
import { referenceQemuCpu } from '@ftvm/guests';

/** The commands that take a machine's flags. */
const MACHINE_COMMANDS = new Set(['run', 'record']);

/** ftvm's own flags of `run` and `record` that take a value: their values are never rewritten. */
const FTVM_VALUE_FLAGS = new Set([
  '--kernel',
  '--bios',
  '--clock',
  '--append',
  '-o',
  '--output',
  '--checkpoint-interval',
]);

/** QEMU options ftvm has too, under the same name with two dashes. */
const SHARED = new Set(['kernel', 'bios', 'append', 'drive', 'netdev', 'device']);

/** QEMU options ftvm has no use for: accepted with these values only, then dropped. */
const NO_OPS: Record<string, { takesValue: boolean; accepts(value: string): boolean; otherwise: string }> = {
  nographic: { takesValue: false, accepts: () => true, otherwise: '' },
  machine: {
    takesValue: true,
    accepts: (value) => /^(type=)?virt$/.test(value.split(',')[0] ?? ''),
    otherwise: "ftvm has only QEMU's virt board (-machine virt)",
  },
  cpu: {
    takesValue: true,
    // The reference command line's -cpu cuts QEMU's hart down to exactly ftvm's.
    accepts: (value) => value === referenceQemuCpu,
    otherwise: `ftvm's hart is fixed: RV32IMAC with M, S and U modes (-cpu ${referenceQemuCpu})`,
  },
  smp: {
    takesValue: true,
    accepts: (value) => /^(cpus=)?1$/.test(value),
    otherwise: 'ftvm has one hart (-smp 1)',
  },
  global: {
    takesValue: true,
    // What the reference QEMU command line asks for is all ftvm has: virtio-mmio version 2.
    accepts: (value) => value === 'virtio-mmio.force-legacy=false',
    otherwise: 'ftvm has no device properties to set (its virtio-mmio is always version 2)',
  },
};
NO_OPS.M = NO_OPS.machine as (typeof NO_OPS)[string];

const NO_MONITOR = 'ftvm has no monitor';
const NO_GDB = 'ftvm has no gdb stub';
const NO_DISPLAY = 'ftvm has no display: the console is the UART on stdio';
const NO_LOGGING = 'ftvm has no QEMU-style logging';

/** QEMU options ftvm does not have, with what to do instead when there is something. */
const UNSUPPORTED: Record<string, string> = {
  monitor: NO_MONITOR,
  qmp: NO_MONITOR,
  mon: NO_MONITOR,
  chardev: 'the console is the UART on stdio, and there are no other character devices',
  serial: 'the console is always the UART on stdio (Ctrl-A h lists its keys)',
  parallel: 'ftvm has no parallel port',
  accel: 'ftvm has no accelerators',
  'enable-kvm': 'ftvm has no accelerators',
  s: NO_GDB,
  S: NO_GDB,
  gdb: NO_GDB,
  display: NO_DISPLAY,
  vga: NO_DISPLAY,
  vnc: NO_DISPLAY,
  sdl: NO_DISPLAY,
  curses: NO_DISPLAY,
  icount: 'for guest time derived from the instruction count, use --clock icount',
  rtc: 'the RTC follows --clock (host or icount)',
  snapshot: 'disks are written in place; use -drive file=…,readonly=on to keep one unchanged',
  d: NO_LOGGING,
  D: NO_LOGGING,
  trace: NO_LOGGING,
  initrd: 'ftvm has no initrd',
  dtb: 'ftvm builds the device tree itself',
  net: 'use -netdev user,hostfwd=… (a virtio-net device)',
  nic: 'use -netdev user,hostfwd=… (a virtio-net device)',
  hda: 'use -drive file=…',
  hdb: 'use -drive file=…',
  cdrom: 'use -drive file=…',
  sd: 'use -drive file=…',
  fda: 'use -drive file=…',
  boot: 'ftvm boots --kernel',
  'no-reboot': 'a guest reset reboots the board',
  'no-shutdown': 'ftvm exits when the guest powers off',
  loadvm: 'ftvm has no QEMU snapshots',
  incoming: 'ftvm clones machines with its cluster (ftvm vm migrate)',
  object: 'ftvm has no QEMU objects',
  plugin: 'ftvm has no TCG plugins',
  semihosting: 'ftvm has no semihosting',
  'semihosting-config': 'ftvm has no semihosting',
  daemonize: 'ftvm runs in the foreground',
  pidfile: 'ftvm runs in the foreground',
  name: 'ftvm has no VM names outside its cluster',
  nodefaults: "ftvm's board is fixed",
  usb: 'ftvm has no USB',
  audiodev: 'ftvm has no audio',
  k: NO_DISPLAY,
  L: 'give the firmware itself with -bios FILE',
  fw_cfg: 'ftvm has no fw_cfg',
  virtfs: 'ftvm has no shared folders',
  fsdev: 'ftvm has no shared folders',
  overcommit: 'ftvm has no memory options beyond -m',
  'mem-path': 'ftvm has no memory options beyond -m',
  'mem-prealloc': 'ftvm has no memory options beyond -m',
  readconfig: 'ftvm has no configuration files',
  writeconfig: 'ftvm has no configuration files',
  sandbox: 'ftvm has no sandbox options',
  runas: 'ftvm runs as the user that starts it',
  chroot: 'ftvm runs as the user that starts it',
};

/** Single-letter QEMU options, which only a single dash spells. */
const SINGLE_LETTER = /^[a-zA-Z]$/;

function unsupported(spelling: string, name: string): ConfigError {
  return new ConfigError(`QEMU's ${spelling} is not supported by ftvm (${UNSUPPORTED[name]})`);
}

/** QEMU's `-drive`/`-netdev` `id=`, which ftvm has no use for but a `-device` may refer to. */
function takeId(value: string): { value: string; id: string | undefined } {
  let id: string | undefined;
  const parts = value.split(',').filter((part) => {
    if (!part.startsWith('id=')) return true;
    id = part.slice(3);
    return false;
  });
  return { value: parts.join(','), id };
}

/** `-device virtio-blk-device,drive=d0`: the device QEMU needs for a `-drive if=none`; ftvm makes it. */
const BACKEND_DEVICES: Record<string, { property: string; option: string }> = {
  'virtio-blk-device': { property: 'drive', option: '-drive' },
  'virtio-net-device': { property: 'netdev', option: '-netdev' },
};

/** The option a QEMU spelling names (`-kernel` and `--kernel` → `kernel`), or undefined. */
function qemuName(arg: string): string | undefined {
  const match = /^--?([a-zA-Z][\w-]*)$/.exec(arg);
  if (!match) return undefined;
  const name = match[1] as string;
  if (SINGLE_LETTER.test(name) && arg.startsWith('--')) return undefined;
  return name;
}

/**
 * Rewrites the arguments after `node ftvm` when they are a machine command's; others are returned
 * as they are. Throws a {@link ConfigError} naming a QEMU option ftvm does not support.
 */
export function rewriteQemuArgs(args: readonly string[]): string[] {
  const commandAt = args.findIndex((arg) => !arg.startsWith('-'));
  if (commandAt < 0 || !MACHINE_COMMANDS.has(args[commandAt] as string)) return [...args];
  const rewritten = args.slice(0, commandAt + 1);
  const ids = { drive: new Set<string>(), netdev: new Set<string>() };
  const devices: { value: string; at: number }[] = [];
  for (let i = commandAt + 1; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      rewritten.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    if (arg === '-m' || arg === '--memory') {
      rewritten.push(arg);
      // QEMU's `-m size=64M`.
      if (next !== undefined) rewritten.push(/^size=[^,]*$/.test(next) ? next.slice(5) : next);
      i++;
      continue;
    }
    if (FTVM_VALUE_FLAGS.has(arg)) {
      rewritten.push(arg, ...(next === undefined ? [] : [next]));
      i++;
      continue;
    }
    const name = qemuName(arg);
    if (name === undefined || (name === 'm' && arg === '-m')) {
      rewritten.push(arg);
      continue;
    }
    if (SHARED.has(name)) {
      if (next === undefined) {
        rewritten.push(`--${name}`);
        continue;
      }
      i++;
      if (name === 'drive' || name === 'netdev') {
        const { value, id } = takeId(next);
        if (id !== undefined) ids[name].add(id);
        rewritten.push(`--${name}`, value);
      } else if (name === 'device') {
        devices.push({ value: next, at: rewritten.length });
        rewritten.push('--device', next);
      } else {
        rewritten.push(`--${name}`, next);
      }
      continue;
    }
    const noOp = NO_OPS[name];
    if (noOp) {
      if (noOp.takesValue) {
        if (next === undefined) throw new ConfigError(`${arg} needs a value`);
        if (!noOp.accepts(next)) throw new ConfigError(`${arg} ${next}: ${noOp.otherwise}`);
        i++;
      }
      continue;
    }
    if (Object.hasOwn(UNSUPPORTED, name)) throw unsupported(arg, name);
    rewritten.push(arg);
  }
  // QEMU pairs `-drive …,if=none,id=d0` with `-device virtio-blk-device,drive=d0`; ftvm makes the
  // device for each drive itself, so the pair's second half goes (last first: indexes stay right).
  for (const { value, at } of devices.reverse()) {
    const [kind = '', ...properties] = value.split(',');
    const backend = BACKEND_DEVICES[kind];
    if (!backend) continue;
    const ref = properties
      .find((part) => part.startsWith(`${backend.property}=`))
      ?.slice(backend.property.length + 1);
    if (ref === undefined || !ids[backend.property as 'drive' | 'netdev'].has(ref)) {
      throw new ConfigError(
        `-device ${value}: ftvm makes a ${kind} for each ${backend.option} by itself; ` +
          `give ${backend.option} …,id=ID and -device ${kind},${backend.property}=ID, or just ${backend.option}`,
      );
    }
    rewritten.splice(at, 2);
  }
  return rewritten;
}
