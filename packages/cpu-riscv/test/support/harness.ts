import { createFlatBus, type FlatBus, RiscvCpu } from '../../src/index.js';
import { addi, csrrw, jal, li, mret } from './assembler.js';

export const BASE = 0x8000_0000;
/** Where tests put their M-mode trap handler: a `j .` loop. */
export const HANDLER = 0x8000_f000;
/** Where tests put code that runs after a privilege switch. */
export const TARGET = 0x8001_0000;
/** A region of MMIO that records writes and answers reads with 0x5a. */
export const MMIO_BASE = 0x1000_0000;

const CSR_MTVEC = 0x305;

/** A CPU on an 8 MiB flat bus, with helpers to place code and data. */
export interface Harness {
  readonly cpu: RiscvCpu;
  readonly bus: FlatBus;
  readonly mmioWrites: { address: number; width: number; value: number }[];
  /** Places instructions (32-bit words; values whose low two bits are not 3 are 16-bit). */
  code(address: number, instructions: readonly number[]): void;
  write32(address: number, value: number): void;
  read32(address: number): number;
  /** Register as a signed number. */
  reg(index: number): number;
  /** Runs one step at a time until pc reaches `address` (or `maxSteps` pass); returns steps. */
  runUntil(address: number, maxSteps?: number): number;
}

export function createHarness(options: { readTime?: () => number; compileBlocks?: boolean } = {}): Harness {
  const mmioWrites: { address: number; width: number; value: number }[] = [];
  const bus = createFlatBus({
    ramBase: BASE,
    ramSizeBytes: 8 * 1024 * 1024,
    mmio: [
      {
        base: MMIO_BASE,
        size: 0x1000,
        read: () => 0x5a,
        write: (offset, width, value) => {
          mmioWrites.push({ address: MMIO_BASE + offset, width, value });
          return true;
        },
      },
    ],
  });
  const cpu = new RiscvCpu({
    bus,
    compileBlocks: options.compileBlocks ?? true,
    ...(options.readTime ? { readTime: options.readTime } : {}),
  });
  const bytes = bus.ramRegion.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const harness: Harness = {
    cpu,
    bus,
    mmioWrites,
    code(address, instructions) {
      let offset = address - BASE;
      for (const instruction of instructions) {
        if ((instruction & 3) !== 3) {
          view.setUint16(offset, instruction, true);
          offset += 2;
        } else {
          view.setUint32(offset, instruction >>> 0, true);
          offset += 4;
        }
      }
      cpu.invalidateMemoryCaches();
    },
    write32(address, value) {
      view.setUint32(address - BASE, value >>> 0, true);
      cpu.invalidateMemoryCaches();
    },
    read32(address) {
      return view.getUint32(address - BASE, true);
    },
    reg(index) {
      return cpu.getRegister(index) | 0;
    },
    runUntil(address, maxSteps = 1000) {
      let steps = 0;
      while (cpu.pc !== address >>> 0 && steps < maxSteps) steps += cpu.run(1).steps || maxSteps;
      return steps;
    },
  };
  harness.code(HANDLER, [jal(0, 0)]);
  return harness;
}

/** M-mode code that installs the `j .` handler at HANDLER as mtvec (direct). */
export function installHandler(): number[] {
  return [...li(5, HANDLER), csrrw(0, CSR_MTVEC, 5)];
}

/**
 * M-mode code that opens all of memory to S/U through PMP entry 0 (NAPOT, RWX), sets mstatus to
 * `mstatusValue | privilege << 11` and mret's to `target`.
 */
export function enterMode(privilege: number, target: number, mstatusValue = 0): number[] {
  return [
    addi(5, 0, -1),
    csrrw(0, 0x3b0, 5), // pmpaddr0 = all ones
    addi(5, 0, 0x1f),
    csrrw(0, 0x3a0, 5), // pmpcfg0 = NAPOT | RWX
    ...li(5, mstatusValue | (privilege << 11)),
    csrrw(0, 0x300, 5),
    ...li(5, target),
    csrrw(0, 0x341, 5),
    mret(),
  ];
}
