import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as A from '../test/support/assembler.js';
import { RiscvCpu } from './cpu.js';
import { createFlatBus } from './flat-bus.js';

const BASE = 0x8000_0000;
const MSIP = 0x0200_0000;
const S0 = 8;
const S1 = 9;
const S2 = 18;
const S3 = 19;
const S4 = 20;
const A3 = 13;
const T0 = 5;
const T1 = 6;
const T2 = 7;
const A0 = 10;
const A1 = 11;
const A2 = 12;

type Item = number | { label: string } | ((labels: Map<string, number>, pc: number) => number);

/** Assembles 32-bit items at BASE, resolving labels in a second pass. */
function assemble(items: Item[]): { words: number[]; labels: Map<string, number> } {
  const labels = new Map<string, number>();
  let pc = BASE;
  for (const item of items) {
    if (typeof item === 'object') labels.set(item.label, pc);
    else pc += 4;
  }
  pc = BASE;
  const words: number[] = [];
  for (const item of items) {
    if (typeof item === 'object') continue;
    words.push(typeof item === 'function' ? item(labels, pc) : item);
    pc += 4;
  }
  return { words, labels };
}
const to = (label: string, encode: (offset: number) => number) => (labels: Map<string, number>, pc: number) =>
  encode((labels.get(label) as number) - pc);

/**
 * A guest that keeps a loop busy with ALU work, loads and stores, an inner self-loop whose load
 * faults in half of the iterations, an ecall every 8 iterations and a machine software interrupt
 * it raises itself through MSIP every 16 (an MMIO write that changes the interrupt line in the
 * middle of a run), plus an illegal instruction every 32.
 */
const { words: PROGRAM, labels: PROGRAM_LABELS } = assemble([
  ...A.li(T0, 0), // replaced below by the handler address
  A.csrrw(0, 0x305, T0),
  A.addi(T0, 0, 8),
  A.csrrw(0, 0x304, T0), // mie.MSIE
  A.csrrsi(0, 0x300, 8), // mstatus.MIE
  ...A.li(S0, BASE + 0x8000),
  ...A.li(S3, MSIP),
  { label: 'loop' },
  // An inner loop that compiles to a block branching to its own start; in half of the outer
  // iterations its load faults (the handler skips it).
  A.andi(S4, A0, 32),
  A.slli(S4, S4, 25), // 0 or 0x4000_0000 (nothing there)
  to('keep', (offset) => A.bne(S4, 0, offset)),
  A.add(S4, S0, 0),
  { label: 'keep' },
  A.addi(T0, 0, 5),
  { label: 'inner' },
  A.addi(T0, T0, -1),
  A.sw(T0, S0, 4),
  A.lw(A3, S4, 0),
  to('inner', (offset) => A.bne(T0, 0, offset)),
  A.addi(A0, A0, 1),
  A.mul(A1, A0, A0),
  A.sw(A1, S0, 0),
  A.lh(A2, S0, 1),
  A.add(A1, A1, A2),
  A.andi(T0, A0, 7),
  to('skipEcall', (offset) => A.bne(T0, 0, offset)),
  A.ecall(),
  { label: 'skipEcall' },
  A.andi(T0, A0, 15),
  to('skipInterrupt', (offset) => A.bne(T0, 0, offset)),
  A.addi(T1, 0, 1),
  A.sw(T1, S3, 0),
  { label: 'skipInterrupt' },
  A.andi(T0, A0, 31),
  to('skipIllegal', (offset) => A.bne(T0, 0, offset)),
  0xffffffff,
  { label: 'skipIllegal' },
  to('loop', (offset) => A.jal(0, offset)),
  { label: 'handler' },
  A.csrrs(T2, 0x342, 0),
  to('interrupt', (offset) => A.blt(T2, 0, offset)),
  A.csrrs(T2, 0x341, 0),
  A.addi(T2, T2, 4),
  A.csrrw(0, 0x341, T2),
  A.addi(S1, S1, 1),
  A.mret(),
  { label: 'interrupt' },
  A.sw(0, S3, 0),
  A.addi(S2, S2, 1),
  A.mret(),
]);
const [handlerHigh, handlerLow] = A.li(T0, PROGRAM_LABELS.get('handler') as number);
PROGRAM[0] = handlerHigh;
PROGRAM[1] = handlerLow;

const A4 = 14;
const A5 = 15;
const T3 = 28;
const T4 = 29;
const RA = 1;

/**
 * A guest whose hot code forms regions that chain units through forward branches, a call and
 * return within the page and backward branches, and that patches an instruction of its own
 * callee every 16 iterations (the immediate of `patched`), so a store lands in compiled code that
 * the running region, or a region it chains into, covers.
 */
const { words: CHAIN_PROGRAM } = assemble([
  ...A.li(S0, BASE + 0x8000),
  ...A.li(T2, 0x0005_8593), // addi a1, a1, 0: the patch's base
  { label: 'outer' },
  A.addi(S1, S1, 1),
  A.andi(T0, S1, 3),
  to('skip', (offset) => A.beq(T0, 0, offset)),
  A.addi(A0, A0, 3),
  A.sw(A0, S0, 0),
  { label: 'skip' },
  to('func', (offset) => A.jal(RA, offset)),
  A.andi(T0, S1, 15),
  to('noPatch', (offset) => A.bne(T0, 0, offset)),
  A.srli(T1, S1, 4),
  A.andi(T1, T1, 0x7ff),
  A.slli(T1, T1, 20),
  A.or(T1, T1, T2),
  A.auipc(T3, 0),
  to('patched', (offset) => A.addi(T3, T3, offset + 4)), // t3 = &patched (auipc is a word before)
  A.sw(T1, T3, 0),
  { label: 'noPatch' },
  to('outer', (offset) => A.jal(0, offset)),
  { label: 'func' },
  A.addi(A2, A2, 1),
  { label: 'patched' },
  A.addi(A1, A1, 0),
  A.addi(T4, 0, 3),
  { label: 'inner' },
  A.add(A3, A3, A1),
  A.lw(A4, S0, 0),
  A.xor(A5, A5, A4),
  A.addi(T4, T4, -1),
  to('inner', (offset) => A.bne(T4, 0, offset)),
  A.jalr(0, RA, 0),
]);

function createChainMachine(compileBlocks: boolean) {
  const bus = createFlatBus({ ramBase: BASE, ramSizeBytes: 64 * 1024, mmio: [] });
  bus.load(BASE, new Uint8Array(new Uint32Array(CHAIN_PROGRAM).buffer));
  const cpu = new RiscvCpu({ bus, compileBlocks });
  cpu.reset(BASE, 0, 0);
  return { cpu, bus };
}

function createMachine(compileBlocks = true) {
  let cpu: RiscvCpu | undefined;
  const bus = createFlatBus({
    ramBase: BASE,
    ramSizeBytes: 64 * 1024,
    mmio: [
      {
        base: MSIP,
        size: 4,
        read: () => 0,
        write: (_offset, _width, value) => {
          cpu?.setInterruptLine('machine-software', (value & 1) !== 0);
          return true;
        },
      },
    ],
  });
  const bytes = new Uint8Array(new Uint32Array(PROGRAM).buffer);
  bus.load(BASE, bytes);
  cpu = new RiscvCpu({ bus, compileBlocks });
  cpu.reset(BASE, 0, 0);
  return { cpu, bus };
}

describe('step exactness', () => {
  it('the program takes exceptions and interrupts', () => {
    const { cpu } = createMachine();
    expect(cpu.run(5000)).toEqual({ steps: 5000, reason: 'budget' });
    expect(cpu.getRegister(S1)).toBeGreaterThan(10); // exceptions handled
    expect(cpu.getRegister(S2)).toBeGreaterThan(5); // interrupts handled
  });

  it('run(a) then run(b) ends in the same state as run(a + b)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 }), (a, b) => {
        const split = createMachine();
        const whole = createMachine();
        expect(split.cpu.run(a).steps).toBe(a);
        expect(split.cpu.run(b).steps).toBe(b);
        expect(whole.cpu.run(a + b).steps).toBe(a + b);
        expect(split.cpu.icount).toBe(a + b);
        expect(split.cpu.saveState()).toEqual(whole.cpu.saveState());
        expect(Buffer.compare(split.bus.ramRegion.bytes, whole.bus.ramRegion.bytes)).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('compiled blocks end in the same state as the interpreter alone', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2000 }), { minLength: 1, maxLength: 5 }), (budgets) => {
        const compiled = createMachine(true);
        const interpreted = createMachine(false);
        for (const budget of budgets) {
          expect(compiled.cpu.run(budget)).toEqual(interpreted.cpu.run(budget));
          expect(compiled.cpu.saveState()).toEqual(interpreted.cpu.saveState());
        }
        expect(Buffer.compare(compiled.bus.ramRegion.bytes, interpreted.bus.ramRegion.bytes)).toBe(0);
      }),
      { numRuns: 40 },
    );
    const hot = createMachine(true);
    hot.cpu.run(20_000);
    expect(hot.cpu.compiledBlocks).toBeGreaterThan(0);
  });

  it('chained regions patched by their own stores end as the interpreter alone does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 4000 })), {
          minLength: 1,
          maxLength: 12,
        }),
        (budgets) => {
          const compiled = createChainMachine(true);
          const interpreted = createChainMachine(false);
          compiled.cpu.run(6000); // hot: regions compiled, patched and compiled again
          interpreted.cpu.run(6000);
          for (const budget of budgets) {
            expect(compiled.cpu.run(budget)).toEqual(interpreted.cpu.run(budget));
            expect(compiled.cpu.saveState()).toEqual(interpreted.cpu.saveState());
          }
          expect(Buffer.compare(compiled.bus.ramRegion.bytes, interpreted.bus.ramRegion.bytes)).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('the chained program runs compiled and really patches itself', () => {
    const { cpu } = createChainMachine(true);
    cpu.run(6000);
    const regionsBefore = cpu.compiledBlocks;
    expect(regionsBefore).toBeGreaterThan(0);
    cpu.run(20_000);
    // Stores into compiled code dropped regions, which were compiled again.
    expect(cpu.compiledBlocks).toBeGreaterThan(regionsBefore);
    // a1 grew by the patched immediates: the patches took effect.
    expect(cpu.getRegister(A1)).toBeGreaterThan(0);
  });

  it('every budget, stepped one run at a time through compiled regions, stops where the interpreter does', () => {
    const compiled = createChainMachine(true);
    const interpreted = createChainMachine(false);
    compiled.cpu.run(3000);
    interpreted.cpu.run(3000);
    for (let budget = 1; budget <= 120; budget++) {
      expect(compiled.cpu.run(budget)).toEqual(interpreted.cpu.run(budget));
      expect(compiled.cpu.saveState()).toEqual(interpreted.cpu.saveState());
    }
  });

  it('a snapshot taken between runs continues exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 }), (a, b) => {
        const original = createMachine();
        original.cpu.run(a);
        const copy = createMachine();
        copy.bus.ramRegion.bytes.set(original.bus.ramRegion.bytes);
        copy.cpu.restoreState(original.cpu.saveState());
        original.cpu.run(b);
        copy.cpu.run(b);
        expect(copy.cpu.saveState()).toEqual(original.cpu.saveState());
      }),
      { numRuns: 30 },
    );
  });
});
