/**
 * The CSRs: what they hold (CsrFile), the CSR instructions with their privilege and existence
 * checks, and what reading and writing each CSR does, as QEMU 7.2's rv32 CPU on the virt board.
 *
 * Cold code: a CSR instruction leaves the interpreter's fast path anyway (executeRare), so the
 * CSRs live apart from cpu.ts and its hot loop. Traps and snapshots (cpu.ts, snapshot.ts) use the
 * CsrFile's fields directly; the functions here reach the rest of the hart through CsrHost.
 */

import * as riscv from './constants.js';
import {
  type CounterState,
  counterHigh,
  counterInhibit,
  counterLow,
  counterSet,
  newCounter,
} from './counter.js';
import { Op } from './op.js';
import { type PhysicalMemoryProtection, PMP_ENTRIES } from './pmp.js';

const TWO_POW_32 = 0x1_0000_0000;

/**
 * The state behind the CSRs, as plain fields: what the guest wrote, through each CSR's write mask
 * (int32; unsigned in the mhpm arrays). PMP's registers are pmp.ts's; mip is split between the
 * software-writable bits here and the lines devices drive (the hart's mipLines).
 */
export class CsrFile {
  mstatus = 0;
  mstatush = 0;
  medeleg = 0;
  mideleg = 0;
  mie = 0;
  /** The software-writable bits of mip. */
  mipSoftware = 0;
  mtvec = 0;
  mcounteren = 0;
  mcountinhibit = 0;
  menvcfg = 0;
  menvcfgh = 0;
  mscratch = 0;
  mepc = 0;
  mcause = 0;
  mtval = 0;
  stvec = 0;
  scounteren = 0;
  senvcfg = 0;
  sscratch = 0;
  sepc = 0;
  scause = 0;
  stval = 0;
  satp = 0;
  tselect = 0;
  readonly tdata2 = new Int32Array(2);
  readonly mhpmcounter = new Float64Array(32);
  readonly mhpmcounterh = new Float64Array(32);
  readonly mhpmevent = new Float64Array(32);
  readonly cycleCounter: CounterState = newCounter();
  readonly instretCounter: CounterState = newCounter();

  /** Sets every CSR to its value at reset; the counters restart from 0 with `retired`. */
  reset(retired: number): void {
    this.mstatus = 0;
    this.mstatush = 0;
    this.medeleg = 0;
    this.mideleg = 0;
    this.mie = 0;
    this.mipSoftware = 0;
    this.mtvec = 0;
    this.mcounteren = 0;
    this.mcountinhibit = 0;
    this.menvcfg = 0;
    this.menvcfgh = 0;
    this.mscratch = 0;
    this.mepc = 0;
    this.mcause = 0;
    this.mtval = 0;
    this.stvec = 0;
    this.scounteren = 0;
    this.senvcfg = 0;
    this.sscratch = 0;
    this.sepc = 0;
    this.scause = 0;
    this.stval = 0;
    this.satp = 0;
    this.tselect = 0;
    this.tdata2.fill(0);
    this.mhpmcounter.fill(0);
    this.mhpmcounterh.fill(0);
    this.mhpmevent.fill(0);
    this.cycleCounter.inhibited = false;
    this.instretCounter.inhibited = false;
    counterSet(this.cycleCounter, retired, 0, 0);
    counterSet(this.instretCounter, retired, 0, 0);
  }
}

/**
 * What the CSR instructions reach of the hart besides its CsrFile: RiscvCpu's private members of
 * these names, through a cast (cpu.ts's `hart`), as the block compiler reaches BlockHost.
 */
export interface CsrHost {
  readonly csrs: CsrFile;
  readonly x: Int32Array;
  readonly privilege: number;
  readonly readTime: (() => number) | undefined;
  readonly hartId: number;
  readonly pmp: PhysicalMemoryProtection;
  breakLoop: boolean;
  /** mip as the guest reads it: the software-writable bits and the lines devices drive. */
  mipValue(): number;
  /** Instructions retired before the current one. */
  retired(): number;
  /** Raises an illegal-instruction exception with `bits` in mtval; returns TRAPPED. */
  illegalInstruction(bits: number): number;
  flushTlb(): void;
  updateTranslation(force?: boolean): void;
}

/**
 * Executes CSR instruction `op` (csrrw ... csrrci) on `csr`; `source` is x[rs1] or the 5-bit
 * immediate. Returns the next pc, or TRAPPED after an illegal-instruction exception.
 */
export function executeCsr(
  hart: CsrHost,
  op: number,
  csr: number,
  rd: number,
  rs1: number,
  source: number,
  nextPc: number,
): number {
  const funct3 =
    op === Op.Csrrw
      ? 1
      : op === Op.Csrrs
        ? 2
        : op === Op.Csrrc
          ? 3
          : op === Op.Csrrwi
            ? 5
            : op === Op.Csrrsi
              ? 6
              : 7;
  const bits = (csr << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x73;
  const isWrite = funct3 === 1 || funct3 === 5;
  const writes = isWrite || rs1 !== 0;
  const privilege = hart.privilege;
  if (privilege < ((csr >>> 8) & 3)) return hart.illegalInstruction(bits);
  if (writes && csr >>> 10 === 3) return hart.illegalInstruction(bits);
  if (!csrAccessible(hart, csr)) return hart.illegalInstruction(bits);
  let old = 0;
  if (!(isWrite && rd === 0)) {
    const value = csrRead(hart, csr);
    if (value === undefined) return hart.illegalInstruction(bits);
    old = value;
  } else if (csrRead(hart, csr) === undefined) {
    return hart.illegalInstruction(bits);
  }
  if (writes) {
    // mip's SEIP reads as the software-writable bit OR the PLIC's signal, but only the software
    // bit takes part in a CSRRS/CSRRC's read-modify-write (privileged spec, mip): a firmware's
    // `csrs mip, STIP` must not latch a pending external interrupt for ever.
    const base =
      csr === riscv.CSR_MIP ? (old & ~riscv.MIP_SEIP) | (hart.csrs.mipSoftware & riscv.MIP_SEIP) : old;
    const value = isWrite ? source : funct3 === 2 || funct3 === 6 ? base | source : base & ~source;
    csrWrite(hart, csr, value | 0);
  }
  if (rd !== 0) hart.x[rd] = old;
  // A write may change the privilege, the translation or what interrupts are enabled: the loop
  // must look again. Reading a counter changes nothing, and delay loops read `time` millions of
  // times (Linux's udelay): those go on without leaving the loop.
  if (writes || !isCounterCsr(csr)) hart.breakLoop = true;
  return nextPc;
}

/** Privilege-dependent access rules beyond the CSR number's privilege field. */
function csrAccessible(hart: CsrHost, csr: number): boolean {
  const privilege = hart.privilege;
  if (csr === riscv.CSR_SATP) {
    return !(privilege === riscv.PRIVILEGE_SUPERVISOR && (hart.csrs.mstatus & riscv.MSTATUS_TVM) !== 0);
  }
  if ((csr >= 0xc00 && csr <= 0xc1f) || (csr >= 0xc80 && csr <= 0xc9f)) {
    const bit = 1 << (csr & 31);
    if (privilege < riscv.PRIVILEGE_MACHINE && (hart.csrs.mcounteren & bit) === 0) return false;
    if (privilege === riscv.PRIVILEGE_USER && (hart.csrs.scounteren & bit) === 0) return false;
  }
  return true;
}

/** Reads a CSR (int32), or undefined when it does not exist. No privilege checks. */
export function csrRead(hart: CsrHost, csr: number): number | undefined {
  switch (csr) {
    case riscv.CSR_SSTATUS:
      return readMstatus(hart) & riscv.SSTATUS_MASK;
    case riscv.CSR_SIE:
      return hart.csrs.mie & hart.csrs.mideleg & riscv.S_INTERRUPTS;
    case riscv.CSR_STVEC:
      return hart.csrs.stvec;
    case riscv.CSR_SCOUNTEREN:
      return hart.csrs.scounteren;
    case riscv.CSR_SENVCFG:
      return hart.csrs.senvcfg;
    case riscv.CSR_SSCRATCH:
      return hart.csrs.sscratch;
    case riscv.CSR_SEPC:
      return hart.csrs.sepc;
    case riscv.CSR_SCAUSE:
      return hart.csrs.scause;
    case riscv.CSR_STVAL:
      return hart.csrs.stval;
    case riscv.CSR_SIP:
      return hart.mipValue() & hart.csrs.mideleg & riscv.S_INTERRUPTS;
    case riscv.CSR_SATP:
      return hart.csrs.satp;
    case riscv.CSR_MSTATUS:
      return readMstatus(hart);
    case riscv.CSR_MISA:
      return riscv.MISA_VALUE;
    case riscv.CSR_MEDELEG:
      return hart.csrs.medeleg;
    case riscv.CSR_MIDELEG:
      return hart.csrs.mideleg;
    case riscv.CSR_MIE:
      return hart.csrs.mie;
    case riscv.CSR_MTVEC:
      return hart.csrs.mtvec;
    case riscv.CSR_MCOUNTEREN:
      return hart.csrs.mcounteren;
    case riscv.CSR_MENVCFG:
      return hart.csrs.menvcfg;
    case riscv.CSR_MSTATUSH:
      return hart.csrs.mstatush;
    case riscv.CSR_MENVCFGH:
      return hart.csrs.menvcfgh;
    case riscv.CSR_MCOUNTINHIBIT:
      return hart.csrs.mcountinhibit;
    case riscv.CSR_MSCRATCH:
      return hart.csrs.mscratch;
    case riscv.CSR_MEPC:
      return hart.csrs.mepc;
    case riscv.CSR_MCAUSE:
      return hart.csrs.mcause;
    case riscv.CSR_MTVAL:
      return hart.csrs.mtval;
    case riscv.CSR_MIP:
      return hart.mipValue();
    case riscv.CSR_TSELECT:
      return hart.csrs.tselect;
    case riscv.CSR_TDATA1:
      return 0x20000000; // an mcontrol trigger that is never armed (triggers are not modelled)
    case riscv.CSR_TDATA2:
      return hart.csrs.tdata2[hart.csrs.tselect] as number;
    case riscv.CSR_TDATA3:
      return 0;
    case riscv.CSR_TINFO:
      return 0x44;
    case riscv.CSR_MCYCLE:
    case riscv.CSR_CYCLE:
      return counterLow(hart.csrs.cycleCounter, hart.retired()) | 0;
    case riscv.CSR_MCYCLEH:
    case riscv.CSR_CYCLEH:
      return counterHigh(hart.csrs.cycleCounter, hart.retired()) | 0;
    case riscv.CSR_MINSTRET:
    case riscv.CSR_INSTRET:
      return counterLow(hart.csrs.instretCounter, hart.retired()) | 0;
    case riscv.CSR_MINSTRETH:
    case riscv.CSR_INSTRETH:
      return counterHigh(hart.csrs.instretCounter, hart.retired()) | 0;
    case riscv.CSR_TIME:
    case riscv.CSR_TIMEH: {
      if (hart.readTime === undefined) return undefined;
      const time = hart.readTime();
      return csr === riscv.CSR_TIME ? (time % TWO_POW_32) | 0 : Math.floor(time / TWO_POW_32) | 0;
    }
    case riscv.CSR_MVENDORID:
    case riscv.CSR_MARCHID:
    case riscv.CSR_MIMPID:
    case riscv.CSR_MCONFIGPTR:
      return 0;
    case riscv.CSR_MHARTID:
      return hart.hartId | 0;
    default:
      break;
  }
  if (csr >= riscv.CSR_PMPCFG0 && csr < riscv.CSR_PMPCFG0 + 4)
    return hart.pmp.readConfigRegister(csr - riscv.CSR_PMPCFG0) | 0;
  if (csr >= riscv.CSR_PMPADDR0 && csr < riscv.CSR_PMPADDR0 + PMP_ENTRIES) {
    return (hart.pmp.address[csr - riscv.CSR_PMPADDR0] as number) | 0;
  }
  if (csr >= riscv.CSR_MHPMEVENT3 && csr <= riscv.CSR_MHPMEVENT31)
    return (hart.csrs.mhpmevent[csr & 31] as number) | 0;
  const counter = csr & 31;
  if (counter >= riscv.HPM_COUNTER_FIRST && counter <= riscv.HPM_COUNTER_LAST) {
    const base = csr & ~31;
    if (base === 0xb00 || base === 0xc00) return (hart.csrs.mhpmcounter[counter] as number) | 0;
    if (base === 0xb80 || base === 0xc80) return (hart.csrs.mhpmcounterh[counter] as number) | 0;
  }
  return undefined;
}

function readMstatus(hart: CsrHost): number {
  const status = hart.csrs.mstatus;
  return (status & riscv.MSTATUS_VS) === riscv.MSTATUS_VS ? status | riscv.MSTATUS_SD : status;
}

/** Writes a CSR that exists (checked by csrRead before). `value` is int32. */
function csrWrite(hart: CsrHost, csr: number, value: number): void {
  switch (csr) {
    case riscv.CSR_SSTATUS:
      writeMstatus(hart, (hart.csrs.mstatus & ~riscv.SSTATUS_WRITABLE) | (value & riscv.SSTATUS_WRITABLE));
      return;
    case riscv.CSR_SIE: {
      const mask = hart.csrs.mideleg & riscv.S_INTERRUPTS;
      hart.csrs.mie = (hart.csrs.mie & ~mask) | (value & mask);
      return;
    }
    case riscv.CSR_STVEC:
      if ((value & 3) < 2) hart.csrs.stvec = value;
      return;
    case riscv.CSR_SCOUNTEREN:
      hart.csrs.scounteren = value;
      return;
    case riscv.CSR_SENVCFG:
      hart.csrs.senvcfg = value & 0xf1;
      return;
    case riscv.CSR_SSCRATCH:
      hart.csrs.sscratch = value;
      return;
    case riscv.CSR_SEPC:
      hart.csrs.sepc = value;
      return;
    case riscv.CSR_SCAUSE:
      hart.csrs.scause = value;
      return;
    case riscv.CSR_STVAL:
      hart.csrs.stval = value;
      return;
    case riscv.CSR_SIP: {
      const mask = hart.csrs.mideleg & riscv.MIP_SSIP;
      hart.csrs.mipSoftware = (hart.csrs.mipSoftware & ~mask) | (value & mask);
      return;
    }
    case riscv.CSR_SATP:
      hart.csrs.satp = value;
      hart.flushTlb();
      hart.updateTranslation(true);
      return;
    case riscv.CSR_MSTATUS:
      writeMstatus(hart, (hart.csrs.mstatus & ~riscv.MSTATUS_WRITABLE) | (value & riscv.MSTATUS_WRITABLE));
      return;
    case riscv.CSR_MEDELEG:
      hart.csrs.medeleg = value & riscv.MEDELEG_WRITABLE;
      return;
    case riscv.CSR_MIDELEG:
      hart.csrs.mideleg = value & riscv.MIDELEG_WRITABLE;
      return;
    case riscv.CSR_MIE:
      hart.csrs.mie = value & riscv.MIE_WRITABLE;
      return;
    case riscv.CSR_MTVEC:
      if ((value & 3) < 2) hart.csrs.mtvec = value;
      return;
    case riscv.CSR_MCOUNTEREN:
      hart.csrs.mcounteren = value;
      return;
    case riscv.CSR_MENVCFG:
      hart.csrs.menvcfg = value & 0xf1;
      return;
    case riscv.CSR_MSTATUSH:
      hart.csrs.mstatush = value & 0xc0;
      return;
    case riscv.CSR_MENVCFGH:
      hart.csrs.menvcfgh = value & (0xc0000000 | 0);
      return;
    case riscv.CSR_MCOUNTINHIBIT: {
      // The new setting applies from the next instruction on.
      const retiredAfter = hart.retired() + 1;
      hart.csrs.mcountinhibit = value;
      counterInhibit(hart.csrs.cycleCounter, retiredAfter, (value & 1) !== 0);
      counterInhibit(hart.csrs.instretCounter, retiredAfter, (value & 4) !== 0);
      return;
    }
    case riscv.CSR_MSCRATCH:
      hart.csrs.mscratch = value;
      return;
    case riscv.CSR_MEPC:
      hart.csrs.mepc = value;
      return;
    case riscv.CSR_MCAUSE:
      hart.csrs.mcause = value;
      return;
    case riscv.CSR_MTVAL:
      hart.csrs.mtval = value;
      return;
    case riscv.CSR_MIP:
      hart.csrs.mipSoftware = (hart.csrs.mipSoftware & ~riscv.MIP_WRITABLE) | (value & riscv.MIP_WRITABLE);
      return;
    case riscv.CSR_TSELECT:
      if (value >>> 0 < 2) hart.csrs.tselect = value;
      return;
    case riscv.CSR_TDATA2:
      hart.csrs.tdata2[hart.csrs.tselect] = value;
      return;
    case riscv.CSR_MCYCLE:
    case riscv.CSR_MCYCLEH:
    case riscv.CSR_MINSTRET:
    case riscv.CSR_MINSTRETH: {
      // The value written is what the next instruction reads: this one's retirement is not added.
      const counter =
        csr === riscv.CSR_MCYCLE || csr === riscv.CSR_MCYCLEH
          ? hart.csrs.cycleCounter
          : hart.csrs.instretCounter;
      const retiredAfter = hart.retired() + 1;
      const high =
        csr === riscv.CSR_MCYCLEH || csr === riscv.CSR_MINSTRETH
          ? value
          : counterHigh(counter, retiredAfter - 1);
      const low =
        csr === riscv.CSR_MCYCLE || csr === riscv.CSR_MINSTRET
          ? value
          : counterLow(counter, retiredAfter - 1);
      counterSet(counter, retiredAfter, high, low);
      return;
    }
    default:
      break;
  }
  if (csr >= riscv.CSR_PMPCFG0 && csr < riscv.CSR_PMPCFG0 + 4) {
    hart.pmp.writeConfigRegister(csr - riscv.CSR_PMPCFG0, value);
    hart.flushTlb();
    return;
  }
  if (csr >= riscv.CSR_PMPADDR0 && csr < riscv.CSR_PMPADDR0 + PMP_ENTRIES) {
    hart.pmp.writeAddressRegister(csr - riscv.CSR_PMPADDR0, value);
    hart.flushTlb();
    return;
  }
  if (csr >= riscv.CSR_MHPMEVENT3 && csr <= riscv.CSR_MHPMEVENT31) {
    hart.csrs.mhpmevent[csr & 31] = value >>> 0;
    return;
  }
  const base = csr & ~31;
  if (base === 0xb00) hart.csrs.mhpmcounter[csr & 31] = value >>> 0;
  else if (base === 0xb80) hart.csrs.mhpmcounterh[csr & 31] = value >>> 0;
  // Everything else that exists is read-only to writes that reach here (misa, tdata1/3, tinfo).
}

function writeMstatus(hart: CsrHost, value: number): void {
  hart.csrs.mstatus = value & ~riscv.MSTATUS_SD;
  hart.updateTranslation();
}

/** The unprivileged counters (cycle, time, instret, hpmcounterN, and their high halves). */
function isCounterCsr(csr: number): boolean {
  return (csr >= 0xc00 && csr <= 0xc1f) || (csr >= 0xc80 && csr <= 0xc9f);
}
