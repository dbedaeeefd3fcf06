/**
 * The A extension's LR/SC and AMOs, as QEMU 7.2 executes them: an SC succeeds when the reserved
 * word still holds the value its LR read.
 *
 * Cold code: atomics leave the interpreter's fast path (executeRare) and go through translation,
 * PMP and physical memory every time, so they live apart from cpu.ts and its hot loop. They reach
 * the hart through AtomicsHost.
 */

import * as riscv from './constants.js';
import { Op, TRAPPED } from './op.js';
import { PMP_R, PMP_W } from './pmp.js';
import { ACCESS_LOAD, ACCESS_STORE, type TranslationHost, translate } from './translation.js';

/** The reservation an LR.W takes: the address it read and the value it read there. */
export class Reservation {
  valid = false;
  address = 0;
  value = 0;
}

/**
 * What the atomics reach of the hart: RiscvCpu's private members of these names, through a cast
 * (cpu.ts's `hart`), as the block compiler reaches BlockHost.
 */
export interface AtomicsHost extends TranslationHost {
  readonly x: Int32Array;
  readonly reservation: Reservation;
  /** Privilege that loads and stores use (MPRV applied). */
  readonly dataPrivilege: number;
  breakLoop: boolean;
}

/**
 * Executes LR.W, SC.W or an AMO (`op`) on the word at `address` (x[rs1]); `source` is x[rs2].
 * Returns the next pc, or TRAPPED after raising the exception.
 */
export function executeAtomic(
  hart: AtomicsHost,
  op: number,
  rd: number,
  address: number,
  source: number,
  nextPc: number,
): number {
  const isLoadReserved = op === Op.LrW;
  if ((address & 3) !== 0) {
    hart.raiseException(isLoadReserved ? riscv.CAUSE_LOAD_MISALIGNED : riscv.CAUSE_STORE_MISALIGNED, address);
    return TRAPPED;
  }
  const privilege = hart.dataPrivilege;
  if (op === Op.ScW) {
    // As QEMU: succeeds when the reserved address still holds the value LR read.
    if (!hart.reservation.valid || hart.reservation.address !== address) {
      hart.reservation.valid = false;
      if (rd !== 0) hart.x[rd] = 1;
      return nextPc;
    }
    hart.reservation.valid = false;
    const physical = translate(hart, address, ACCESS_STORE, privilege);
    if (physical < 0) return TRAPPED;
    if (!hart.pmp.allows(physical, 4, privilege, PMP_R | PMP_W)) {
      hart.raiseException(riscv.CAUSE_STORE_ACCESS, address);
      return TRAPPED;
    }
    const current = hart.readPhysical(physical, 4);
    if (current === undefined) {
      hart.raiseException(riscv.CAUSE_STORE_ACCESS, address);
      return TRAPPED;
    }
    if ((current | 0) !== hart.reservation.value) {
      if (rd !== 0) hart.x[rd] = 1;
      return nextPc;
    }
    if (!hart.writePhysical(physical, 4, source)) {
      hart.raiseException(riscv.CAUSE_STORE_ACCESS, address);
      return TRAPPED;
    }
    if (rd !== 0) hart.x[rd] = 0;
    hart.breakLoop = true; // the store may have hit decoded code
    return nextPc;
  }
  const accessType = isLoadReserved ? ACCESS_LOAD : ACCESS_STORE;
  const physical = translate(hart, address, accessType, privilege);
  if (physical < 0) return TRAPPED;
  const accessCause = isLoadReserved ? riscv.CAUSE_LOAD_ACCESS : riscv.CAUSE_STORE_ACCESS;
  if (!hart.pmp.allows(physical, 4, privilege, isLoadReserved ? PMP_R : PMP_R | PMP_W)) {
    hart.raiseException(accessCause, address);
    return TRAPPED;
  }
  const loaded = hart.readPhysical(physical, 4);
  if (loaded === undefined) {
    hart.raiseException(accessCause, address);
    return TRAPPED;
  }
  const old = loaded | 0;
  if (isLoadReserved) {
    hart.reservation.valid = true;
    hart.reservation.address = address;
    hart.reservation.value = old;
    if (rd !== 0) hart.x[rd] = old;
    return nextPc;
  }
  let result: number;
  switch (op) {
    case Op.AmoswapW:
      result = source;
      break;
    case Op.AmoaddW:
      result = (old + source) | 0;
      break;
    case Op.AmoxorW:
      result = old ^ source;
      break;
    case Op.AmoandW:
      result = old & source;
      break;
    case Op.AmoorW:
      result = old | source;
      break;
    case Op.AmominW:
      result = Math.min(old, source);
      break;
    case Op.AmomaxW:
      result = Math.max(old, source);
      break;
    case Op.AmominuW:
      result = old >>> 0 < source >>> 0 ? old : source;
      break;
    default:
      result = old >>> 0 > source >>> 0 ? old : source;
      break;
  }
  if (!hart.writePhysical(physical, 4, result)) {
    hart.raiseException(riscv.CAUSE_STORE_ACCESS, address);
    return TRAPPED;
  }
  if (rd !== 0) hart.x[rd] = old;
  hart.breakLoop = true;
  return nextPc;
}
