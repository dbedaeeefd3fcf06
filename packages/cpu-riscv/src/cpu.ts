import type { Bus, Cpu, CpuInterruptLine, RamRegion, RunOutcome, StateSection } from '@ftvm/core';
import { ConfigError } from '@ftvm/core';
import { type AtomicsHost, executeAtomic, Reservation } from './atomics.js';
import { type BlockEnvironment, type BlockHost, type CompiledBlock, compileBlock } from './block-compiler.js';
import * as riscv from './constants.js';
import { CsrFile, type CsrHost, csrRead, executeCsr } from './csr.js';
import { DECODED_PAGE_WORDS, decode16, decode32, SCRATCH_SLOT } from './decode.js';
import { Op, TRAPPED } from './op.js';
import { PhysicalMemoryProtection, PMP_R, PMP_W, PMP_X } from './pmp.js';
import { restoreHartState, type SnapshotHost, saveHartState } from './snapshot.js';
import { ACCESS_FETCH, ACCESS_LOAD, ACCESS_STORE, type TranslationHost, translate } from './translation.js';

/** Options of {@link RiscvCpu}. */
export interface RiscvCpuOptions {
  readonly bus: Bus;
  /**
   * Returns the 64-bit machine timer (mtime, 10 MHz ticks) as a JS number. Read when the guest
   * reads the `time`/`timeh` CSRs; without it those CSRs are illegal, as on QEMU without a timer.
   */
  readonly readTime?: () => number;
  /** The value of mhartid; 0 by default. */
  readonly hartId?: number;
  /**
   * Compile hot blocks of instructions into JavaScript functions (with `new Function`); true by
   * default. Set false where code generation is not allowed (a strict Content-Security-Policy);
   * the interpreter alone behaves identically, only slower.
   */
  readonly compileBlocks?: boolean;
}

const TLB_ENTRIES = 256;
const TLB_MASK = TLB_ENTRIES - 1;
const TWO_POW_32 = 0x1_0000_0000;
/** Interrupts in the order the privileged spec takes them (3.1.9), with LCOFI last. */
const INTERRUPT_PRIORITY = [
  riscv.IRQ_MEI,
  riscv.IRQ_MSI,
  riscv.IRQ_MTI,
  riscv.IRQ_SEI,
  riscv.IRQ_SSI,
  riscv.IRQ_STI,
  riscv.IRQ_LCOFI,
];
const INTERRUPT_LINE_BITS: Record<CpuInterruptLine, number> = {
  'machine-software': riscv.MIP_MSIP,
  'machine-timer': riscv.MIP_MTIP,
  'machine-external': riscv.MIP_MEIP,
  'supervisor-external': riscv.MIP_SEIP,
};
/**
 * Executions of an instruction by the interpreter before a region is compiled starting there: a
 * region that loops pays back its compile time (about half a millisecond of V8's) at once; a
 * straight-line one only if it runs often (Linux boots through some 5,000 such paths, most of
 * them run a few dozen times: compiling them at 40 took a third of the boot).
 */
const LOOP_COMPILE_THRESHOLD = 40;
export const STRAIGHT_COMPILE_THRESHOLD = 250;

/**
 * The hart as the cold code kept in modules of its own (translation.ts, csr.ts, atomics.ts,
 * snapshot.ts) sees it: RiscvCpu's private members that their host interfaces name, reached
 * through this cast, as the block compiler reaches BlockHost. Private, they stay off the class's
 * public type and declaration.
 */
type Hart = TranslationHost & CsrHost & AtomicsHost & SnapshotHost;

function hart(cpu: RiscvCpu): Hart {
  return cpu as unknown as Hart;
}

/**
 * An RV32IMAC hart with M, S and U modes, Sv32 paging and PMP, behaving as QEMU 7.2's `rv32` CPU
 * on the virt board where the ISA manual leaves a choice.
 *
 * The interpreter executes pre-decoded instructions cached per physical page and compiles hot
 * straight-line code into JavaScript functions (block-compiler.ts); both reach RAM through small
 * TLBs that map virtual pages straight to offsets in the RAM byte array, and count every step so
 * that `run(budget)` is exact.
 *
 * RAM is read through typed-array views, which use the host's byte order: the CPU requires a
 * little-endian host (every platform Node and browsers run on).
 */
export class RiscvCpu implements Cpu {
  private readonly bus: Bus;
  private readonly readTime: (() => number) | undefined;
  private readonly hartId: number;
  private readonly compileBlocksEnabled: boolean;

  // ---- architectural state ----
  private readonly x = new Int32Array(32);
  private pcValue = 0;
  private privilege = riscv.PRIVILEGE_MACHINE;
  private icountValue = 0;
  /** Traps taken since boot: icount minus this is the number of instructions retired. */
  private trapCount = 0;
  private waitingForInterrupt = false;
  private readonly reservation = new Reservation();
  /** The interrupt lines driven by devices (MSIP, MTIP, MEIP, SEIP). */
  private mipLines = 0;
  /** What the CSRs hold (csr.ts), but for the PMP's registers (pmp) and mip's lines (mipLines). */
  private readonly csrs = new CsrFile();
  private readonly pmp = new PhysicalMemoryProtection();

  // ---- run control ----
  private stopRequested = false;
  /** Set by anything that needs the run loop to look again between steps (traps, CSR writes, lines). */
  private breakLoop = false;
  private trapRaised = false;

  // ---- derived state and caches ----
  /** Privilege that loads and stores use (MPRV applied). */
  private dataPrivilege = riscv.PRIVILEGE_MACHINE;
  private translationKey = -1;
  private readonly ram: RamRegion | undefined;
  private readonly ramBase: number;
  private readonly ramSize: number;
  private readonly ram8: Uint8Array;
  private readonly ramI8: Int8Array;
  private readonly ram16: Uint16Array;
  private readonly ramI16: Int16Array;
  private readonly ram32: Int32Array;
  private readonly dirtyPages: Uint8Array;
  private readonly otherRam: readonly RamRegion[];
  /** Decoded instructions per page of the first RAM region. */
  private readonly decodedPages: (Int32Array | undefined)[];
  /** Compiled blocks per page (indexed by halfword), created with the decoded page. */
  private readonly pageBlocks: ((CompiledBlock | undefined)[] | undefined)[];
  /** How often the interpreter ran each halfword of a page (saturating), for compiling blocks. */
  private readonly pageHeat: (Uint8Array | undefined)[];
  /** Byte range of each page that compiled blocks cover, [low, high); low >= high when none. */
  private readonly pageBlockLow: Int32Array;
  private readonly pageBlockHigh: Int32Array;
  /** The pc after a compiled block (set by the block). */
  blockNextPc = 0;
  /** What compiled regions capture (created once: regions embed these arrays as constants). */
  private readonly blockEnvironment: BlockEnvironment;
  private compiledBlockCount = 0;
  private readonly scratchDecoded = new Int32Array(DECODED_PAGE_WORDS);
  private readonly tlbLoadTag = new Int32Array(TLB_ENTRIES).fill(-1);
  private readonly tlbLoadOffset = new Int32Array(TLB_ENTRIES);
  private readonly tlbStoreTag = new Int32Array(TLB_ENTRIES).fill(-1);
  private readonly tlbStoreOffset = new Int32Array(TLB_ENTRIES);
  /**
   * Stores into RAM pages that hold decoded code: still translated and checked, but they must drop
   * the decoded instructions they overwrite, so they take this second, slower TLB.
   */
  private readonly tlbCodeStoreTag = new Int32Array(TLB_ENTRIES).fill(-1);
  private readonly tlbCodeStoreOffset = new Int32Array(TLB_ENTRIES);
  private readonly tlbFetchTag = new Int32Array(TLB_ENTRIES).fill(-1);
  private readonly tlbFetchPage = new Int32Array(TLB_ENTRIES);
  /** Virtual page of the page last returned by fetchPage, or -1 when it is not cacheable. */
  private fetchedVpn = -1;
  /** Byte offset in RAM of the page last returned by fetchPage. */
  private fetchedPageOffset = 0;

  constructor(options: RiscvCpuOptions) {
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
      throw new ConfigError('RiscvCpu needs a little-endian host');
    }
    this.bus = options.bus;
    this.readTime = options.readTime;
    this.hartId = options.hartId ?? 0;
    this.compileBlocksEnabled = options.compileBlocks ?? true;
    const regions = options.bus.ram;
    const first = regions[0];
    this.otherRam = regions.slice(1);
    if (first !== undefined && first.bytes.byteOffset % 4 === 0 && first.size % 4096 === 0) {
      this.ram = first;
      this.ramBase = first.base;
      this.ramSize = first.size;
      const buffer = first.bytes.buffer;
      const offset = first.bytes.byteOffset;
      this.ram8 = first.bytes;
      this.ramI8 = new Int8Array(buffer, offset, first.size);
      this.ram16 = new Uint16Array(buffer, offset, first.size >>> 1);
      this.ramI16 = new Int16Array(buffer, offset, first.size >>> 1);
      this.ram32 = new Int32Array(buffer, offset, first.size >>> 2);
      this.dirtyPages = first.dirtyPages;
    } else {
      this.ram = undefined;
      this.otherRam = regions;
      this.ramBase = 0;
      this.ramSize = 0;
      this.ram8 = new Uint8Array(0);
      this.ramI8 = new Int8Array(0);
      this.ram16 = new Uint16Array(0);
      this.ramI16 = new Int16Array(0);
      this.ram32 = new Int32Array(0);
      this.dirtyPages = new Uint8Array(0);
    }
    const pages = this.ramSize >>> 12;
    this.decodedPages = new Array<Int32Array | undefined>(pages).fill(undefined);
    this.pageBlocks = new Array<(CompiledBlock | undefined)[] | undefined>(pages).fill(undefined);
    this.pageHeat = new Array<Uint8Array | undefined>(pages).fill(undefined);
    this.pageBlockLow = new Int32Array(pages);
    this.pageBlockHigh = new Int32Array(pages);
    this.blockEnvironment = {
      cpu: this as unknown as BlockHost,
      x: this.x,
      ram8: this.ram8,
      ramI8: this.ramI8,
      ram16: this.ram16,
      ramI16: this.ramI16,
      ram32: this.ram32,
      tlbLoadTag: this.tlbLoadTag,
      tlbLoadOffset: this.tlbLoadOffset,
      tlbStoreTag: this.tlbStoreTag,
      tlbStoreOffset: this.tlbStoreOffset,
      multiplyHighSigned,
      multiplyHighSignedUnsigned,
      multiplyHighUnsigned,
    };
    this.reset(0, 0, 0);
  }

  get icount(): number {
    return this.icountValue;
  }

  get pc(): number {
    return this.pcValue >>> 0;
  }

  get waiting(): boolean {
    return this.waitingForInterrupt;
  }

  /** How many blocks were compiled since construction (a statistic; not architectural state). */
  get compiledBlocks(): number {
    return this.compiledBlockCount;
  }

  /** The current privilege mode: 0 user, 1 supervisor, 3 machine. */
  get privilegeMode(): number {
    return this.privilege;
  }

  getRegister(index: number): number {
    return (this.x[index & 31] as number) >>> 0;
  }

  /** Sets general-purpose register `index` (writes to x0 are ignored). For tests and loaders. */
  setRegister(index: number, value: number): void {
    if ((index & 31) !== 0) this.x[index & 31] = value;
  }

  /**
   * Reads a CSR as the hart in M mode would, without side effects on the guest (reading
   * `time`/`timeh` does call readTime), or undefined when it does not exist. For tests and
   * debuggers.
   */
  readCsr(csr: number): number | undefined {
    const value = csrRead(hart(this), csr & 0xfff);
    return value === undefined ? undefined : value >>> 0;
  }

  reset(pc: number, a0: number, a1: number): void {
    this.x.fill(0);
    this.x[10] = a0;
    this.x[11] = a1;
    this.pcValue = pc | 0;
    this.privilege = riscv.PRIVILEGE_MACHINE;
    this.waitingForInterrupt = false;
    this.reservation.valid = false;
    this.csrs.reset(this.retired());
    this.pmp.reset();
    this.breakLoop = true;
    this.trapRaised = false;
    this.updateTranslation(true);
    this.invalidateMemoryCaches();
  }

  requestStop(): void {
    this.stopRequested = true;
    this.breakLoop = true;
  }

  setInterruptLine(line: CpuInterruptLine, level: boolean): void {
    const bit = INTERRUPT_LINE_BITS[line];
    if (level) this.mipLines |= bit;
    else this.mipLines &= ~bit;
    this.breakLoop = true;
  }

  invalidateMemoryCaches(): void {
    this.decodedPages.fill(undefined);
    this.pageBlocks.fill(undefined);
    this.pageHeat.fill(undefined);
    this.pageBlockLow.fill(0);
    this.pageBlockHigh.fill(0);
    this.flushTlb();
  }

  /**
   * A cheaper {@link invalidateMemoryCaches} for writes behind the CPU's back (DMA): drops only
   * the decoded instructions and compiled blocks that overlap the guest-physical bytes
   * [address, address + sizeBytes). Call it between runs. (Not part of the `Cpu` contract.)
   */
  invalidateMemoryRange(address: number, sizeBytes: number): void {
    const start = Math.max(address - this.ramBase, 0);
    const end = Math.min(address - this.ramBase + sizeBytes, this.ramSize);
    if (this.ram === undefined || start >= end) return;
    this.forgetDecoded(start, end - start);
    this.breakLoop = true;
  }

  /**
   * A cheaper {@link invalidateMemoryCaches} for when the machine cleared `dirtyPages` but wrote
   * no memory: forgets only which pages this CPU already marked dirty (its store TLBs), keeping
   * decoded instructions and compiled blocks. Call it between runs. (Not part of the `Cpu`
   * contract.)
   */
  resetDirtyTracking(): void {
    this.tlbStoreTag.fill(-1);
    this.tlbCodeStoreTag.fill(-1);
  }

  run(budget: number): RunOutcome {
    if (this.stopRequested) {
      this.stopRequested = false;
      return { steps: 0, reason: 'stop' };
    }
    let done = 0;
    while (done < budget) {
      if (this.waitingForInterrupt) {
        if ((this.mipValue() & this.csrs.mie) === 0) return { steps: done, reason: 'wfi' };
        this.waitingForInterrupt = false;
      }
      if (this.takePendingInterrupt()) {
        done++;
        continue;
      }
      this.breakLoop = false;
      done += this.executeSteps(budget - done);
      if (this.stopRequested) {
        this.stopRequested = false;
        return { steps: done, reason: 'stop' };
      }
    }
    return { steps: done, reason: 'budget' };
  }

  // ======================================================================================
  // The interpreter
  // ======================================================================================

  /**
   * Executes up to `limit` steps, stopping early (after the step) when something sets breakLoop.
   * A trap ends the call and counts as one step. Returns the steps done.
   *
   * Only the slow paths (method calls) can set breakLoop, so only they check it, by dropping
   * `limit` to 0; the fast paths test nothing but the loop condition.
   */
  private executeSteps(limit: number): number {
    const x = this.x;
    const ram8 = this.ram8;
    const ramI8 = this.ramI8;
    const ram16 = this.ram16;
    const ramI16 = this.ramI16;
    const ram32 = this.ram32;
    const tlbLoadTag = this.tlbLoadTag;
    const tlbLoadOffset = this.tlbLoadOffset;
    const tlbStoreTag = this.tlbStoreTag;
    const tlbStoreOffset = this.tlbStoreOffset;
    const icountStart = this.icountValue;
    let pc = this.pcValue;
    let steps = 0;
    let fetchVpn = -1;
    let decoded: Int32Array = this.scratchDecoded;
    let blocks: (CompiledBlock | undefined)[] | undefined;
    let heat: Uint8Array | undefined;
    let budgetTail = false;
    loop: while (steps < limit) {
      if (pc >>> 12 !== fetchVpn) {
        this.pcValue = pc;
        this.icountValue = icountStart + steps;
        const page = this.fetchPage(pc);
        if (page === null) break;
        if (this.breakLoop) limit = 0;
        decoded = page;
        fetchVpn = this.fetchedVpn;
        if (fetchVpn !== -1 && this.compileBlocksEnabled) {
          blocks = this.pageBlocks[this.fetchedPageOffset >>> 12];
          heat = this.pageHeat[this.fetchedPageOffset >>> 12];
        } else {
          blocks = undefined;
        }
      }
      let slot = pc & 0xffe;
      if (blocks !== undefined) {
        const block = blocks[slot >>> 1];
        if (block !== undefined) {
          if (block.vpn === fetchVpn) {
            const done = block.run(icountStart + steps, limit - steps, pc);
            if (done !== 0 || this.trapRaised) {
              steps += done;
              if (this.trapRaised) break;
              pc = this.blockNextPc;
              if (this.breakLoop) limit = 0;
              continue;
            }
            // The budget left does not cover the region's first unit: step it here, and
            // the rest of the budget too, without heating code in the middle of regions.
            budgetTail = true;
          }
        } else if (!budgetTail) {
          const count = (heat as Uint8Array)[slot >>> 1] as number;
          if (count < 255) {
            (heat as Uint8Array)[slot >>> 1] = count + 1;
            if (count + 1 === LOOP_COMPILE_THRESHOLD) {
              if (this.compileBlockAt(decoded, slot, pc, blocks, true)) continue; // run it
            } else if (count + 1 === STRAIGHT_COMPILE_THRESHOLD) {
              if (this.compileBlockAt(decoded, slot, pc, blocks, false)) continue;
            }
          }
        }
      }
      let meta = decoded[slot] as number;
      if (meta === 0) {
        this.pcValue = pc;
        this.icountValue = icountStart + steps;
        slot = this.decodeSlot(decoded, slot, pc);
        if (slot < 0) break;
        if (this.breakLoop) limit = 0;
        meta = decoded[slot] as number;
      }
      const imm = decoded[slot + 1] as number;
      const rd = (meta >>> 8) & 31;
      const rs1 = (meta >>> 13) & 31;
      const rs2 = (meta >>> 18) & 31;
      const nextPc = (pc + 2 + ((meta >>> 22) & 2)) | 0;
      switch (meta & 0xff) {
        case Op.Lui:
          x[rd] = imm;
          pc = nextPc;
          break;
        case Op.Auipc:
          x[rd] = pc + imm;
          pc = nextPc;
          break;
        case Op.Jal:
          x[rd] = nextPc;
          x[0] = 0;
          pc = (pc + imm) | 0;
          break;
        case Op.Jalr: {
          const target = ((x[rs1] as number) + imm) & ~1;
          x[rd] = nextPc;
          x[0] = 0;
          pc = target;
          break;
        }
        case Op.Beq:
          pc = (x[rs1] as number) === (x[rs2] as number) ? (pc + imm) | 0 : nextPc;
          break;
        case Op.Bne:
          pc = (x[rs1] as number) !== (x[rs2] as number) ? (pc + imm) | 0 : nextPc;
          break;
        case Op.Blt:
          pc = (x[rs1] as number) < (x[rs2] as number) ? (pc + imm) | 0 : nextPc;
          break;
        case Op.Bge:
          pc = (x[rs1] as number) >= (x[rs2] as number) ? (pc + imm) | 0 : nextPc;
          break;
        case Op.Bltu:
          pc = (x[rs1] as number) >>> 0 < (x[rs2] as number) >>> 0 ? (pc + imm) | 0 : nextPc;
          break;
        case Op.Bgeu:
          pc = (x[rs1] as number) >>> 0 >= (x[rs2] as number) >>> 0 ? (pc + imm) | 0 : nextPc;
          break;
        case Op.Lb: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          let value: number;
          if (tlbLoadTag[entry] === va >>> 12) {
            value = ramI8[(tlbLoadOffset[entry] as number) + (va & 0xfff)] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            value = (this.loadSlow(va, 1) << 24) >> 24;
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          x[rd] = value;
          x[0] = 0;
          pc = nextPc;
          break;
        }
        case Op.Lbu: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          let value: number;
          if (tlbLoadTag[entry] === va >>> 12) {
            value = ram8[(tlbLoadOffset[entry] as number) + (va & 0xfff)] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            value = this.loadSlow(va, 1);
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          x[rd] = value;
          x[0] = 0;
          pc = nextPc;
          break;
        }
        case Op.Lh: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          let value: number;
          if (tlbLoadTag[entry] === va >>> 12 && (va & 1) === 0) {
            value = ramI16[((tlbLoadOffset[entry] as number) + (va & 0xfff)) >> 1] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            value = (this.loadSlow(va, 2) << 16) >> 16;
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          x[rd] = value;
          x[0] = 0;
          pc = nextPc;
          break;
        }
        case Op.Lhu: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          let value: number;
          if (tlbLoadTag[entry] === va >>> 12 && (va & 1) === 0) {
            value = ram16[((tlbLoadOffset[entry] as number) + (va & 0xfff)) >> 1] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            value = this.loadSlow(va, 2);
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          x[rd] = value;
          x[0] = 0;
          pc = nextPc;
          break;
        }
        case Op.Lw: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          let value: number;
          if (tlbLoadTag[entry] === va >>> 12 && (va & 3) === 0) {
            value = ram32[((tlbLoadOffset[entry] as number) + (va & 0xfff)) >> 2] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            value = this.loadSlow(va, 4);
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          x[rd] = value;
          x[0] = 0;
          pc = nextPc;
          break;
        }
        case Op.Sb: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          if (tlbStoreTag[entry] === va >>> 12) {
            ram8[(tlbStoreOffset[entry] as number) + (va & 0xfff)] = x[rs2] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            this.storeSlow(va, 1, x[rs2] as number);
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          pc = nextPc;
          break;
        }
        case Op.Sh: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          if (tlbStoreTag[entry] === va >>> 12 && (va & 1) === 0) {
            ram16[((tlbStoreOffset[entry] as number) + (va & 0xfff)) >> 1] = x[rs2] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            this.storeSlow(va, 2, x[rs2] as number);
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          pc = nextPc;
          break;
        }
        case Op.Sw: {
          const va = ((x[rs1] as number) + imm) | 0;
          const entry = (va >>> 12) & TLB_MASK;
          if (tlbStoreTag[entry] === va >>> 12 && (va & 3) === 0) {
            ram32[((tlbStoreOffset[entry] as number) + (va & 0xfff)) >> 2] = x[rs2] as number;
          } else {
            this.pcValue = pc;
            this.icountValue = icountStart + steps;
            this.storeSlow(va, 4, x[rs2] as number);
            if (this.trapRaised) break loop;
            if (this.breakLoop) limit = 0;
          }
          pc = nextPc;
          break;
        }
        case Op.Addi:
          x[rd] = (x[rs1] as number) + imm;
          pc = nextPc;
          break;
        case Op.Slti:
          x[rd] = (x[rs1] as number) < imm ? 1 : 0;
          pc = nextPc;
          break;
        case Op.Sltiu:
          x[rd] = (x[rs1] as number) >>> 0 < imm >>> 0 ? 1 : 0;
          pc = nextPc;
          break;
        case Op.Xori:
          x[rd] = (x[rs1] as number) ^ imm;
          pc = nextPc;
          break;
        case Op.Ori:
          x[rd] = (x[rs1] as number) | imm;
          pc = nextPc;
          break;
        case Op.Andi:
          x[rd] = (x[rs1] as number) & imm;
          pc = nextPc;
          break;
        case Op.Slli:
          x[rd] = (x[rs1] as number) << imm;
          pc = nextPc;
          break;
        case Op.Srli:
          x[rd] = (x[rs1] as number) >>> imm;
          pc = nextPc;
          break;
        case Op.Srai:
          x[rd] = (x[rs1] as number) >> imm;
          pc = nextPc;
          break;
        case Op.Add:
          x[rd] = (x[rs1] as number) + (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Sub:
          x[rd] = (x[rs1] as number) - (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Sll:
          x[rd] = (x[rs1] as number) << (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Slt:
          x[rd] = (x[rs1] as number) < (x[rs2] as number) ? 1 : 0;
          pc = nextPc;
          break;
        case Op.Sltu:
          x[rd] = (x[rs1] as number) >>> 0 < (x[rs2] as number) >>> 0 ? 1 : 0;
          pc = nextPc;
          break;
        case Op.Xor:
          x[rd] = (x[rs1] as number) ^ (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Srl:
          x[rd] = (x[rs1] as number) >>> (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Sra:
          x[rd] = (x[rs1] as number) >> (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Or:
          x[rd] = (x[rs1] as number) | (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.And:
          x[rd] = (x[rs1] as number) & (x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Mul:
          x[rd] = Math.imul(x[rs1] as number, x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Mulh:
          x[rd] = multiplyHighSigned(x[rs1] as number, x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Mulhsu:
          x[rd] = multiplyHighSignedUnsigned(x[rs1] as number, x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Mulhu:
          x[rd] = multiplyHighUnsigned(x[rs1] as number, x[rs2] as number);
          pc = nextPc;
          break;
        case Op.Div: {
          const dividend = x[rs1] as number;
          const divisor = x[rs2] as number;
          if (divisor === 0) x[rd] = -1;
          else if (divisor === -1)
            x[rd] = -dividend; // INT_MIN / -1 wraps to INT_MIN
          else x[rd] = (dividend / divisor) | 0;
          pc = nextPc;
          break;
        }
        case Op.Divu: {
          const divisor = (x[rs2] as number) >>> 0;
          x[rd] = divisor === 0 ? -1 : ((x[rs1] as number) >>> 0) / divisor;
          pc = nextPc;
          break;
        }
        case Op.Rem: {
          const dividend = x[rs1] as number;
          const divisor = x[rs2] as number;
          if (divisor === 0) x[rd] = dividend;
          else if (divisor === -1) x[rd] = 0;
          else x[rd] = dividend % divisor;
          pc = nextPc;
          break;
        }
        case Op.Remu: {
          const divisor = (x[rs2] as number) >>> 0;
          x[rd] = divisor === 0 ? (x[rs1] as number) : ((x[rs1] as number) >>> 0) % divisor;
          pc = nextPc;
          break;
        }
        case Op.Nop:
          pc = nextPc;
          break;
        default: {
          // Everything else is rare: system instructions, atomics, illegal instructions.
          this.pcValue = pc;
          this.icountValue = icountStart + steps;
          const result = this.executeRare(meta, imm, nextPc);
          if (result === TRAPPED) break loop;
          if (this.breakLoop) limit = 0;
          pc = result;
          break;
        }
      }
      steps++;
    }
    if (this.trapRaised) {
      this.trapRaised = false;
      steps++;
    } else {
      this.pcValue = pc;
    }
    this.icountValue = icountStart + steps;
    return steps;
  }

  /** Executes a rare instruction; returns the next pc, or TRAPPED. */
  private executeRare(meta: number, imm: number, nextPc: number): number {
    const x = this.x;
    const rd = (meta >>> 8) & 31;
    const rs1 = (meta >>> 13) & 31;
    const rs2 = (meta >>> 18) & 31;
    const op = meta & 0xff;
    switch (op) {
      case Op.FenceI:
        // Decoded code is kept coherent with every store, so there is nothing to drop.
        return nextPc;
      case Op.Ecall:
        this.raiseException(riscv.CAUSE_ECALL_FROM_U + this.privilege, 0);
        return TRAPPED;
      case Op.Ebreak:
        this.raiseException(riscv.CAUSE_BREAKPOINT, 0);
        return TRAPPED;
      case Op.Mret:
        return this.executeMret();
      case Op.Sret:
        return this.executeSret();
      case Op.Wfi:
        return this.executeWfi(nextPc);
      case Op.SfenceVma:
        if (
          this.privilege === riscv.PRIVILEGE_USER ||
          (this.privilege === riscv.PRIVILEGE_SUPERVISOR && (this.csrs.mstatus & riscv.MSTATUS_TVM) !== 0)
        ) {
          return this.illegalInstruction(0x12000073 | (rs1 << 15) | (rs2 << 20));
        }
        this.flushTlb();
        this.breakLoop = true;
        return nextPc;
      case Op.Csrrw:
      case Op.Csrrs:
      case Op.Csrrc:
        return executeCsr(hart(this), op, imm, rd, rs1, x[rs1] as number, nextPc);
      case Op.Csrrwi:
      case Op.Csrrsi:
      case Op.Csrrci:
        return executeCsr(hart(this), op, imm, rd, rs1, rs1, nextPc);
      case Op.LrW:
      case Op.ScW:
      case Op.AmoswapW:
      case Op.AmoaddW:
      case Op.AmoxorW:
      case Op.AmoandW:
      case Op.AmoorW:
      case Op.AmominW:
      case Op.AmomaxW:
      case Op.AmominuW:
      case Op.AmomaxuW:
        return executeAtomic(hart(this), op, rd, x[rs1] as number, x[rs2] as number, nextPc);
      default:
        // Op.Illegal carries the instruction bits in imm.
        return this.illegalInstruction(imm);
    }
  }

  private illegalInstruction(bits: number): number {
    this.raiseException(riscv.CAUSE_ILLEGAL_INSTRUCTION, bits);
    return TRAPPED;
  }

  // ======================================================================================
  // Instruction fetch and the decode cache
  // ======================================================================================

  /**
   * Returns the decoded page that holds `pc` (and sets fetchedVpn), or the scratch page with the
   * instruction at `pc` decoded (fetchedVpn = -1) when the page cannot be cached, or null after
   * raising a fetch exception.
   */
  private fetchPage(pc: number): Int32Array | null {
    const vpn = pc >>> 12;
    const entry = vpn & TLB_MASK;
    let pageIndex: number;
    if (this.tlbFetchTag[entry] === vpn) {
      pageIndex = this.tlbFetchPage[entry] as number;
    } else {
      const physical = translate(hart(this), pc, ACCESS_FETCH, this.privilege);
      if (physical < 0) return null;
      const pageStart = physical - (physical % 4096);
      const offset = pageStart - this.ramBase;
      if (
        this.ram !== undefined &&
        offset >= 0 &&
        offset < this.ramSize &&
        this.pmp.rangePermissions(pageStart, 4096, this.privilege) !== -1
      ) {
        if ((this.pmp.rangePermissions(pageStart, 4096, this.privilege) & PMP_X) === 0) {
          this.raiseException(riscv.CAUSE_FETCH_ACCESS, pc);
          return null;
        }
        pageIndex = offset >>> 12;
        this.tlbFetchTag[entry] = vpn;
        this.tlbFetchPage[entry] = pageIndex;
      } else {
        // Not cacheable: fetch and decode this one instruction into the scratch page.
        const scratch = this.scratchDecoded;
        const slot = pc & 0xffe;
        const low = this.fetchHalfword(pc, physical);
        if (low < 0) return null;
        if ((low & 3) !== 3) {
          decode16(low, scratch, slot);
        } else {
          const high = this.fetchHalfword((pc + 2) | 0, -1);
          if (high < 0) return null;
          decode32(low | (high << 16), scratch, slot);
        }
        this.fetchedVpn = -1;
        return scratch;
      }
    }
    let page = this.decodedPages[pageIndex];
    if (page === undefined) {
      page = new Int32Array(DECODED_PAGE_WORDS);
      this.decodedPages[pageIndex] = page;
      this.pageBlocks[pageIndex] = new Array<CompiledBlock | undefined>(2048).fill(undefined);
      this.pageHeat[pageIndex] = new Uint8Array(2048);
      this.pageBlockLow[pageIndex] = 0;
      this.pageBlockHigh[pageIndex] = 0;
      this.dropStoreTlbEntriesFor(pageIndex << 12);
    }
    this.fetchedVpn = vpn;
    this.fetchedPageOffset = pageIndex << 12;
    return page;
  }

  /**
   * Decodes the instruction at `pc` of the current cached page into `page[slot]`. Returns the slot
   * that holds it: `slot`, or the scratch slot for an instruction that crosses into the next page
   * (never cached, its second half may change independently), or -1 after a fetch exception.
   */
  private decodeSlot(page: Int32Array, slot: number, pc: number): number {
    if (page === this.scratchDecoded) return slot; // already decoded by fetchPage
    const offset = this.fetchedPageOffset + (pc & 0xfff);
    const low = this.ram16[offset >>> 1] as number;
    if ((low & 3) !== 3) {
      decode16(low, page, slot);
      return slot;
    }
    if ((pc & 0xfff) === 0xffe) {
      const high = this.fetchHalfword((pc + 2) | 0, -1);
      if (high < 0) return -1;
      decode32(low | (high << 16), page, SCRATCH_SLOT);
      return SCRATCH_SLOT;
    }
    decode32(low | ((this.ram16[(offset + 2) >>> 1] as number) << 16), page, slot);
    return slot;
  }

  /**
   * Compiles the region starting at `pc` (slot `slot` of the current cached page) and enters it in
   * `blocks` at every unit start no other region holds (`loopsOnly`: only if the region loops).
   * Returns whether it compiled one.
   */
  private compileBlockAt(
    decoded: Int32Array,
    slot: number,
    pc: number,
    blocks: (CompiledBlock | undefined)[],
    loopsOnly: boolean,
  ): boolean {
    const pageOffset = this.fetchedPageOffset;
    const ram16 = this.ram16;
    const block = compileBlock(
      decoded,
      slot,
      pc,
      (at) => {
        const existing = decoded[at] as number;
        if (existing !== 0) return existing;
        const low = ram16[(pageOffset + at) >>> 1] as number;
        if ((low & 3) !== 3) return decode16(low, decoded, at);
        if (at === 0xffe) return 0; // crosses into the next page: the interpreter's business
        return decode32(low | ((ram16[(pageOffset + at + 2) >>> 1] as number) << 16), decoded, at);
      },
      this.pageHeat[pageOffset >>> 12] as Uint8Array,
      blocks,
      this.blockEnvironment,
      loopsOnly,
    );
    if (block === undefined) return false;
    for (const entry of block.entries) blocks[entry >>> 1] ??= block;
    blocks[slot >>> 1] = block;
    this.compiledBlockCount++;
    const pageIndex = pageOffset >>> 12;
    const low = this.pageBlockLow[pageIndex] as number;
    const high = this.pageBlockHigh[pageIndex] as number;
    if (low >= high) {
      this.pageBlockLow[pageIndex] = block.startOffset;
      this.pageBlockHigh[pageIndex] = block.endOffset;
    } else {
      this.pageBlockLow[pageIndex] = Math.min(low, block.startOffset);
      this.pageBlockHigh[pageIndex] = Math.max(high, block.endOffset);
    }
    return true;
  }

  /**
   * Fetches the halfword at virtual address `va` through the slow path (translation, PMP, any
   * RAM region); `physical` is its translation when already known, else -1. Returns the halfword
   * or -1 after raising a fetch exception.
   */
  private fetchHalfword(va: number, physical: number): number {
    if (physical < 0) {
      physical = translate(hart(this), va, ACCESS_FETCH, this.privilege);
      if (physical < 0) return -1;
    }
    if (!this.pmp.allows(physical, 2, this.privilege, PMP_X)) {
      this.raiseException(riscv.CAUSE_FETCH_ACCESS, va);
      return -1;
    }
    const value = this.readRam(physical, 2);
    if (value < 0) {
      this.raiseException(riscv.CAUSE_FETCH_ACCESS, va);
      return -1;
    }
    return value;
  }

  // ======================================================================================
  // Loads and stores (slow path), physical memory, TLBs (translation.ts walks the page tables)
  // ======================================================================================

  /** A compiled region's slow load ({@link BlockHost}): the instruction's pc and icount first, for a trap. */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: compiled regions call it, through BlockHost
  private regionLoad(va: number, width: number, pc: number, icount: number): number {
    this.pcValue = pc;
    this.icountValue = icount;
    return this.loadSlow(va, width);
  }

  /** A compiled region's slow store ({@link BlockHost}). */
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: compiled regions call it, through BlockHost
  private regionStore(va: number, width: number, value: number, pc: number, icount: number): void {
    this.pcValue = pc;
    this.icountValue = icount;
    this.storeSlow(va, width, value);
  }

  /**
   * A load the TLB did not serve: any alignment, MMIO, page crossing. Returns the value
   * zero-extended (as int32 for width 4); on an exception sets trapRaised and returns 0.
   */
  private loadSlow(va: number, width: number): number {
    if ((va & 0xfff) + width > 0x1000) {
      // Crosses a page: read byte by byte, each byte translated on its own.
      let value = 0;
      for (let i = 0; i < width; i++) {
        const byte = this.loadSlow((va + i) | 0, 1);
        if (this.trapRaised) return 0;
        value |= byte << (8 * i);
      }
      return value;
    }
    const privilege = this.dataPrivilege;
    const physical = translate(hart(this), va, ACCESS_LOAD, privilege);
    if (physical < 0) return 0;
    const pageStart = physical - (physical % 4096);
    const offset = pageStart - this.ramBase;
    if (this.ram !== undefined && offset >= 0 && offset < this.ramSize) {
      const permissions = this.pmp.rangePermissions(pageStart, 4096, privilege);
      if (permissions !== -1 && (permissions & PMP_R) !== 0) {
        const entry = (va >>> 12) & TLB_MASK;
        this.tlbLoadTag[entry] = va >>> 12;
        this.tlbLoadOffset[entry] = offset;
      }
    }
    if (!this.pmp.allows(physical, width, privilege, PMP_R)) {
      this.raiseException(riscv.CAUSE_LOAD_ACCESS, va);
      return 0;
    }
    const value = this.readPhysical(physical, width);
    if (value === undefined) {
      this.raiseException(riscv.CAUSE_LOAD_ACCESS, va);
      return 0;
    }
    return width === 4 ? value | 0 : value;
  }

  /** A store the TLB did not serve. On an exception sets trapRaised. */
  private storeSlow(va: number, width: number, value: number): void {
    const vpn = va >>> 12;
    const entry = vpn & TLB_MASK;
    if (this.tlbCodeStoreTag[entry] === vpn && (va & 0xfff) + width <= 0x1000) {
      const offset = (this.tlbCodeStoreOffset[entry] as number) + (va & 0xfff);
      const bytes = this.ram8;
      for (let i = 0; i < width; i++) bytes[offset + i] = value >>> (8 * i);
      this.forgetDecoded(offset, width);
      return;
    }
    const privilege = this.dataPrivilege;
    if ((va & 0xfff) + width > 0x1000) {
      // Crosses a page: both pages must be writable before any byte is written.
      const secondVa = (va + width) & ~0xfff;
      const firstPhysical = translate(hart(this), va, ACCESS_STORE, privilege);
      if (firstPhysical < 0) return;
      const secondPhysical = translate(hart(this), secondVa, ACCESS_STORE, privilege);
      if (secondPhysical < 0) return;
      const firstWidth = 0x1000 - (va & 0xfff);
      if (!this.pmp.allows(firstPhysical, firstWidth, privilege, PMP_W)) {
        this.raiseException(riscv.CAUSE_STORE_ACCESS, va);
        return;
      }
      if (!this.pmp.allows(secondPhysical, width - firstWidth, privilege, PMP_W)) {
        this.raiseException(riscv.CAUSE_STORE_ACCESS, secondVa);
        return;
      }
      for (let i = 0; i < width; i++) {
        const physical = i < firstWidth ? firstPhysical + i : secondPhysical + (i - firstWidth);
        if (!this.writePhysical(physical, 1, (value >>> (8 * i)) & 0xff)) {
          this.raiseException(riscv.CAUSE_STORE_ACCESS, (va + i) | 0);
          return;
        }
      }
      return;
    }
    const physical = translate(hart(this), va, ACCESS_STORE, privilege);
    if (physical < 0) return;
    if (!this.pmp.allows(physical, width, privilege, PMP_W)) {
      this.raiseException(riscv.CAUSE_STORE_ACCESS, va);
      return;
    }
    if (!this.writePhysical(physical, width, value)) {
      this.raiseException(riscv.CAUSE_STORE_ACCESS, va);
      return;
    }
    const pageStart = physical - (physical % 4096);
    const offset = pageStart - this.ramBase;
    if (this.ram !== undefined && offset >= 0 && offset < this.ramSize) {
      const permissions = this.pmp.rangePermissions(pageStart, 4096, privilege);
      if (permissions !== -1 && (permissions & PMP_W) !== 0) {
        // writePhysical has marked the page dirty; later stores through a TLB need not.
        if (this.decodedPages[offset >>> 12] === undefined) {
          this.tlbStoreTag[entry] = vpn;
          this.tlbStoreOffset[entry] = offset;
        } else {
          this.tlbCodeStoreTag[entry] = vpn;
          this.tlbCodeStoreOffset[entry] = offset;
        }
      }
    }
  }

  /** Reads RAM (any region) at a physical address; -1 when not RAM. Values are unsigned. */
  private readRam(physical: number, width: number): number {
    const offset = physical - this.ramBase;
    if (this.ram !== undefined && offset >= 0 && offset + width <= this.ramSize) {
      const bytes = this.ram8;
      let value = 0;
      for (let i = width - 1; i >= 0; i--) value = (value << 8) | (bytes[offset + i] as number);
      return value >>> 0;
    }
    for (const region of this.otherRam) {
      const regionOffset = physical - region.base;
      if (regionOffset >= 0 && regionOffset + width <= region.size) {
        let value = 0;
        for (let i = width - 1; i >= 0; i--)
          value = (value << 8) | (region.bytes[regionOffset + i] as number);
        return value >>> 0;
      }
    }
    return -1;
  }

  /** Reads RAM or MMIO at a physical address; undefined when nothing claims it. Unsigned. */
  private readPhysical(physical: number, width: number): number | undefined {
    const value = this.readRam(physical, width);
    if (value >= 0) return value;
    if (physical + width > TWO_POW_32) return undefined;
    if ((physical & (width - 1)) === 0) {
      const result = this.bus.readMmio(physical, width as 1 | 2 | 4);
      return result === undefined ? undefined : result >>> 0;
    }
    // A misaligned MMIO access is split into bytes.
    let combined = 0;
    for (let i = 0; i < width; i++) {
      const byte = this.bus.readMmio(physical + i, 1);
      if (byte === undefined) return undefined;
      combined |= (byte & 0xff) << (8 * i);
    }
    return combined >>> 0;
  }

  /**
   * Writes RAM or MMIO at a physical address; false when nothing claims it. Marks RAM pages dirty
   * and drops decoded instructions the bytes belonged to.
   */
  private writePhysical(physical: number, width: number, value: number): boolean {
    const offset = physical - this.ramBase;
    if (this.ram !== undefined && offset >= 0 && offset + width <= this.ramSize) {
      const bytes = this.ram8;
      for (let i = 0; i < width; i++) bytes[offset + i] = value >>> (8 * i);
      this.dirtyPages[offset >>> 12] = 1;
      this.dirtyPages[(offset + width - 1) >>> 12] = 1;
      this.forgetDecoded(offset, width);
      return true;
    }
    for (const region of this.otherRam) {
      const regionOffset = physical - region.base;
      if (regionOffset >= 0 && regionOffset + width <= region.size) {
        for (let i = 0; i < width; i++) region.bytes[regionOffset + i] = value >>> (8 * i);
        region.dirtyPages[regionOffset >>> 12] = 1;
        region.dirtyPages[(regionOffset + width - 1) >>> 12] = 1;
        return true;
      }
    }
    if (physical + width > TWO_POW_32) return false;
    if ((physical & (width - 1)) === 0)
      return this.bus.writeMmio(physical, width as 1 | 2 | 4, value & widthMask(width));
    for (let i = 0; i < width; i++) {
      if (!this.bus.writeMmio(physical + i, 1, (value >>> (8 * i)) & 0xff)) return false;
    }
    return true;
  }

  /**
   * Drops the decoded instructions that overlap the RAM bytes [offset, offset + width): those that
   * start up to 2 bytes before (a 4-byte instruction) or inside the range.
   */
  private forgetDecoded(offset: number, width: number): void {
    const first = Math.max(0, offset - 2);
    const last = offset + width - 1;
    for (let page = first >>> 12; page <= last >>> 12; page++) {
      const decoded = this.decodedPages[page];
      if (decoded === undefined) continue;
      const pageStart = page << 12;
      const from = Math.max(first, pageStart) - pageStart;
      const to = Math.min(last, pageStart + 0xfff) - pageStart;
      for (let byte = from & ~1; byte <= to; byte += 2) decoded[byte] = 0;
      // Compiled blocks that cover the bytes go too (all of the page's, which is simpler); the
      // block running now, if any, returns after this store since breakLoop is set.
      const low = this.pageBlockLow[page] as number;
      const high = this.pageBlockHigh[page] as number;
      if (low < high && from < high && to >= low) {
        this.pageBlocks[page]?.fill(undefined);
        this.pageHeat[page]?.fill(0);
        this.pageBlockLow[page] = 0;
        this.pageBlockHigh[page] = 0;
        this.breakLoop = true;
      }
    }
  }

  private dropStoreTlbEntriesFor(pageOffset: number): void {
    for (let i = 0; i < TLB_ENTRIES; i++) {
      if (this.tlbStoreOffset[i] === pageOffset) this.tlbStoreTag[i] = -1;
    }
  }

  private flushTlb(): void {
    this.tlbLoadTag.fill(-1);
    this.tlbStoreTag.fill(-1);
    this.tlbCodeStoreTag.fill(-1);
    this.tlbFetchTag.fill(-1);
    this.fetchedVpn = -1;
    this.breakLoop = true;
  }

  /**
   * Recomputes the privilege loads and stores use and flushes the TLBs when anything that
   * translation or protection depends on changed (privilege, MPRV/MPP, SUM, MXR, satp mode).
   */
  private updateTranslation(force = false): void {
    const mstatus = this.csrs.mstatus;
    this.dataPrivilege =
      this.privilege === riscv.PRIVILEGE_MACHINE && (mstatus & riscv.MSTATUS_MPRV) !== 0
        ? (mstatus >>> riscv.MSTATUS_MPP_SHIFT) & 3
        : this.privilege;
    const key =
      this.privilege |
      (this.dataPrivilege << 2) |
      (mstatus & (riscv.MSTATUS_SUM | riscv.MSTATUS_MXR)) |
      (this.csrs.satp < 0 ? 1 << 30 : 0);
    if (force || key !== this.translationKey) {
      this.translationKey = key;
      this.flushTlb();
    }
  }

  // ======================================================================================
  // Traps, interrupts, xRET, WFI
  // ======================================================================================

  /**
   * Enters the trap handler for exception `cause` with `tval`, at the pc of the current
   * instruction (pcValue). The trap is one step; the caller ends the block.
   */
  private raiseException(cause: number, tval: number): void {
    this.enterTrap(cause, false, tval);
    this.trapRaised = true;
  }

  private enterTrap(cause: number, interrupt: boolean, tval: number): void {
    const privilege = this.privilege;
    const delegation = interrupt ? this.csrs.mideleg : this.csrs.medeleg;
    this.trapCount++;
    if (privilege <= riscv.PRIVILEGE_SUPERVISOR && ((delegation >>> cause) & 1) !== 0) {
      this.csrs.scause = interrupt ? cause | 0x80000000 | 0 : cause;
      this.csrs.sepc = this.pcValue;
      this.csrs.stval = tval | 0;
      let status = this.csrs.mstatus;
      status =
        (status & riscv.MSTATUS_SIE) !== 0 ? status | riscv.MSTATUS_SPIE : status & ~riscv.MSTATUS_SPIE;
      status =
        privilege === riscv.PRIVILEGE_SUPERVISOR ? status | riscv.MSTATUS_SPP : status & ~riscv.MSTATUS_SPP;
      this.csrs.mstatus = status & ~riscv.MSTATUS_SIE;
      this.privilege = riscv.PRIVILEGE_SUPERVISOR;
      this.pcValue = trapVector(this.csrs.stvec, cause, interrupt);
    } else {
      this.csrs.mcause = interrupt ? cause | 0x80000000 | 0 : cause;
      this.csrs.mepc = this.pcValue;
      this.csrs.mtval = tval | 0;
      let status = this.csrs.mstatus;
      status =
        (status & riscv.MSTATUS_MIE) !== 0 ? status | riscv.MSTATUS_MPIE : status & ~riscv.MSTATUS_MPIE;
      status = (status & ~riscv.MSTATUS_MPP) | (privilege << riscv.MSTATUS_MPP_SHIFT);
      this.csrs.mstatus = status & ~riscv.MSTATUS_MIE;
      this.privilege = riscv.PRIVILEGE_MACHINE;
      this.pcValue = trapVector(this.csrs.mtvec, cause, interrupt);
    }
    this.breakLoop = true;
    this.updateTranslation();
  }

  /** Instructions retired before the current one. */
  private retired(): number {
    return this.icountValue - this.trapCount;
  }

  private mipValue(): number {
    return this.csrs.mipSoftware | this.mipLines;
  }

  /** Takes the highest-priority pending and enabled interrupt, if any (one step). */
  private takePendingInterrupt(): boolean {
    const pending = this.mipValue() & this.csrs.mie;
    if (pending === 0) return false;
    const privilege = this.privilege;
    const machineEnabled =
      privilege < riscv.PRIVILEGE_MACHINE || (this.csrs.mstatus & riscv.MSTATUS_MIE) !== 0;
    const supervisorEnabled =
      privilege < riscv.PRIVILEGE_SUPERVISOR ||
      (privilege === riscv.PRIVILEGE_SUPERVISOR && (this.csrs.mstatus & riscv.MSTATUS_SIE) !== 0);
    let takeable = 0;
    if (machineEnabled) takeable |= pending & ~this.csrs.mideleg;
    if (supervisorEnabled) takeable |= pending & this.csrs.mideleg;
    if (takeable === 0) return false;
    for (const cause of INTERRUPT_PRIORITY) {
      if (((takeable >>> cause) & 1) !== 0) {
        this.enterTrap(cause, true, 0);
        this.icountValue++;
        return true;
      }
    }
    return false;
  }

  private executeMret(): number {
    if (this.privilege !== riscv.PRIVILEGE_MACHINE) return this.illegalInstruction(0x30200073);
    const status = this.csrs.mstatus;
    const previous = (status >>> riscv.MSTATUS_MPP_SHIFT) & 3;
    // QEMU 7.2: returning to S or U mode with no PMP entry active is an illegal instruction.
    if (previous !== riscv.PRIVILEGE_MACHINE && this.pmp.activeCount === 0)
      return this.illegalInstruction(0x30200073);
    let next = (status & riscv.MSTATUS_MPIE) !== 0 ? status | riscv.MSTATUS_MIE : status & ~riscv.MSTATUS_MIE;
    next = (next | riscv.MSTATUS_MPIE) & ~riscv.MSTATUS_MPP;
    if (previous !== riscv.PRIVILEGE_MACHINE) next &= ~riscv.MSTATUS_MPRV;
    this.csrs.mstatus = next;
    this.privilege = previous === 2 ? riscv.PRIVILEGE_USER : previous;
    this.breakLoop = true;
    this.updateTranslation();
    return this.csrs.mepc & ~1;
  }

  private executeSret(): number {
    const privilege = this.privilege;
    if (
      privilege === riscv.PRIVILEGE_USER ||
      (privilege === riscv.PRIVILEGE_SUPERVISOR && (this.csrs.mstatus & riscv.MSTATUS_TSR) !== 0)
    ) {
      return this.illegalInstruction(0x10200073);
    }
    const status = this.csrs.mstatus;
    const previous = (status & riscv.MSTATUS_SPP) !== 0 ? riscv.PRIVILEGE_SUPERVISOR : riscv.PRIVILEGE_USER;
    let next = (status & riscv.MSTATUS_SPIE) !== 0 ? status | riscv.MSTATUS_SIE : status & ~riscv.MSTATUS_SIE;
    next = (next | riscv.MSTATUS_SPIE) & ~riscv.MSTATUS_SPP & ~riscv.MSTATUS_MPRV;
    this.csrs.mstatus = next;
    this.privilege = previous;
    this.breakLoop = true;
    this.updateTranslation();
    return this.csrs.sepc & ~1;
  }

  private executeWfi(nextPc: number): number {
    const privilege = this.privilege;
    // As QEMU 7.2: U mode may never wait; S mode may not when TW is set.
    if (
      privilege === riscv.PRIVILEGE_USER ||
      (privilege === riscv.PRIVILEGE_SUPERVISOR && (this.csrs.mstatus & riscv.MSTATUS_TW) !== 0)
    ) {
      return this.illegalInstruction(0x10500073);
    }
    if ((this.mipValue() & this.csrs.mie) === 0) this.waitingForInterrupt = true;
    this.breakLoop = true;
    return nextPc;
  }

  // ======================================================================================
  // Snapshots (snapshot.ts)
  // ======================================================================================

  saveState(): StateSection {
    return saveHartState(hart(this));
  }

  restoreState(section: StateSection): void {
    restoreHartState(hart(this), section); // checks the whole section before it changes anything
    this.trapRaised = false;
    this.breakLoop = true;
    this.updateTranslation(true);
    this.invalidateMemoryCaches();
  }
}

function widthMask(width: number): number {
  return width === 4 ? -1 : (1 << (8 * width)) - 1;
}

function trapVector(tvec: number, cause: number, interrupt: boolean): number {
  const base = tvec & ~3;
  return interrupt && (tvec & 3) === 1 ? (base + 4 * cause) | 0 : base;
}

/** The high 32 bits of the unsigned 64-bit product of two 32-bit values (as int32). */
export function multiplyHighUnsigned(a: number, b: number): number {
  const aLow = a & 0xffff;
  const aHigh = a >>> 16;
  const bLow = b & 0xffff;
  const bHigh = b >>> 16;
  const lowLow = aLow * bLow;
  const lowHigh = aLow * bHigh;
  const highLow = aHigh * bLow;
  const middle = (lowLow >>> 16) + (lowHigh & 0xffff) + (highLow & 0xffff);
  return (
    (aHigh * bHigh + Math.floor(lowHigh / 65536) + Math.floor(highLow / 65536) + Math.floor(middle / 65536)) |
    0
  );
}

/** The high 32 bits of the signed 64-bit product (mulh). */
export function multiplyHighSigned(a: number, b: number): number {
  let high = multiplyHighUnsigned(a, b);
  if (a < 0) high = (high - b) | 0;
  if (b < 0) high = (high - a) | 0;
  return high;
}

/** The high 32 bits of signed a times unsigned b (mulhsu). */
export function multiplyHighSignedUnsigned(a: number, b: number): number {
  let high = multiplyHighUnsigned(a, b);
  if (a < 0) high = (high - b) | 0;
  return high;
}
