/**
 * Sv32 address translation: the page walk, with the A/D updates, page faults and access faults of
 * QEMU 7.2.
 *
 * Cold code: the interpreter's TLBs serve every access they can, so a walk happens only on a TLB
 * miss (and for atomics). It lives apart from cpu.ts so that the hart's hot loop stays readable;
 * it reaches the hart through TranslationHost, as the block compiler does through BlockHost.
 */

import * as riscv from './constants.js';
import type { CsrFile } from './csr.js';
import { type PhysicalMemoryProtection, PMP_R } from './pmp.js';

/**
 * What the page walk reaches of the hart: RiscvCpu's private members of these names, through a
 * cast (cpu.ts's `hart`), as the block compiler reaches BlockHost.
 */
export interface TranslationHost {
  readonly csrs: CsrFile;
  readonly trapRaised: boolean;
  readonly pmp: PhysicalMemoryProtection;
  readPhysical(physical: number, width: number): number | undefined;
  writePhysical(physical: number, width: number, value: number): boolean;
  raiseException(cause: number, tval: number): void;
}

export const ACCESS_FETCH = 0;
export const ACCESS_LOAD = 1;
export const ACCESS_STORE = 2;
const PTE_V = 1;
const PTE_R = 2;
const PTE_W = 4;
const PTE_X = 8;
const PTE_U = 16;
const PTE_A = 64;
const PTE_D = 128;
const TWO_POW_32 = 0x1_0000_0000;

/**
 * Translates `va` for an access of `accessType` at `privilege`, setting A/D bits. Returns the
 * physical address (a number up to 2^34), or -1 after raising the exception.
 */
export function translate(hart: TranslationHost, va: number, accessType: number, privilege: number): number {
  if (privilege === riscv.PRIVILEGE_MACHINE || hart.csrs.satp >= 0) return va >>> 0;
  const vpn1 = va >>> 22;
  const vpn0 = (va >>> 12) & 0x3ff;
  let pteAddress = (hart.csrs.satp & 0x3fffff) * 4096 + vpn1 * 4;
  let pte = readPte(hart, pteAddress, accessType, va);
  if (hart.trapRaised) return -1;
  let superpage = true;
  if ((pte & PTE_V) === 0 || ((pte & PTE_R) === 0 && (pte & PTE_W) !== 0))
    return pageFault(hart, va, accessType);
  if ((pte & (PTE_R | PTE_X)) === 0) {
    superpage = false;
    pteAddress = (pte >>> 10) * 4096 + vpn0 * 4;
    pte = readPte(hart, pteAddress, accessType, va);
    if (hart.trapRaised) return -1;
    if ((pte & PTE_V) === 0 || ((pte & PTE_R) === 0 && (pte & PTE_W) !== 0))
      return pageFault(hart, va, accessType);
    if ((pte & (PTE_R | PTE_X)) === 0) return pageFault(hart, va, accessType);
  } else if (((pte >>> 10) & 0x3ff) !== 0) {
    return pageFault(hart, va, accessType); // misaligned superpage
  }
  if ((pte & PTE_U) !== 0) {
    if (
      privilege === riscv.PRIVILEGE_SUPERVISOR &&
      (accessType === ACCESS_FETCH || (hart.csrs.mstatus & riscv.MSTATUS_SUM) === 0)
    ) {
      return pageFault(hart, va, accessType);
    }
  } else if (privilege === riscv.PRIVILEGE_USER) {
    return pageFault(hart, va, accessType);
  }
  if (accessType === ACCESS_FETCH) {
    if ((pte & PTE_X) === 0) return pageFault(hart, va, accessType);
  } else if (accessType === ACCESS_LOAD) {
    if ((pte & PTE_R) === 0 && ((hart.csrs.mstatus & riscv.MSTATUS_MXR) === 0 || (pte & PTE_X) === 0)) {
      return pageFault(hart, va, accessType);
    }
  } else if ((pte & PTE_W) === 0) {
    return pageFault(hart, va, accessType);
  }
  // As QEMU: the hardware sets A (and D on a store) instead of faulting.
  const wanted = pte | PTE_A | (accessType === ACCESS_STORE ? PTE_D : 0);
  if (wanted !== pte) {
    if (!hart.writePhysical(pteAddress, 4, wanted)) return pageFault(hart, va, accessType);
  }
  if (superpage) return (pte >>> 20) * 0x400000 + (va & 0x3fffff);
  return (pte >>> 10) * 4096 + (va & 0xfff);
}

/** Reads a page-table entry (as an S-mode access for PMP); sets trapRaised after an access fault. */
function readPte(hart: TranslationHost, address: number, accessType: number, va: number): number {
  let value: number | undefined;
  if (hart.pmp.allows(address, 4, riscv.PRIVILEGE_SUPERVISOR, PMP_R)) value = hart.readPhysical(address, 4);
  if (value === undefined || address >= TWO_POW_32) {
    const cause =
      accessType === ACCESS_FETCH
        ? riscv.CAUSE_FETCH_ACCESS
        : accessType === ACCESS_LOAD
          ? riscv.CAUSE_LOAD_ACCESS
          : riscv.CAUSE_STORE_ACCESS;
    hart.raiseException(cause, va);
    return 0;
  }
  return value | 0;
}

function pageFault(hart: TranslationHost, va: number, accessType: number): number {
  const cause =
    accessType === ACCESS_FETCH
      ? riscv.CAUSE_FETCH_PAGE_FAULT
      : accessType === ACCESS_LOAD
        ? riscv.CAUSE_LOAD_PAGE_FAULT
        : riscv.CAUSE_STORE_PAGE_FAULT;
  hart.raiseException(cause, va);
  return -1;
}
