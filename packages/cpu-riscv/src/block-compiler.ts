/**
 * Compiles hot straight-line runs of decoded instructions ("blocks") into JavaScript functions,
 * so V8 can optimise them with register numbers, immediates and pcs as constants.
 *
 * A block lies within one page, holds only instructions without side effects on the hart's
 * control state (ALU, M, loads, stores, branches) and ends with a jump, before an instruction the
 * interpreter must handle (system, atomic, illegal, page-crossing), or at a length limit. A taken
 * conditional branch leaves the block early (a side exit). Its longest path is known, so the
 * interpreter runs a block only when the budget left covers all of it, and run(budget) stays
 * exact. An instruction that traps or sets breakLoop on a slow path returns at once with the
 * number of steps completed. A block whose branch goes back to its own start loops inside its
 * function while the budget left covers another pass.
 *
 * The generated function receives the CPU and its arrays; it returns the steps it completed and
 * leaves the next pc in `cpu.blockNextPc`.
 */

import { Op } from './cpu.js';

/** What a block function can see of the CPU: the slow paths and the fields they share. */
export interface BlockHost {
  pcValue: number;
  icountValue: number;
  blockNextPc: number;
  trapRaised: boolean;
  breakLoop: boolean;
  loadSlow(va: number, width: number): number;
  storeSlow(va: number, width: number, value: number): void;
}

export type BlockFunction = (
  cpu: BlockHost,
  x: Int32Array,
  icountBase: number,
  ram8: Uint8Array,
  ramI8: Int8Array,
  ram16: Uint16Array,
  ramI16: Int16Array,
  ram32: Int32Array,
  tlbLoadTag: Int32Array,
  tlbLoadOffset: Int32Array,
  tlbStoreTag: Int32Array,
  tlbStoreOffset: Int32Array,
  budget: number,
) => number;

/** A compiled block: where it starts (virtual pc), how many steps it takes, its code. */
export class CompiledBlock {
  constructor(
    readonly pc: number,
    readonly steps: number,
    /** Byte offsets in the page covered by the block's instructions, [start, end). */
    readonly startOffset: number,
    readonly endOffset: number,
    readonly run: BlockFunction,
  ) {}
}

/** Longest block, in instructions. */
export const BLOCK_STEPS_MAX = 48;

const PARAMETERS =
  'cpu, x, icountBase, ram8, ramI8, ram16, ramI16, ram32, tlbLoadTag, tlbLoadOffset, tlbStoreTag, tlbStoreOffset, budget';

/** One decoded instruction of a block being compiled. */
interface BlockInstruction {
  readonly op: number;
  readonly rd: number;
  readonly rs1: number;
  readonly rs2: number;
  readonly imm: number;
  readonly pc: number;
  readonly nextPc: number;
}

type MultiplyHigh = (a: number, b: number) => number;

/**
 * Compiles the block starting at `pc` (slot `slot` of `decoded`, whose instructions are all
 * decoded up to the block's end), or returns undefined when the first instruction cannot start a
 * block. `decodeAt(slot)` returns the meta word of a slot, decoding it first when needed, or 0
 * when the instruction crosses the page end.
 */
export function compileBlock(
  decoded: Int32Array,
  slot: number,
  pc: number,
  decodeAt: (slot: number) => number,
  multiplyHighSigned: MultiplyHigh,
  multiplyHighSignedUnsigned: MultiplyHigh,
  multiplyHighUnsigned: MultiplyHigh,
): CompiledBlock | undefined {
  const instructions: BlockInstruction[] = [];
  let offset = slot;
  let currentPc = pc | 0;
  let ended = false;
  while (instructions.length < BLOCK_STEPS_MAX && offset < 4096) {
    const meta = decodeAt(offset);
    if (meta === 0) break;
    const op = meta & 0xff;
    if (!isBlockOp(op)) break;
    const length = 2 + ((meta >>> 22) & 2);
    const nextPc = (currentPc + length) | 0;
    instructions.push({
      op,
      rd: (meta >>> 8) & 31,
      rs1: (meta >>> 13) & 31,
      rs2: (meta >>> 18) & 31,
      imm: decoded[offset + 1] as number,
      pc: currentPc,
      nextPc,
    });
    offset += length;
    currentPc = nextPc;
    if (op === Op.Jal || op === Op.Jalr) {
      ended = true;
      break;
    }
  }
  const steps = instructions.length;
  if (steps === 0) return undefined;
  const start = pc | 0;
  const loops = instructions.some(
    (instruction) =>
      instruction.op >= Op.Beq &&
      instruction.op <= Op.Bgeu &&
      ((instruction.pc + instruction.imm) | 0) === start,
  );
  const context: EmitContext = { base: loops ? 'base + ' : '', start, steps };
  const lines = instructions.map((instruction, done) => emit(instruction, done, context));
  if (!ended) lines.push(`cpu.blockNextPc = ${currentPc};\nreturn ${context.base}${steps};`);
  const body = loops ? `let base = 0;\nfor (;;) {\n${lines.join('\n')}\n}` : lines.join('\n');
  const source = `"use strict";\nreturn function block(${PARAMETERS}) {\n${body}\n};`;
  const factory = new Function(
    'multiplyHighSigned',
    'multiplyHighSignedUnsigned',
    'multiplyHighUnsigned',
    source,
  ) as (...helpers: MultiplyHigh[]) => BlockFunction;
  const run = factory(multiplyHighSigned, multiplyHighSignedUnsigned, multiplyHighUnsigned);
  return new CompiledBlock(pc | 0, steps, slot, offset, run);
}

function isBlockOp(op: number): boolean {
  return op >= Op.Lui && op <= Op.Nop;
}

const r = (index: number) => (index === 0 ? '0' : `x[${index}]`);

interface EmitContext {
  /** Prefix of step counts: 'base + ' when the block loops (base counts the passes' steps). */
  readonly base: string;
  readonly start: number;
  readonly steps: number;
}

/** JavaScript for one instruction; `done` is the number of steps completed before it. */
function emit(instruction: BlockInstruction, done: number, context: EmitContext): string {
  const { op, rd, rs1, rs2, imm, pc, nextPc } = instruction;
  const base = context.base;
  const write = (expression: string) => (rd === 0 ? '' : `x[${rd}] = ${expression};`);
  const a = r(rs1);
  const b = r(rs2);
  switch (op) {
    case Op.Lui:
      return write(`${imm}`);
    case Op.Auipc:
      return write(`${(pc + imm) | 0}`);
    case Op.Jal:
      return `${write(`${nextPc}`)}\ncpu.blockNextPc = ${(pc + imm) | 0};\nreturn ${base}${done + 1};`;
    case Op.Jalr:
      return `{ const target = (${a} + ${imm}) & ~1; ${write(`${nextPc}`)}\ncpu.blockNextPc = target; return ${base}${done + 1}; }`;
    case Op.Beq:
    case Op.Bne:
    case Op.Blt:
    case Op.Bge:
    case Op.Bltu:
    case Op.Bgeu: {
      const condition =
        op === Op.Beq
          ? `${a} === ${b}`
          : op === Op.Bne
            ? `${a} !== ${b}`
            : op === Op.Blt
              ? `${a} < ${b}`
              : op === Op.Bge
                ? `${a} >= ${b}`
                : op === Op.Bltu
                  ? `(${a} >>> 0) < (${b} >>> 0)`
                  : `(${a} >>> 0) >= (${b} >>> 0)`;
      const target = (pc + imm) | 0;
      if (target === context.start && base !== '') {
        // Back to the start: another pass if the budget covers a whole one.
        return `if (${condition}) { base += ${done + 1}; if (base + ${context.steps} <= budget) continue; cpu.blockNextPc = ${target}; return base; }`;
      }
      return `if (${condition}) { cpu.blockNextPc = ${target}; return ${base}${done + 1}; }`;
    }
    case Op.Lb:
      return load(
        `ramI8[tlbLoadOffset[e] + (va & 0xfff)]`,
        'true',
        1,
        '(value << 24) >> 24',
        rd,
        a,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Lbu:
      return load(
        `ram8[tlbLoadOffset[e] + (va & 0xfff)]`,
        'true',
        1,
        'value',
        rd,
        a,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Lh:
      return load(
        `ramI16[(tlbLoadOffset[e] + (va & 0xfff)) >> 1]`,
        '(va & 1) === 0',
        2,
        '(value << 16) >> 16',
        rd,
        a,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Lhu:
      return load(
        `ram16[(tlbLoadOffset[e] + (va & 0xfff)) >> 1]`,
        '(va & 1) === 0',
        2,
        'value',
        rd,
        a,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Lw:
      return load(
        `ram32[(tlbLoadOffset[e] + (va & 0xfff)) >> 2]`,
        '(va & 3) === 0',
        4,
        'value',
        rd,
        a,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Sb:
      return store(`ram8[tlbStoreOffset[e] + (va & 0xfff)]`, 'true', 1, a, b, imm, pc, nextPc, done, base);
    case Op.Sh:
      return store(
        `ram16[(tlbStoreOffset[e] + (va & 0xfff)) >> 1]`,
        '(va & 1) === 0',
        2,
        a,
        b,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Sw:
      return store(
        `ram32[(tlbStoreOffset[e] + (va & 0xfff)) >> 2]`,
        '(va & 3) === 0',
        4,
        a,
        b,
        imm,
        pc,
        nextPc,
        done,
        base,
      );
    case Op.Addi:
      return write(rs1 === 0 ? `${imm}` : `${a} + ${imm}`);
    case Op.Slti:
      return write(`${a} < ${imm} ? 1 : 0`);
    case Op.Sltiu:
      return write(`(${a} >>> 0) < ${imm >>> 0} ? 1 : 0`);
    case Op.Xori:
      return write(`${a} ^ ${imm}`);
    case Op.Ori:
      return write(`${a} | ${imm}`);
    case Op.Andi:
      return write(`${a} & ${imm}`);
    case Op.Slli:
      return write(`${a} << ${imm}`);
    case Op.Srli:
      return write(`${a} >>> ${imm}`);
    case Op.Srai:
      return write(`${a} >> ${imm}`);
    case Op.Add:
      return write(`${a} + ${b}`);
    case Op.Sub:
      return write(`${a} - ${b}`);
    case Op.Sll:
      return write(`${a} << ${b}`);
    case Op.Slt:
      return write(`${a} < ${b} ? 1 : 0`);
    case Op.Sltu:
      return write(`(${a} >>> 0) < (${b} >>> 0) ? 1 : 0`);
    case Op.Xor:
      return write(`${a} ^ ${b}`);
    case Op.Srl:
      return write(`${a} >>> ${b}`);
    case Op.Sra:
      return write(`${a} >> ${b}`);
    case Op.Or:
      return write(`${a} | ${b}`);
    case Op.And:
      return write(`${a} & ${b}`);
    case Op.Mul:
      return write(`Math.imul(${a}, ${b})`);
    case Op.Mulh:
      return write(`multiplyHighSigned(${a}, ${b})`);
    case Op.Mulhsu:
      return write(`multiplyHighSignedUnsigned(${a}, ${b})`);
    case Op.Mulhu:
      return write(`multiplyHighUnsigned(${a}, ${b})`);
    case Op.Div:
      return write(`(${b} === 0 ? -1 : ${b} === -1 ? -${a} : (${a} / ${b}) | 0)`);
    case Op.Divu:
      return write(`(${b} === 0 ? -1 : (${a} >>> 0) / (${b} >>> 0))`);
    case Op.Rem:
      return write(`(${b} === 0 ? ${a} : ${b} === -1 ? 0 : ${a} % ${b})`);
    case Op.Remu:
      return write(`(${b} === 0 ? ${a} : (${a} >>> 0) % (${b} >>> 0))`);
    default:
      return ''; // Op.Nop
  }
}

function load(
  fast: string,
  aligned: string,
  width: number,
  extend: string,
  rd: number,
  base: string,
  imm: number,
  pc: number,
  nextPc: number,
  done: number,
  stepBase: string,
): string {
  const write = rd === 0 ? '' : `x[${rd}] = value;`;
  return `{
  const va = (${base} + ${imm}) | 0; const e = (va >>> 12) & 255; let value;
  if (tlbLoadTag[e] === (va >>> 12) && ${aligned}) value = ${fast};
  else {
    cpu.pcValue = ${pc}; cpu.icountValue = icountBase + ${stepBase}${done};
    value = cpu.loadSlow(va, ${width}); value = ${extend};
    if (cpu.trapRaised) return ${stepBase}${done};
    if (cpu.breakLoop) { ${write} cpu.blockNextPc = ${nextPc}; return ${stepBase}${done + 1}; }
  }
  ${write}
}`;
}

function store(
  fast: string,
  aligned: string,
  width: number,
  base: string,
  value: string,
  imm: number,
  pc: number,
  nextPc: number,
  done: number,
  stepBase: string,
): string {
  return `{
  const va = (${base} + ${imm}) | 0; const e = (va >>> 12) & 255;
  if (tlbStoreTag[e] === (va >>> 12) && ${aligned}) ${fast} = ${value};
  else {
    cpu.pcValue = ${pc}; cpu.icountValue = icountBase + ${stepBase}${done};
    cpu.storeSlow(va, ${width}, ${value});
    if (cpu.trapRaised) return ${stepBase}${done};
    if (cpu.breakLoop) { cpu.blockNextPc = ${nextPc}; return ${stepBase}${done + 1}; }
  }
}`;
}
