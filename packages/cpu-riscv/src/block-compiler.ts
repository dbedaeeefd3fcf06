/**
 * Compiles hot code into JavaScript functions ("regions"), so V8 can optimise it with register
 * numbers, immediates and pcs as constants.
 *
 * A region lies within one page. It is the code the interpreter has run that is reachable from a
 * hot pc through branches, jumps and the fall-through, cut into units: straight-line runs of
 * instructions without side effects on the hart's control state (ALU, M, loads, stores, branches),
 * each ending at a branch or jump, before another unit's first instruction, before an instruction
 * the interpreter must handle (system, atomic, illegal, page-crossing) or at a length limit. The
 * function loops over a `switch` on the unit number, so going from one unit to the next (a
 * branch, a call or a return within the page) is a jump inside the function, not a return to the
 * interpreter's dispatch, which took a third of the time when every block was its own function.
 * Code that starts another region of the page is left to that region (through the dispatch):
 * compiling it twice cost more V8 compile time than the dispatch saves on short runs.
 *
 * Step counting stays exact. The budget is checked on entry and at every backward or computed
 * jump, for the longest path from there that uses forward edges only (the next check comes at the
 * next backward jump); when it does not cover that path the region returns and the interpreter
 * steps on. A region entered with too little budget returns 0 steps without doing anything. An
 * instruction that traps or sets breakLoop on a slow path (a store into compiled code, an MMIO
 * access raising an interrupt) returns at once with the exact number of steps completed, so
 * interrupts are taken at the same step boundaries as with the interpreter alone.
 *
 * The guest registers a region uses live in JavaScript locals while it runs: loaded on entry and
 * written back on every exit (the slow paths never read them).
 *
 * The generated function closes over the CPU and its arrays (constants V8 can embed); it receives
 * the icount on entry, the budget left and the pc to start at, returns the steps it completed and
 * leaves the next pc in `cpu.blockNextPc`.
 */

import { Op } from './op.js';

/** What a region function can see of the CPU: the slow paths and the fields they share. */
export interface BlockHost {
  blockNextPc: number;
  trapRaised: boolean;
  breakLoop: boolean;
  /** The slow load path for the instruction at `pc`, the `icount`-th step (both for a trap). */
  regionLoad(va: number, width: number, pc: number, icount: number): number;
  /** The slow store path for the instruction at `pc`, the `icount`-th step. */
  regionStore(va: number, width: number, value: number, pc: number, icount: number): void;
}

/**
 * What a region's code reaches, fixed for the CPU's lifetime: the generated code captures these
 * as constants of its closure, so V8 embeds the arrays' addresses and lengths instead of checking
 * them on every access.
 */
export interface BlockEnvironment {
  readonly cpu: BlockHost;
  readonly x: Int32Array;
  readonly ram8: Uint8Array;
  readonly ramI8: Int8Array;
  readonly ram16: Uint16Array;
  readonly ramI16: Int16Array;
  readonly ram32: Int32Array;
  readonly tlbLoadTag: Int32Array;
  readonly tlbLoadOffset: Int32Array;
  readonly tlbStoreTag: Int32Array;
  readonly tlbStoreOffset: Int32Array;
  readonly multiplyHighSigned: MultiplyHigh;
  readonly multiplyHighSignedUnsigned: MultiplyHigh;
  readonly multiplyHighUnsigned: MultiplyHigh;
}

/** Runs a region from `pc` with `budget` steps left; icount was `icountBase` on entry. */
export type BlockFunction = (icountBase: number, budget: number, pc: number) => number;

/** A compiled region: the virtual page it was compiled for, where it can start, its code. */
export class CompiledBlock {
  constructor(
    /** Virtual page number (pc >>> 12): the region runs only when entered from this page. */
    readonly vpn: number,
    /** Byte offsets in the page of its units' first instructions: the pcs it can start at. */
    readonly entries: readonly number[],
    /** Byte offsets in the page covered by its instructions, [start, end). */
    readonly startOffset: number,
    readonly endOffset: number,
    readonly run: BlockFunction,
  ) {}
}

/** Longest unit, in instructions. */
export const BLOCK_STEPS_MAX = 48;
/** Units and instructions of a region at most (bounds the code V8 optimises at once). */
const REGION_UNITS_MAX = 16;
const REGION_INSTRUCTIONS_MAX = 128;

/** One decoded instruction of a unit being compiled. */
interface BlockInstruction {
  readonly op: number;
  readonly rd: number;
  readonly rs1: number;
  readonly rs2: number;
  readonly imm: number;
  readonly pc: number;
  readonly nextPc: number;
}

/** A straight-line run of a region: entered only at its first instruction. */
interface Unit {
  readonly offset: number;
  readonly instructions: BlockInstruction[];
  /** Byte offset after its last instruction. */
  readonly endOffset: number;
  /** Whether it ends with a jump (jal, jalr), after which nothing falls through. */
  readonly jumps: boolean;
}

type MultiplyHigh = (a: number, b: number) => number;

/**
 * Compiles the region starting at `pc` (slot `slot` of `decoded`), or returns undefined when the
 * first instruction cannot start one, or (`loopsOnly`) when the region would not loop.
 * `decodeAt(slot)` returns the meta word of a slot, decoding it first when needed, or 0 when the
 * instruction crosses the page end.
 */
export function compileBlock(
  decoded: Int32Array,
  slot: number,
  pc: number,
  decodeAt: (slot: number) => number,
  heat: Uint8Array,
  blocks: readonly (CompiledBlock | undefined)[],
  environment: BlockEnvironment,
  loopsOnly = false,
): CompiledBlock | undefined {
  const pageVa = pc & ~0xfff;
  const read = (offset: number): BlockInstruction | undefined => {
    const meta = decodeAt(offset);
    if (meta === 0 || !isBlockOp(meta & 0xff)) return undefined;
    const instructionPc = (pageVa + offset) | 0;
    return {
      op: meta & 0xff,
      rd: (meta >>> 8) & 31,
      rs1: (meta >>> 13) & 31,
      rs2: (meta >>> 18) & 31,
      imm: decoded[offset + 1] as number,
      pc: instructionPc,
      nextPc: (instructionPc + 2 + ((meta >>> 22) & 2)) | 0,
    };
  };

  // Pass 1: the units' first instructions, reachable from `slot` through static edges in the page.
  const leaders = new Set<number>([slot]);
  const queue = [slot];
  let scanned = 0;
  /** Where branches and jumps go back to (a region can loop only through one of them). */
  const backwardTargets: number[] = [];
  const addLeader = (offset: number) => {
    if (offset < 0 || offset >= 4096 || leaders.has(offset)) return;
    // Code the interpreter never ran stays out: V8 would optimise it without type feedback and
    // throw the optimised code away (a deoptimisation) when it first runs.
    if (heat[offset >>> 1] === 0) return;
    // Where another region starts, go there through the dispatch instead of compiling the same
    // code twice (V8's compile time, not the dispatch, dominates short runs).
    if (blocks[offset >>> 1] !== undefined) return;
    if (leaders.size >= REGION_UNITS_MAX || scanned >= REGION_INSTRUCTIONS_MAX) return;
    leaders.add(offset);
    queue.push(offset);
  };
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    let offset = next;
    for (let count = 0; count < BLOCK_STEPS_MAX && offset < 4096; count++) {
      if (offset !== next && leaders.has(offset)) break;
      const instruction = read(offset);
      if (instruction === undefined) break;
      scanned++;
      const end = offset + (instruction.nextPc - instruction.pc);
      const { op, rd, imm } = instruction;
      if (isBranch(op) || op === Op.Jal) {
        if (imm <= 0) backwardTargets.push(offset + imm);
        addLeader(offset + imm);
      }
      if (isBranch(op)) {
        addLeader(end);
        break;
      }
      if (op === Op.Jal || op === Op.Jalr) {
        if (rd !== 0) addLeader(end); // where the call returns to
        break;
      }
      offset = end;
    }
  }

  // `loopsOnly`: a region none of whose backward edges stays in it cannot loop, and pass 2 is
  // not worth doing (most attempts at 40 runs end here; the exact test follows the units).
  if (loopsOnly && !backwardTargets.some((target) => leaders.has(target))) return undefined;

  // Pass 2: each unit runs from its first instruction to a branch or jump or the next unit.
  const units: Unit[] = [];
  for (const start of [...leaders].sort((a, b) => a - b)) {
    const instructions: BlockInstruction[] = [];
    let offset = start;
    let jumps = false;
    while (instructions.length < BLOCK_STEPS_MAX && offset < 4096) {
      if (offset !== start && leaders.has(offset)) break;
      const instruction = read(offset);
      if (instruction === undefined) break;
      instructions.push(instruction);
      offset += instruction.nextPc - instruction.pc;
      if (instruction.op === Op.Jal || instruction.op === Op.Jalr) jumps = true;
      if (jumps || isBranch(instruction.op)) break;
    }
    if (instructions.length > 0) units.push({ offset: start, instructions, endOffset: offset, jumps });
  }
  if (!units.some((unit) => unit.offset === slot)) return undefined;

  const ids = new Int16Array(2048).fill(-1);
  units.forEach((unit, id) => {
    ids[unit.offset >>> 1] = id;
  });
  /** The unit starting at `target`, or -1 (outside the page, or no unit starts there). */
  const unitAt = (target: number) =>
    (target & ~0xfff) === pageVa ? (ids[(target & 0xfff) >>> 1] as number) : -1;
  // The budget is checked where a path can come back (a backward or dynamic jump) and on entry,
  // for the longest path to the next such check: the units reached by forward edges alone.
  // Also whether the region loops: a static edge back to one of its units.
  const longest = new Int32Array(units.length);
  let loops = false;
  for (let id = units.length - 1; id >= 0; id--) {
    const unit = units[id] as Unit;
    let after = 0;
    for (const target of staticTargets(unit, pageVa)) {
      const to = unitAt(target);
      if (to > id) after = Math.max(after, longest[to] as number);
      else if (to >= 0) loops = true;
    }
    longest[id] = unit.instructions.length + after;
  }
  // `loopsOnly`: only a region that loops is worth compiling this early; straight-line code
  // waits until it is hotter.
  if (loopsOnly && !loops) return undefined;
  const context: EmitContext = { pageVa, ids, longest, from: 0 };
  const cases = units.map((unit, id) => emitUnit(unit, id, units[id + 1], { ...context, from: id }));
  const used = new Set<number>();
  const written = new Set<number>();
  for (const unit of units) {
    for (const { op, rd, rs1, rs2 } of unit.instructions) {
      used.add(rs1);
      used.add(rs2);
      if (writesRd(op)) {
        used.add(rd);
        written.add(rd);
      }
    }
  }
  used.delete(0);
  written.delete(0);
  const declare = [...used].map((index) => `r${index} = x[${index}]`).join(', ');
  const writeBack = [...written].map((index) => `x[${index}] = r${index};`).join(' ');
  // Named by its first pc, so a profile (node --cpu-prof) tells the regions apart. In
  // parentheses, so V8 compiles it with the factory (it runs at once) instead of pre-parsing it
  // now and parsing it again on the first call.
  const source = `"use strict";
return (function region_${(pc >>> 0).toString(16)}(icountBase, budget, pc) {
${declare === '' ? '' : `let ${declare};`}
let steps = 0;
let exitPc = pc;
let id = ids[(pc & 0xfff) >> 1];
if (id < 0 || budget < longest[id]) { cpu.blockNextPc = pc; return 0; }
out: for (;;) {
switch (id) {
${cases.join('\n')}
default: // not reached: every id jumped to is a unit's
exitPc = pc;
break out;
}
}
${writeBack}
cpu.blockNextPc = exitPc;
return steps;
});`;
  const names = Object.keys(environment) as (keyof BlockEnvironment)[];
  const factory = new Function(...names, 'ids', 'longest', source) as (...values: unknown[]) => BlockFunction;
  const run = factory(...names.map((name) => environment[name]), ids, longest);
  return new CompiledBlock(
    pc >>> 12,
    units.map((unit) => unit.offset),
    Math.min(...units.map((unit) => unit.offset)),
    Math.max(...units.map((unit) => unit.endOffset)),
    run,
  );
}

/** The pcs a unit can go to that are known when compiling: branch and jal targets, fall-through. */
function staticTargets(unit: Unit, pageVa: number): number[] {
  const targets: number[] = [];
  for (const { op, imm, pc } of unit.instructions) {
    if (isBranch(op) || op === Op.Jal) targets.push((pc + imm) | 0);
  }
  if (!unit.jumps) targets.push((pageVa + unit.endOffset) | 0);
  return targets;
}

function isBlockOp(op: number): boolean {
  return op >= Op.Lui && op <= Op.Nop;
}

function isBranch(op: number): boolean {
  return op >= Op.Beq && op <= Op.Bgeu;
}

/** Whether the operation writes rd (stores, branches and Nop do not). */
function writesRd(op: number): boolean {
  return !isBranch(op) && !(op >= Op.Sb && op <= Op.Sw) && op !== Op.Nop;
}

interface EmitContext {
  readonly pageVa: number;
  /** Unit number per halfword of the page, -1 where no unit starts. */
  readonly ids: Int16Array;
  /** Per unit, the longest path from its start through forward edges alone. */
  readonly longest: Int32Array;
  /** The unit being emitted. */
  readonly from: number;
}

/** A guest register as JavaScript: x0 is the constant 0, the others live in locals. */
const r = (index: number) => (index === 0 ? '0' : `r${index}`);

/** Leaves the unit for `target` after `done` more steps: to another unit, or out of the region. */
function jump(target: number, done: number, context: EmitContext): string {
  const count = done === 0 ? '' : `steps += ${done}; `;
  const id = (target & ~0xfff) === context.pageVa ? (context.ids[(target & 0xfff) >>> 1] as number) : -1;
  if (id > context.from) return `${count}id = ${id}; continue;`;
  if (id >= 0) {
    // Backward: the path may loop, so the budget left must cover the target's forward paths.
    return `${count}if (budget - steps < ${context.longest[id]}) { exitPc = ${target}; break out; } id = ${id}; continue;`;
  }
  return `${count}exitPc = ${target}; break out;`;
}

/** The case of unit `id`; `next` is the unit after it in the switch, which it can fall into. */
function emitUnit(unit: Unit, id: number, next: Unit | undefined, context: EmitContext): string {
  const { instructions } = unit;
  const length = instructions.length;
  const first = instructions[0] as BlockInstruction;
  const lines = [`case ${id}: // ${(first.pc >>> 0).toString(16)}`];
  instructions.forEach((instruction, done) => {
    lines.push(emit(instruction, done, context));
  });
  if (!unit.jumps) {
    const fallPc = (context.pageVa + unit.endOffset) | 0;
    if (next !== undefined && next.offset === unit.endOffset) lines.push(`steps += ${length};`);
    else lines.push(jump(fallPc, length, context));
  }
  return lines.join('\n');
}

/** How to read and write memory of each width: the RAM view, its index shift and extension. */
interface Access {
  readonly view: string;
  readonly shift: number;
  /** Sign extension of the slow path's zero-extended value, when the load is signed. */
  readonly extend?: string;
}

/** The per-operation tables: how each load, store, branch and ALU operation is written. */
const LOADS: { readonly [op: number]: Access } = {
  [Op.Lb]: { view: 'ramI8', shift: 0, extend: '(value << 24) >> 24' },
  [Op.Lbu]: { view: 'ram8', shift: 0 },
  [Op.Lh]: { view: 'ramI16', shift: 1, extend: '(value << 16) >> 16' },
  [Op.Lhu]: { view: 'ram16', shift: 1 },
  [Op.Lw]: { view: 'ram32', shift: 2 },
};

const STORES: { readonly [op: number]: Access } = {
  [Op.Sb]: { view: 'ram8', shift: 0 },
  [Op.Sh]: { view: 'ram16', shift: 1 },
  [Op.Sw]: { view: 'ram32', shift: 2 },
};

/** The RAM element and alignment test of an access through a TLB's offsets. */
function ramElement(access: Access, offsets: string): { element: string; aligned: string } {
  const byte = `${offsets}[e] + (va & 0xfff)`;
  if (access.shift === 0) return { element: `${access.view}[${byte}]`, aligned: '' };
  return {
    element: `${access.view}[(${byte}) >> ${access.shift}]`,
    aligned: ` && (va & ${(1 << access.shift) - 1}) === 0`,
  };
}

function load(access: Access, instruction: BlockInstruction, done: number): string {
  const { rd, rs1, imm, pc, nextPc } = instruction;
  const { element, aligned } = ramElement(access, 'tlbLoadOffset');
  const write = rd === 0 ? '' : `${r(rd)} = value;`;
  const extend = access.extend === undefined ? '' : ` value = ${access.extend};`;
  // Compact: V8 parses every region's source, and loads and stores are most of it.
  return `{ const va = (${r(rs1)} + ${imm}) | 0, e = (va >>> 12) & 255; let value;
if (tlbLoadTag[e] === va >>> 12${aligned}) value = ${element};
else { value = cpu.regionLoad(va, ${1 << access.shift}, ${pc}, icountBase + steps + ${done});${extend}
if (cpu.trapRaised) { steps += ${done}; break out; }
if (cpu.breakLoop) { ${write} steps += ${done + 1}; exitPc = ${nextPc}; break out; } }
${write} }`;
}

function store(access: Access, instruction: BlockInstruction, done: number): string {
  const { rs1, rs2, imm, pc, nextPc } = instruction;
  const { element, aligned } = ramElement(access, 'tlbStoreOffset');
  return `{ const va = (${r(rs1)} + ${imm}) | 0, e = (va >>> 12) & 255;
if (tlbStoreTag[e] === va >>> 12${aligned}) ${element} = ${r(rs2)};
else { cpu.regionStore(va, ${1 << access.shift}, ${r(rs2)}, ${pc}, icountBase + steps + ${done});
if (cpu.trapRaised) { steps += ${done}; break out; }
if (cpu.breakLoop) { steps += ${done + 1}; exitPc = ${nextPc}; break out; } } }`;
}

const BRANCH_CONDITIONS: { readonly [op: number]: (a: string, b: string) => string } = {
  [Op.Beq]: (a, b) => `${a} === ${b}`,
  [Op.Bne]: (a, b) => `${a} !== ${b}`,
  [Op.Blt]: (a, b) => `${a} < ${b}`,
  [Op.Bge]: (a, b) => `${a} >= ${b}`,
  [Op.Bltu]: (a, b) => `(${a} >>> 0) < (${b} >>> 0)`,
  [Op.Bgeu]: (a, b) => `(${a} >>> 0) >= (${b} >>> 0)`,
};

/** Register-writing operations as int32 expressions of the sources a, b and the immediate. */
const ALU: { readonly [op: number]: (a: string, b: string, imm: number, pc: number) => string } = {
  [Op.Lui]: (_a, _b, imm) => `${imm}`,
  [Op.Auipc]: (_a, _b, imm, pc) => `${(pc + imm) | 0}`,
  [Op.Addi]: (a, _b, imm) => (a === '0' ? `${imm}` : `(${a} + ${imm}) | 0`),
  [Op.Slti]: (a, _b, imm) => `${a} < ${imm} ? 1 : 0`,
  [Op.Sltiu]: (a, _b, imm) => `(${a} >>> 0) < ${imm >>> 0} ? 1 : 0`,
  [Op.Xori]: (a, _b, imm) => `${a} ^ ${imm}`,
  [Op.Ori]: (a, _b, imm) => `${a} | ${imm}`,
  [Op.Andi]: (a, _b, imm) => `${a} & ${imm}`,
  [Op.Slli]: (a, _b, imm) => `${a} << ${imm}`,
  [Op.Srli]: (a, _b, imm) => `(${a} >>> ${imm}) | 0`,
  [Op.Srai]: (a, _b, imm) => `${a} >> ${imm}`,
  [Op.Add]: (a, b) => `(${a} + ${b}) | 0`,
  [Op.Sub]: (a, b) => `(${a} - ${b}) | 0`,
  [Op.Sll]: (a, b) => `${a} << ${b}`,
  [Op.Slt]: (a, b) => `${a} < ${b} ? 1 : 0`,
  [Op.Sltu]: (a, b) => `(${a} >>> 0) < (${b} >>> 0) ? 1 : 0`,
  [Op.Xor]: (a, b) => `${a} ^ ${b}`,
  [Op.Srl]: (a, b) => `(${a} >>> ${b}) | 0`,
  [Op.Sra]: (a, b) => `${a} >> ${b}`,
  [Op.Or]: (a, b) => `${a} | ${b}`,
  [Op.And]: (a, b) => `${a} & ${b}`,
  [Op.Mul]: (a, b) => `Math.imul(${a}, ${b})`,
  [Op.Mulh]: (a, b) => `multiplyHighSigned(${a}, ${b})`,
  [Op.Mulhsu]: (a, b) => `multiplyHighSignedUnsigned(${a}, ${b})`,
  [Op.Mulhu]: (a, b) => `multiplyHighUnsigned(${a}, ${b})`,
  // INT_MIN / -1 wraps to INT_MIN; x % y can be -0, which | 0 turns into 0.
  [Op.Div]: (a, b) => `(${b} === 0 ? -1 : ${b} === -1 ? -${a} | 0 : (${a} / ${b}) | 0)`,
  [Op.Divu]: (a, b) => `(${b} === 0 ? -1 : ((${a} >>> 0) / (${b} >>> 0)) | 0)`,
  [Op.Rem]: (a, b) => `(${b} === 0 ? ${a} : ${b} === -1 ? 0 : (${a} % ${b}) | 0)`,
  [Op.Remu]: (a, b) => `(${b} === 0 ? ${a} : ((${a} >>> 0) % (${b} >>> 0)) | 0)`,
};

/** JavaScript for one instruction; `done` is the number of the unit's steps completed before it. */
function emit(instruction: BlockInstruction, done: number, context: EmitContext): string {
  const { op, rd, rs1, rs2, imm, pc, nextPc } = instruction;
  const a = r(rs1);
  const b = r(rs2);
  const link = rd === 0 ? '' : `${r(rd)} = ${nextPc}; `;
  if (op === Op.Jal) return `${link}${jump((pc + imm) | 0, done + 1, context)}`;
  if (op === Op.Jalr) {
    // A target in this page continues at its unit, if one starts there (`default` leaves).
    return `{ const target = (${a} + ${imm}) & ~1; ${link}steps += ${done + 1};
  if ((target & ~0xfff) === ${context.pageVa}) {
    id = ids[(target & 0xfff) >> 1];
    if (id >= 0 && budget - steps >= longest[id]) continue;
  }
  exitPc = target; break out; }`;
  }
  const condition = BRANCH_CONDITIONS[op];
  if (condition !== undefined)
    return `if (${condition(a, b)}) { ${jump((pc + imm) | 0, done + 1, context)} }`;
  const loadAccess = LOADS[op];
  if (loadAccess !== undefined) return load(loadAccess, instruction, done);
  const storeAccess = STORES[op];
  if (storeAccess !== undefined) return store(storeAccess, instruction, done);
  const alu = ALU[op];
  if (alu === undefined || rd === 0) return ''; // Op.Nop
  return `${r(rd)} = ${alu(a, b, imm, pc)};`;
}
