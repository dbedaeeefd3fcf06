import { createFlatBus, type FlatBus, RiscvCpu } from '../../src/index.js';
import { parseElf32 } from './elf.js';

export const RAM_BASE = 0x8000_0000;
const UART_BASE = 0x1000_0000;
const FINISHER_BASE = 0x0010_0000;
const CLINT_BASE = 0x0200_0000;

/**
 * The smallest part of the virt board that test guests use: RAM at 0x8000_0000, the NS16550A
 * transmit register (captured), its line status (always ready), the SiFive test finisher and a
 * CLINT whose mtime advances one tick per 10 steps (deterministic). As on QEMU, mtimecmp starts
 * at 0, so MTIP is pending at reset.
 */
export interface TestMachine {
  readonly cpu: RiscvCpu;
  readonly bus: FlatBus;
  /** Bytes written to the UART so far, as text. */
  output(): string;
  /** The finisher's last command (0x5555 pass, (code << 16) | 0x3333 fail), or undefined. */
  finisherValue(): number | undefined;
  /** Runs until the guest powers off or `maxSteps` pass; returns the steps done. */
  runToCompletion(maxSteps: number): number;
}

export function createTestMachine(
  options: { ramSizeBytes?: number; compileBlocks?: boolean } = {},
): TestMachine {
  let text = '';
  let finisher: number | undefined;
  let mtimecmp = 0;
  let cpu: RiscvCpu | undefined;
  const mtime = () => Math.floor((cpu?.icount ?? 0) / 10);
  const updateTimer = () => cpu?.setInterruptLine('machine-timer', mtime() >= mtimecmp);
  const bus = createFlatBus({
    ramBase: RAM_BASE,
    ramSizeBytes: options.ramSizeBytes ?? 16 * 1024 * 1024,
    mmio: [
      {
        base: UART_BASE,
        size: 0x100,
        read: (offset) => (offset === 5 ? 0x60 : 0),
        write: (offset, _width, value) => {
          if (offset === 0) text += String.fromCharCode(value & 0xff);
          return true;
        },
      },
      {
        base: FINISHER_BASE,
        size: 0x1000,
        read: () => 0,
        write: (offset, _width, value) => {
          if (offset === 0) {
            finisher = value;
            cpu?.requestStop();
          }
          return true;
        },
      },
      {
        base: CLINT_BASE,
        size: 0x10000,
        read: (offset, width) => {
          if (width !== 4) return 0;
          if (offset === 0x4000) return mtimecmp % 0x1_0000_0000;
          if (offset === 0x4004) return Math.floor(mtimecmp / 0x1_0000_0000);
          if (offset === 0xbff8) return mtime() % 0x1_0000_0000;
          if (offset === 0xbffc) return Math.floor(mtime() / 0x1_0000_0000);
          return 0;
        },
        write: (offset, width, value) => {
          if (width !== 4) return true;
          if (offset === 0x4000) mtimecmp = Math.floor(mtimecmp / 0x1_0000_0000) * 0x1_0000_0000 + value;
          if (offset === 0x4004) mtimecmp = (mtimecmp % 0x1_0000_0000) + value * 0x1_0000_0000;
          updateTimer();
          return true;
        },
      },
    ],
  });
  cpu = new RiscvCpu({ bus, readTime: mtime, compileBlocks: options.compileBlocks ?? true });
  updateTimer();
  const machineCpu = cpu;
  return {
    cpu: machineCpu,
    bus,
    output: () => text,
    finisherValue: () => finisher,
    runToCompletion(maxSteps) {
      let total = 0;
      while (total < maxSteps && finisher === undefined) {
        const outcome = machineCpu.run(Math.min(100_000, maxSteps - total));
        total += outcome.steps;
        updateTimer();
        if (outcome.reason === 'wfi' && !machineCpu.waiting) continue;
        if (outcome.reason === 'wfi') break;
      }
      return total;
    },
  };
}

/** Loads an ELF image into the machine's RAM and resets the CPU at its entry, as QEMU's boot ROM does. */
export function loadElf(machine: TestMachine, file: Uint8Array): ReturnType<typeof parseElf32> {
  const image = parseElf32(file);
  for (const segment of image.segments) {
    machine.bus.load(segment.address, segment.data);
  }
  machine.cpu.reset(image.entry, 0, 0);
  return image;
}
