import { describe, expect, it } from 'vitest';
import { decode16, decode32, META_LONG } from './decode.js';
import { Op } from './op.js';

/** Decodes one instruction into a fresh slot; returns [meta, imm]. */
function decode(bits: number, compressed: boolean): [number, number] {
  const out = new Int32Array(2);
  const meta = compressed ? decode16(bits, out, 0) : decode32(bits, out, 0);
  return [meta, out[1] as number];
}

/** Compressed encodings and the 32-bit instructions they expand to (from the GNU assembler). */
const EXPANSIONS: [number, number][] = [
  [0x1fe0, 0x3fc10413], // addi s0, sp, 1020
  [0x005c, 0x00410793], // addi a5, sp, 4
  [0x5fe8, 0x07c7a503], // lw a0, 124(a5)
  [0x4004, 0x00042483], // lw s1, 0(s0)
  [0xc2b0, 0x04c6a023], // sw a2, 64(a3)
  [0x1501, 0xfe050513], // addi a0, a0, -32
  [0x0ffd, 0x01ff8f93], // addi t6, t6, 31
  [0x5701, 0xfe000713], // li a4, -32
  [0x497d, 0x01f00913], // li s2, 31
  [0x7101, 0xe0010113], // addi sp, sp, -512
  [0x617d, 0x1f010113], // addi sp, sp, 496
  [0x7681, 0xfffe06b7], // lui a3, 0xfffe0
  [0x62fd, 0x0001f2b7], // lui t0, 0x1f
  [0x83fd, 0x01f7d793], // srli a5, a5, 31
  [0x8405, 0x40145413], // srai s0, s0, 1
  [0x99fd, 0xfff5f593], // andi a1, a1, -1
  [0x8d1d, 0x40f50533], // sub a0, a0, a5
  [0x8cb1, 0x00c4c4b3], // xor s1, s1, a2
  [0x8ed9, 0x00e6e6b3], // or a3, a3, a4
  [0x8f61, 0x00877733], // and a4, a4, s0
  [0x0e7e, 0x01fe1e13], // slli t3, t3, 31
  [0x50fe, 0x0fc12083], // lw ra, 252(sp)
  [0x4382, 0x00012383], // lw t2, 0(sp)
  [0x859e, 0x007005b3], // add a1, zero, t2
  [0x9002, 0x00100073], // ebreak
  [0x99f6, 0x01d989b3], // add s3, s3, t4
  [0xdfee, 0x0fb12e23], // sw s11, 252(sp)
  [0xc002, 0x00012023], // sw zero, 0(sp)
  [0x8502, 0x00050067], // jalr zero, 0(a0)  (c.jr)
  [0x9302, 0x000300e7], // jalr ra, 0(t1)  (c.jalr)
  [0xb001, 0x801ff06f], // jal zero, -2048  (c.j)
  [0xa001, 0x0000006f], // jal zero, 0  (c.j)
  [0xf101, 0xf00510e3], // bne a0, zero, -256  (c.bnez)
  [0xc081, 0x00048063], // beq s1, zero, 0  (c.beqz)
  [0x2001, 0x000000ef], // jal ra, 0  (c.jal)
  [0x0001, 0x00000013], // addi zero, zero, 0  (c.nop)
];

/** Reserved encodings and those of extensions this hart lacks: all illegal. */
const ILLEGAL_COMPRESSED = [
  0x0000, // c.addi4spn with nzuimm 0 (and the all-zero instruction)
  0x0004, // c.addi4spn with nzuimm 0, rd' = x9
  0x2000, // c.fld
  0x6000, // c.flw
  0xa000, // c.fsd
  0xe000, // c.fsw
  0x2002, // c.fldsp
  0x6002, // c.flwsp
  0xa002, // c.fsdsp
  0xe002, // c.fswsp
  0x6081, // c.lui with nzimm 0
  0x6101, // c.addi16sp with nzimm 0
  0x4002, // c.lwsp with rd = x0
  0x8002, // c.jr with rs1 = x0
  0x9001, // c.srli with shamt[5] = 1 (RV32)
  0x9401, // c.srai with shamt[5] = 1
  0x1082, // c.slli with shamt[5] = 1
  0x9c01, // c.subw (RV64)
  0x9c21, // c.addw (RV64)
  0x9c41, // reserved
  0x9c61, // reserved
  0x8000, // quadrant 0, funct3 4: reserved
];

describe('decoding', () => {
  it('expands every compressed instruction to its 32-bit equivalent', () => {
    for (const [compressed, expanded] of EXPANSIONS) {
      const [shortMeta, shortImm] = decode(compressed, true);
      const [longMeta, longImm] = decode(expanded, false);
      expect(shortMeta & META_LONG, compressed.toString(16)).toBe(0);
      expect(longMeta & META_LONG).toBe(META_LONG);
      expect([shortMeta & ~META_LONG, shortImm], `0x${compressed.toString(16)}`).toEqual([
        longMeta & ~META_LONG,
        longImm,
      ]);
    }
  });

  it('decodes reserved and absent-extension compressed encodings as illegal, keeping the 16 bits', () => {
    for (const bits of ILLEGAL_COMPRESSED) {
      const [meta, imm] = decode(bits, true);
      expect(meta & 0xff, `0x${bits.toString(16)}`).toBe(Op.Illegal);
      expect(imm).toBe(bits);
    }
  });

  it('treats HINTs (writes to x0) as no-ops', () => {
    expect(decode(0x4001, true)[0] & 0xff).toBe(Op.Nop); // c.li x0, 0
    expect(decode(0x0013, false)[0] & 0xff).toBe(Op.Nop); // addi x0, x0, 0
    expect(decode(0x00000037, false)[0] & 0xff).toBe(Op.Nop); // lui x0, 0
  });

  it('decodes reserved 32-bit encodings as illegal', () => {
    const illegal = [
      0x00003003, // ld (RV64)
      0x0000200f, // MISC-MEM funct3 2
      0xfe000033, // OP with funct7 0x7f
      0x02000013 | (1 << 12), // slli with shamt[5] = 1
      0x0000702f, // AMO with funct3 7
      0x1000202f | (1 << 20), // lr.w with rs2 != 0
      0x00004073, // SYSTEM funct3 4
      0x00000007, // flw (no F)
      0x30200073 | (1 << 7), // mret with rd != 0
      0x00002063, // branch funct3 2
      0x00001067, // jalr funct3 1
      0x0000003f, // 48-bit encoding space
    ];
    for (const bits of illegal) {
      const [meta, imm] = decode(bits >>> 0, false);
      expect(meta & 0xff, `0x${bits.toString(16)}`).toBe(Op.Illegal);
      expect(imm >>> 0).toBe(bits >>> 0);
    }
  });
});
