/**
 * Instruction decoding: turns one RV32IMAC instruction (32-bit or compressed) into an operation
 * number plus fields, which the interpreter caches per physical page.
 *
 * Layout of one decoded slot (two Int32 words):
 *   word 0, "meta": bits 0-7 operation ({@link Op}), 8-12 rd, 13-17 rs1, 18-22 rs2,
 *                   bit 23 set when the instruction is 4 bytes long (clear for compressed).
 *   word 1: the immediate (sign-extended), or the CSR number for CSR operations, or the raw
 *           instruction bits for {@link Op.Illegal}.
 * A meta of 0 means "not decoded yet" (no operation has number 0).
 *
 * Compressed instructions are expanded to the base operation they stand for, so the interpreter
 * knows one set of operations; only their length differs.
 */

import { Op } from './op.js';

/** Bit 23 of meta: the instruction is 4 bytes long. */
export const META_LONG = 1 << 23;

/** Decoded slots per 4 KiB page: one per halfword, two Int32 words each, plus one scratch slot. */
export const DECODED_SLOTS_PER_PAGE = 2048;
/** Int32 words of one decoded page: 2048 slots and one scratch slot for page-crossing instructions. */
export const DECODED_PAGE_WORDS = (DECODED_SLOTS_PER_PAGE + 1) * 2;
/** Word index of the scratch slot in a decoded page. */
export const SCRATCH_SLOT = DECODED_SLOTS_PER_PAGE * 2;

function meta(op: Op, rd: number, rs1: number, rs2: number, long: boolean): number {
  return op | (rd << 8) | (rs1 << 13) | (rs2 << 18) | (long ? META_LONG : 0);
}

/** Writes an Illegal slot carrying the instruction bits. */
function illegal(out: Int32Array, slot: number, bits: number, long: boolean): number {
  const m = meta(Op.Illegal, 0, 0, 0, long);
  out[slot] = m;
  out[slot + 1] = bits | 0;
  return m;
}

/** Ops that only write rd and have no other effect: with rd = x0 they become Nop. */
function aluOrNop(op: Op, rd: number): Op {
  return rd === 0 ? Op.Nop : op;
}

/**
 * Decodes the 32-bit instruction `bits` into `out[slot]`, `out[slot+1]`; returns the meta word.
 */
export function decode32(bits: number, out: Int32Array, slot: number): number {
  const opcode = bits & 0x7f;
  const rd = (bits >>> 7) & 31;
  const funct3 = (bits >>> 12) & 7;
  const rs1 = (bits >>> 15) & 31;
  const rs2 = (bits >>> 20) & 31;
  const funct7 = bits >>> 25;
  const immI = bits >> 20;
  let op: Op;
  let imm = 0;
  switch (opcode) {
    case 0x37:
      op = aluOrNop(Op.Lui, rd);
      imm = bits & 0xfffff000;
      break;
    case 0x17:
      op = aluOrNop(Op.Auipc, rd);
      imm = bits & 0xfffff000;
      break;
    case 0x6f:
      op = Op.Jal;
      imm =
        ((bits >> 31) << 20) |
        (((bits >>> 12) & 0xff) << 12) |
        (((bits >>> 20) & 1) << 11) |
        (((bits >>> 21) & 0x3ff) << 1);
      break;
    case 0x67:
      if (funct3 !== 0) return illegal(out, slot, bits, true);
      op = Op.Jalr;
      imm = immI;
      break;
    case 0x63: {
      const branchOps = [Op.Beq, Op.Bne, 0, 0, Op.Blt, Op.Bge, Op.Bltu, Op.Bgeu] as const;
      const branchOp = branchOps[funct3] as Op | 0;
      if (branchOp === 0) return illegal(out, slot, bits, true);
      op = branchOp;
      imm =
        ((bits >> 31) << 12) |
        (((bits >>> 7) & 1) << 11) |
        (((bits >>> 25) & 0x3f) << 5) |
        (((bits >>> 8) & 0xf) << 1);
      break;
    }
    case 0x03: {
      const loadOps = [Op.Lb, Op.Lh, Op.Lw, 0, Op.Lbu, Op.Lhu, 0, 0] as const;
      const loadOp = loadOps[funct3] as Op | 0;
      if (loadOp === 0) return illegal(out, slot, bits, true);
      op = loadOp;
      imm = immI;
      break;
    }
    case 0x23: {
      if (funct3 > 2) return illegal(out, slot, bits, true);
      op = funct3 === 0 ? Op.Sb : funct3 === 1 ? Op.Sh : Op.Sw;
      imm = ((bits >> 25) << 5) | ((bits >>> 7) & 31);
      break;
    }
    case 0x13: {
      imm = immI;
      switch (funct3) {
        case 0:
          op = Op.Addi;
          break;
        case 2:
          op = Op.Slti;
          break;
        case 3:
          op = Op.Sltiu;
          break;
        case 4:
          op = Op.Xori;
          break;
        case 6:
          op = Op.Ori;
          break;
        case 7:
          op = Op.Andi;
          break;
        case 1:
          if (funct7 !== 0) return illegal(out, slot, bits, true);
          op = Op.Slli;
          imm = rs2;
          break;
        default:
          if (funct7 === 0) op = Op.Srli;
          else if (funct7 === 0x20) op = Op.Srai;
          else return illegal(out, slot, bits, true);
          imm = rs2;
          break;
      }
      op = aluOrNop(op, rd);
      break;
    }
    case 0x33: {
      if (funct7 === 0) {
        op = [Op.Add, Op.Sll, Op.Slt, Op.Sltu, Op.Xor, Op.Srl, Op.Or, Op.And][funct3] as Op;
      } else if (funct7 === 0x20) {
        if (funct3 === 0) op = Op.Sub;
        else if (funct3 === 5) op = Op.Sra;
        else return illegal(out, slot, bits, true);
      } else if (funct7 === 1) {
        op = [Op.Mul, Op.Mulh, Op.Mulhsu, Op.Mulhu, Op.Div, Op.Divu, Op.Rem, Op.Remu][funct3] as Op;
      } else {
        return illegal(out, slot, bits, true);
      }
      op = aluOrNop(op, rd);
      break;
    }
    case 0x0f:
      if (funct3 === 0) op = Op.Nop;
      else if (funct3 === 1) op = Op.FenceI;
      else return illegal(out, slot, bits, true);
      break;
    case 0x73: {
      if (funct3 === 0) {
        if (bits === 0x00000073) op = Op.Ecall;
        else if (bits === 0x00100073) op = Op.Ebreak;
        else if (bits === 0x30200073) op = Op.Mret;
        else if (bits === 0x10200073) op = Op.Sret;
        else if (bits === 0x10500073) op = Op.Wfi;
        else if (funct7 === 0x09 && rd === 0) op = Op.SfenceVma;
        else return illegal(out, slot, bits, true);
      } else if (funct3 === 4) {
        return illegal(out, slot, bits, true);
      } else {
        op = [0, Op.Csrrw, Op.Csrrs, Op.Csrrc, 0, Op.Csrrwi, Op.Csrrsi, Op.Csrrci][funct3] as Op;
        imm = bits >>> 20;
      }
      break;
    }
    case 0x2f: {
      if (funct3 !== 2) return illegal(out, slot, bits, true);
      const funct5 = bits >>> 27;
      switch (funct5) {
        case 0x02:
          if (rs2 !== 0) return illegal(out, slot, bits, true);
          op = Op.LrW;
          break;
        case 0x03:
          op = Op.ScW;
          break;
        case 0x01:
          op = Op.AmoswapW;
          break;
        case 0x00:
          op = Op.AmoaddW;
          break;
        case 0x04:
          op = Op.AmoxorW;
          break;
        case 0x0c:
          op = Op.AmoandW;
          break;
        case 0x08:
          op = Op.AmoorW;
          break;
        case 0x10:
          op = Op.AmominW;
          break;
        case 0x14:
          op = Op.AmomaxW;
          break;
        case 0x18:
          op = Op.AmominuW;
          break;
        case 0x1c:
          op = Op.AmomaxuW;
          break;
        default:
          return illegal(out, slot, bits, true);
      }
      break;
    }
    default:
      return illegal(out, slot, bits, true);
  }
  // Keep only the register fields the format has, so equal instructions decode to equal slots.
  const usesRs2 =
    opcode === 0x33 || opcode === 0x23 || opcode === 0x63 || opcode === 0x2f || op === Op.SfenceVma;
  const usesRd = opcode !== 0x23 && opcode !== 0x63;
  const usesRs1 = opcode !== 0x37 && opcode !== 0x17 && opcode !== 0x6f;
  const m = meta(op, usesRd ? rd : 0, usesRs1 ? rs1 : 0, usesRs2 ? rs2 : 0, true);
  out[slot] = m;
  out[slot + 1] = imm;
  return m;
}

/**
 * Decodes the compressed instruction `bits` (16 bits) into `out[slot]`, `out[slot+1]`, expanded to
 * its base operation; returns the meta word. Reserved encodings and those of absent extensions
 * (F, D, RV64/128) are Illegal.
 */
export function decode16(bits: number, out: Int32Array, slot: number): number {
  const quadrant = bits & 3;
  const funct3 = (bits >>> 13) & 7;
  const rdFull = (bits >>> 7) & 31;
  const rs2Full = (bits >>> 2) & 31;
  const rdPrime = ((bits >>> 2) & 7) + 8;
  const rs1Prime = ((bits >>> 7) & 7) + 8;
  let op: Op;
  let rd = 0;
  let rs1 = 0;
  let rs2 = 0;
  let imm = 0;
  const bit12 = (bits >>> 12) & 1;
  if (quadrant === 0) {
    switch (funct3) {
      case 0: {
        // C.ADDI4SPN
        imm =
          (((bits >>> 7) & 0xf) << 6) |
          (((bits >>> 11) & 3) << 4) |
          (((bits >>> 5) & 1) << 3) |
          (((bits >>> 6) & 1) << 2);
        if (imm === 0) return illegal(out, slot, bits, false);
        op = Op.Addi;
        rd = rdPrime;
        rs1 = 2;
        break;
      }
      case 2: // C.LW
        op = Op.Lw;
        rd = rdPrime;
        rs1 = rs1Prime;
        imm = (((bits >>> 10) & 7) << 3) | (((bits >>> 6) & 1) << 2) | (((bits >>> 5) & 1) << 6);
        break;
      case 6: // C.SW
        op = Op.Sw;
        rs1 = rs1Prime;
        rs2 = rdPrime;
        imm = (((bits >>> 10) & 7) << 3) | (((bits >>> 6) & 1) << 2) | (((bits >>> 5) & 1) << 6);
        break;
      default:
        return illegal(out, slot, bits, false);
    }
  } else if (quadrant === 1) {
    const immCI = ((bit12 << 31) >> 26) | rs2Full;
    switch (funct3) {
      case 0: // C.ADDI (C.NOP when rd = 0)
        op = aluOrNop(Op.Addi, rdFull);
        rd = rdFull;
        rs1 = rdFull;
        imm = immCI;
        break;
      case 1: // C.JAL
      case 5: // C.J
        op = Op.Jal;
        rd = funct3 === 1 ? 1 : 0;
        imm =
          ((bit12 << 31) >> 20) |
          (((bits >>> 8) & 1) << 10) |
          (((bits >>> 9) & 3) << 8) |
          (((bits >>> 6) & 1) << 7) |
          (((bits >>> 7) & 1) << 6) |
          (((bits >>> 2) & 1) << 5) |
          (((bits >>> 11) & 1) << 4) |
          (((bits >>> 3) & 7) << 1);
        break;
      case 2: // C.LI
        op = aluOrNop(Op.Addi, rdFull);
        rd = rdFull;
        rs1 = 0;
        imm = immCI;
        break;
      case 3:
        if (rdFull === 2) {
          // C.ADDI16SP
          imm =
            ((bit12 << 31) >> 22) |
            (((bits >>> 3) & 3) << 7) |
            (((bits >>> 5) & 1) << 6) |
            (((bits >>> 2) & 1) << 5) |
            (((bits >>> 6) & 1) << 4);
          if (imm === 0) return illegal(out, slot, bits, false);
          op = Op.Addi;
          rd = 2;
          rs1 = 2;
        } else {
          // C.LUI
          imm = immCI << 12;
          if (imm === 0) return illegal(out, slot, bits, false);
          op = aluOrNop(Op.Lui, rdFull);
          rd = rdFull;
        }
        break;
      case 4: {
        const funct2 = (bits >>> 10) & 3;
        rd = rs1Prime;
        rs1 = rs1Prime;
        if (funct2 === 0 || funct2 === 1) {
          // C.SRLI, C.SRAI; shamt[5] = 1 is reserved on RV32
          if (bit12) return illegal(out, slot, bits, false);
          op = funct2 === 0 ? Op.Srli : Op.Srai;
          imm = rs2Full;
        } else if (funct2 === 2) {
          op = Op.Andi;
          imm = immCI;
        } else {
          if (bit12) return illegal(out, slot, bits, false); // C.SUBW, C.ADDW and reserved
          rs2 = ((bits >>> 2) & 7) + 8;
          op = [Op.Sub, Op.Xor, Op.Or, Op.And][(bits >>> 5) & 3] as Op;
        }
        break;
      }
      default: {
        // C.BEQZ, C.BNEZ
        op = funct3 === 6 ? Op.Beq : Op.Bne;
        rs1 = rs1Prime;
        rs2 = 0;
        imm =
          ((bit12 << 31) >> 23) |
          (((bits >>> 5) & 3) << 6) |
          (((bits >>> 2) & 1) << 5) |
          (((bits >>> 10) & 3) << 3) |
          (((bits >>> 3) & 3) << 1);
        break;
      }
    }
  } else {
    switch (funct3) {
      case 0: // C.SLLI; shamt[5] = 1 is reserved on RV32
        if (bit12) return illegal(out, slot, bits, false);
        op = aluOrNop(Op.Slli, rdFull);
        rd = rdFull;
        rs1 = rdFull;
        imm = rs2Full;
        break;
      case 2: // C.LWSP
        if (rdFull === 0) return illegal(out, slot, bits, false);
        op = Op.Lw;
        rd = rdFull;
        rs1 = 2;
        imm = (bit12 << 5) | (((bits >>> 4) & 7) << 2) | (((bits >>> 2) & 3) << 6);
        break;
      case 4:
        if (bit12 === 0) {
          if (rs2Full === 0) {
            // C.JR
            if (rdFull === 0) return illegal(out, slot, bits, false);
            op = Op.Jalr;
            rd = 0;
            rs1 = rdFull;
          } else {
            // C.MV
            op = aluOrNop(Op.Add, rdFull);
            rd = rdFull;
            rs1 = 0;
            rs2 = rs2Full;
          }
        } else if (rs2Full === 0) {
          if (rdFull === 0) {
            op = Op.Ebreak;
          } else {
            // C.JALR
            op = Op.Jalr;
            rd = 1;
            rs1 = rdFull;
          }
        } else {
          // C.ADD
          op = aluOrNop(Op.Add, rdFull);
          rd = rdFull;
          rs1 = rdFull;
          rs2 = rs2Full;
        }
        break;
      case 6: // C.SWSP
        op = Op.Sw;
        rs1 = 2;
        rs2 = rs2Full;
        imm = (((bits >>> 9) & 0xf) << 2) | (((bits >>> 7) & 3) << 6);
        break;
      default:
        return illegal(out, slot, bits, false);
    }
  }
  const m = meta(op, rd, rs1, rs2, false);
  out[slot] = m;
  out[slot + 1] = imm;
  return m;
}
