import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as A from '../test/support/assembler.js';
import { RiscvCpu } from './cpu.js';
import { createFlatBus } from './flat-bus.js';

const BASE = 0x8000_0000;

/**
 * Random guests must never make the CPU throw or hang: random words as code, in M mode and in S
 * mode with paging on over random page tables, with random CSR values, traps going to random code.
 */
describe('robustness', () => {
  it('never throws whatever the guest runs', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 64, maxLength: 64 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 64, maxLength: 64 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        (code, tables, mstatus, compileBlocks) => {
          const bus = createFlatBus({
            ramBase: BASE,
            ramSizeBytes: 64 * 1024,
            mmio: [{ base: 0x1000_0000, size: 0x100, read: () => 0, write: () => true }],
          });
          const setup = [
            A.addi(5, 0, -1),
            A.csrrw(0, 0x3b0, 5),
            A.addi(5, 0, 0x1f),
            A.csrrw(0, 0x3a0, 5), // PMP: everything for S and U
            ...A.li(5, BASE + 0x200),
            A.csrrw(0, 0x305, 5), // mtvec: random code
            ...A.li(5, (1 << 31) | ((BASE + 0x1000) >>> 12)),
            A.csrrw(0, 0x180, 5), // satp: Sv32 over random tables
            ...A.li(5, (mstatus & ~(3 << 11)) | (1 << 11)),
            A.csrrw(0, 0x300, 5),
            ...A.li(5, BASE + 0x100),
            A.csrrw(0, 0x341, 5),
            A.mret(),
          ];
          const words = new Uint32Array(0x2000 / 4);
          words.set(setup, 0);
          words.set(code, 0x100 / 4);
          words.set(code.slice().reverse(), 0x200 / 4);
          words.set(tables, 0x1000 / 4);
          bus.load(BASE, new Uint8Array(words.buffer));
          const cpu = new RiscvCpu({ bus, compileBlocks });
          cpu.reset(BASE, 0, 0);
          for (let i = 0; i < 4; i++) {
            const outcome = cpu.run(500);
            expect(outcome.steps).toBeLessThanOrEqual(500);
            if (outcome.reason === 'wfi') cpu.setInterruptLine('machine-timer', true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
