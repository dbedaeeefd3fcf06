import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ImageName, imagePath, isImageName } from './images.js';

/** The reference emulator's binary (QEMU 7.2, Debian 12's qemu-system-misc). */
export const referenceQemuBinary = 'qemu-system-riscv32';

/** The `-cpu` value that cuts QEMU's CPU down to ftvm's platform (docs/platform.md). */
export const referenceQemuCpu =
  'rv32,f=false,d=false,h=false,v=false,zba=false,zbb=false,zbc=false,zbs=false,sstc=false,svinval=false,svpbmt=false,svnapot=false,sscofpmf=false,marchid=0,mimpid=0';

/** A UDP port forward from the host into the guest (QEMU `hostfwd=udp:ADDRESS:HOST-:GUEST`). */
export interface UdpForward {
  hostPort: number;
  guestPort: number;
  /** Host address to bind; default 127.0.0.1. */
  hostAddress?: string;
}

/** Devices to add to the reference command line. */
export interface ReferenceQemuOptions {
  /** RAM in MiB; default 64 (the reference). */
  memoryMiB?: number;
  /**
   * A firmware ELF for QEMU `-bios`, which then boots the image (`-kernel`) in S-mode, such as
   * images/linux/sbi.elf. Default none: the image itself starts in M-mode.
   */
  bios?: string;
  /** A raw disk image file attached as a virtio-blk device. */
  diskPath?: string;
  /** A virtio-net device on QEMU user networking, with these UDP forwards. */
  network?: { udpForwards: UdpForward[] };
  /** A virtio-rng device. */
  rng?: boolean;
  /** Kernel command line, seen by the guest as /chosen/bootargs (QEMU `-append`). */
  append?: string;
  /** Write the board's device tree blob to this file and exit (QEMU `-M virt,dumpdtb=FILE`). */
  dumpDeviceTreeTo?: string;
}

/**
 * The reference QEMU command line (without the binary) for an image: exactly the reference line of docs/platform.md, plus
 * the requested devices. ftvm's virtio-mmio is version 2 only, and QEMU's is legacy (version 1)
 * unless forced, so any virtio device adds `-global virtio-mmio.force-legacy=false`.
 */
export function referenceQemuArgs(image: ImageName | string, options: ReferenceQemuOptions = {}): string[] {
  const kernel = isImageName(image) ? imagePath(image) : image;
  const args = [
    '-M',
    options.dumpDeviceTreeTo === undefined ? 'virt' : `virt,dumpdtb=${options.dumpDeviceTreeTo}`,
    '-bios',
    options.bios ?? 'none',
    '-nographic',
    '-m',
    `${options.memoryMiB ?? 64}M`,
    '-cpu',
    referenceQemuCpu,
    '-kernel',
    kernel,
  ];
  const hasVirtio = options.diskPath !== undefined || options.network !== undefined || options.rng === true;
  if (hasVirtio) args.push('-global', 'virtio-mmio.force-legacy=false');
  if (options.diskPath !== undefined) {
    if (options.diskPath.includes(','))
      throw new Error('referenceQemuArgs: a disk path must not contain ","');
    args.push(
      '-drive',
      `file=${options.diskPath},if=none,format=raw,id=d0`,
      '-device',
      'virtio-blk-device,drive=d0',
    );
  }
  if (options.network !== undefined) {
    const forwards = options.network.udpForwards.map(
      (forward) =>
        `,hostfwd=udp:${forward.hostAddress ?? '127.0.0.1'}:${forward.hostPort}-:${forward.guestPort}`,
    );
    args.push('-netdev', `user,id=n0${forwards.join('')}`, '-device', 'virtio-net-device,netdev=n0');
  }
  if (options.rng === true) args.push('-device', 'virtio-rng-device');
  if (options.append !== undefined) args.push('-append', options.append);
  return args;
}

/** Whether the reference QEMU can be started here (tests skip, saying so, when it cannot). */
export function referenceQemuAvailable(): boolean {
  const result = spawnSync(referenceQemuBinary, ['--version'], { encoding: 'utf8' });
  return result.status === 0;
}

/** How a guest run ended. */
export interface GuestExit {
  /** The guest's exit status (test finisher), or null when QEMU was killed. */
  status: number | null;
  signal: NodeJS.Signals | null;
}

/** A running reference QEMU whose console output is collected. */
export class ReferenceQemu {
  readonly #child: ChildProcess;
  #output = '';
  /** QEMU exited and everything it wrote was read. */
  #closed = false;
  readonly #waiters = new Set<() => void>();
  /** Settles when QEMU exits. */
  readonly exited: Promise<GuestExit>;

  constructor(image: ImageName | string, options: ReferenceQemuOptions = {}) {
    this.#child = spawn(referenceQemuBinary, referenceQemuArgs(image, options), {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const collect = (chunk: Buffer) => {
      this.#output += chunk.toString('latin1');
      for (const waiter of this.#waiters) waiter();
    };
    this.#child.stdout?.on('data', collect);
    this.#child.stderr?.on('data', collect);
    this.exited = new Promise((resolvePromise, reject) => {
      this.#child.on('error', reject);
      // 'close', not 'exit': 'exit' can come before the last bytes QEMU wrote were read from
      // its pipes (a transcript ended "clock: o" for "clock: ok").
      this.#child.on('close', (status, signal) => {
        this.#closed = true;
        for (const waiter of this.#waiters) waiter();
        resolvePromise({ status, signal });
      });
    });
  }

  /** Everything the guest printed so far (console and QEMU's own messages). */
  get output(): string {
    return this.#output;
  }

  /** Waits until the output matches `pattern`; rejects if QEMU exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    return new Promise((resolvePromise, reject) => {
      const check = () => {
        const match = this.#output.match(pattern);
        if (match) {
          finish();
          resolvePromise(match);
        } else if (this.#closed) {
          finish();
          reject(new Error(`QEMU exited before printing ${pattern}; output:\n${this.#output}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${this.#output}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Types on the guest's console (the UART, through QEMU's stdin). */
  type(text: string): void {
    this.#child.stdin?.write(text);
  }

  /** Stops QEMU (SIGTERM: QEMU shuts down cleanly and flushes its disks) and waits for it. */
  async stop(): Promise<GuestExit> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    return this.exited;
  }
}

/**
 * Runs an image on the reference QEMU to its end (or kills it after `timeoutMs`). The console (and
 * QEMU's own messages) goes to a file, read once QEMU is done: through a pipe QEMU now and then
 * loses console bytes, even from a guest that waits for the UART's transmitter (2 of 101
 * riscv-arch-test signatures came out cut, one at its end).
 */
export async function runOnReferenceQemu(
  image: ImageName | string,
  options: ReferenceQemuOptions & { timeoutMs?: number } = {},
): Promise<{ output: string; exit: GuestExit }> {
  const directory = mkdtempSync(join(tmpdir(), 'ftvm-qemu-'));
  const consolePath = join(directory, 'console');
  const consoleFile = openSync(consolePath, 'w');
  try {
    const child = spawn(referenceQemuBinary, referenceQemuArgs(image, options), {
      stdio: ['ignore', consoleFile, consoleFile],
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 60_000);
    try {
      const exit = await new Promise<GuestExit>((resolvePromise, reject) => {
        child.on('error', reject);
        child.on('close', (status, signal) => resolvePromise({ status, signal }));
      });
      return { output: readFileSync(consolePath, 'latin1'), exit };
    } finally {
      clearTimeout(timer);
    }
  } finally {
    closeSync(consoleFile);
    rmSync(directory, { recursive: true, force: true });
  }
}
