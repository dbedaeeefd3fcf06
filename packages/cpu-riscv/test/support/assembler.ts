/**
 * A tiny RV32 encoder for tests: each function returns one instruction word (or halfword for the
 * compressed ones). Registers are numbers 0..31.
 */

const r = (funct7: number, rs2: number, rs1: number, funct3: number, rd: number, opcode: number) =>
  ((funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode) >>> 0;
const i = (imm: number, rs1: number, funct3: number, rd: number, opcode: number) =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode) >>> 0;
const s = (imm: number, rs2: number, rs1: number, funct3: number) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;
const b = (imm: number, rs2: number, rs1: number, funct3: number) =>
  ((((imm >> 12) & 1) << 31) |
    (((imm >> 5) & 0x3f) << 25) |
    (rs2 << 20) |
    (rs1 << 15) |
    (funct3 << 12) |
    (((imm >> 1) & 0xf) << 8) |
    (((imm >> 11) & 1) << 7) |
    0x63) >>>
  0;

export const lui = (rd: number, imm20: number) => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x37) >>> 0;
export const auipc = (rd: number, imm20: number) => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x17) >>> 0;
export const jal = (rd: number, offset: number) =>
  ((((offset >> 20) & 1) << 31) |
    (((offset >> 1) & 0x3ff) << 21) |
    (((offset >> 11) & 1) << 20) |
    (((offset >> 12) & 0xff) << 12) |
    (rd << 7) |
    0x6f) >>>
  0;
export const jalr = (rd: number, rs1: number, imm: number) => i(imm, rs1, 0, rd, 0x67);
export const beq = (rs1: number, rs2: number, offset: number) => b(offset, rs2, rs1, 0);
export const bne = (rs1: number, rs2: number, offset: number) => b(offset, rs2, rs1, 1);
export const blt = (rs1: number, rs2: number, offset: number) => b(offset, rs2, rs1, 4);
export const bge = (rs1: number, rs2: number, offset: number) => b(offset, rs2, rs1, 5);
export const bltu = (rs1: number, rs2: number, offset: number) => b(offset, rs2, rs1, 6);
export const bgeu = (rs1: number, rs2: number, offset: number) => b(offset, rs2, rs1, 7);
export const lb = (rd: number, rs1: number, imm: number) => i(imm, rs1, 0, rd, 0x03);
export const lh = (rd: number, rs1: number, imm: number) => i(imm, rs1, 1, rd, 0x03);
export const lw = (rd: number, rs1: number, imm: number) => i(imm, rs1, 2, rd, 0x03);
export const lbu = (rd: number, rs1: number, imm: number) => i(imm, rs1, 4, rd, 0x03);
export const lhu = (rd: number, rs1: number, imm: number) => i(imm, rs1, 5, rd, 0x03);
export const sb = (rs2: number, rs1: number, imm: number) => s(imm, rs2, rs1, 0);
export const sh = (rs2: number, rs1: number, imm: number) => s(imm, rs2, rs1, 1);
export const sw = (rs2: number, rs1: number, imm: number) => s(imm, rs2, rs1, 2);
export const addi = (rd: number, rs1: number, imm: number) => i(imm, rs1, 0, rd, 0x13);
export const slti = (rd: number, rs1: number, imm: number) => i(imm, rs1, 2, rd, 0x13);
export const sltiu = (rd: number, rs1: number, imm: number) => i(imm, rs1, 3, rd, 0x13);
export const xori = (rd: number, rs1: number, imm: number) => i(imm, rs1, 4, rd, 0x13);
export const ori = (rd: number, rs1: number, imm: number) => i(imm, rs1, 6, rd, 0x13);
export const andi = (rd: number, rs1: number, imm: number) => i(imm, rs1, 7, rd, 0x13);
export const slli = (rd: number, rs1: number, shamt: number) => r(0, shamt, rs1, 1, rd, 0x13);
export const srli = (rd: number, rs1: number, shamt: number) => r(0, shamt, rs1, 5, rd, 0x13);
export const srai = (rd: number, rs1: number, shamt: number) => r(0x20, shamt, rs1, 5, rd, 0x13);
export const add = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 0, rd, 0x33);
export const sub = (rd: number, rs1: number, rs2: number) => r(0x20, rs2, rs1, 0, rd, 0x33);
export const sll = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 1, rd, 0x33);
export const slt = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 2, rd, 0x33);
export const sltu = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 3, rd, 0x33);
export const xor = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 4, rd, 0x33);
export const srl = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 5, rd, 0x33);
export const sra = (rd: number, rs1: number, rs2: number) => r(0x20, rs2, rs1, 5, rd, 0x33);
export const or = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 6, rd, 0x33);
export const and = (rd: number, rs1: number, rs2: number) => r(0, rs2, rs1, 7, rd, 0x33);
export const mul = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 0, rd, 0x33);
export const mulh = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 1, rd, 0x33);
export const mulhsu = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 2, rd, 0x33);
export const mulhu = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 3, rd, 0x33);
export const div = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 4, rd, 0x33);
export const divu = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 5, rd, 0x33);
export const rem = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 6, rd, 0x33);
export const remu = (rd: number, rs1: number, rs2: number) => r(1, rs2, rs1, 7, rd, 0x33);
export const fence = () => 0x0ff0000f;
export const fenceI = () => 0x0000100f;
export const ecall = () => 0x00000073;
export const ebreak = () => 0x00100073;
export const mret = () => 0x30200073;
export const sret = () => 0x10200073;
export const wfi = () => 0x10500073;
export const sfenceVma = (rs1 = 0, rs2 = 0) => r(0x09, rs2, rs1, 0, 0, 0x73);
export const csrrw = (rd: number, csr: number, rs1: number) => i(csr, rs1, 1, rd, 0x73);
export const csrrs = (rd: number, csr: number, rs1: number) => i(csr, rs1, 2, rd, 0x73);
export const csrrc = (rd: number, csr: number, rs1: number) => i(csr, rs1, 3, rd, 0x73);
export const csrrwi = (rd: number, csr: number, uimm: number) => i(csr, uimm, 5, rd, 0x73);
export const csrrsi = (rd: number, csr: number, uimm: number) => i(csr, uimm, 6, rd, 0x73);
export const csrrci = (rd: number, csr: number, uimm: number) => i(csr, uimm, 7, rd, 0x73);
const amo = (funct5: number) => (rd: number, rs1: number, rs2: number) =>
  r(funct5 << 2, rs2, rs1, 2, rd, 0x2f);
export const lrW = (rd: number, rs1: number) => r(0x02 << 2, 0, rs1, 2, rd, 0x2f);
export const scW = amo(0x03);
export const amoswapW = amo(0x01);
export const amoaddW = amo(0x00);
export const amoxorW = amo(0x04);
export const amoandW = amo(0x0c);
export const amoorW = amo(0x08);
export const amominW = amo(0x10);
export const amomaxW = amo(0x14);
export const amominuW = amo(0x18);
export const amomaxuW = amo(0x1c);

/** `li rd, value` as lui + addi (always two words). */
export function li(rd: number, value: number): [number, number] {
  const low = (value << 20) >> 20;
  const high = ((value - low) >>> 12) & 0xfffff;
  return [lui(rd, high), addi(rd, rd, low)];
}

// compressed (a few, for tests)
export const cAddi = (rd: number, imm: number) =>
  (0x0001 | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 31) << 2)) >>> 0;
export const cLi = (rd: number, imm: number) =>
  (0x4001 | (((imm >> 5) & 1) << 12) | (rd << 7) | ((imm & 31) << 2)) >>> 0;
export const cMv = (rd: number, rs2: number) => (0x8002 | (rd << 7) | (rs2 << 2)) >>> 0;
export const cAdd = (rd: number, rs2: number) => (0x9002 | (rd << 7) | (rs2 << 2)) >>> 0;
export const cJr = (rs1: number) => (0x8002 | (rs1 << 7)) >>> 0;
export const cEbreak = () => 0x9002;
export const cNop = () => 0x0001;
