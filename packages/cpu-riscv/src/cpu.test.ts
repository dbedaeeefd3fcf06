import { SnapshotError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import * as A from '../test/support/assembler.js';
import {
  BASE,
  createHarness,
  enterMode,
  HANDLER,
  installHandler,
  MMIO_BASE,
  TARGET,
} from '../test/support/harness.js';

const MSTATUS = 0x300;
const MEDELEG = 0x302;
const MIE = 0x304;
const MTVEC = 0x305;
const MEPC = 0x341;
const MCAUSE = 0x342;
const MTVAL = 0x343;
const MIP = 0x344;
const STVEC = 0x105;
const SEPC = 0x141;
const SCAUSE = 0x142;
const STVAL = 0x143;
const SATP = 0x180;
const T0 = 5;
const T1 = 6;
const T2 = 7;
const A0 = 10;
const A1 = 11;
const A2 = 12;

/** Runs `body` in M mode from BASE with the `j .` handler installed; returns the harness. */
function runMachine(body: number[], steps?: number) {
  const h = createHarness();
  const program = [...installHandler(), ...body];
  h.code(BASE, program);
  h.cpu.reset(BASE, 0, 0);
  h.cpu.run(steps ?? program.length + 4);
  return h;
}

describe('RV32I and M arithmetic', () => {
  it('computes the ALU operations with wrap-around', () => {
    const h = runMachine([
      ...A.li(T0, 0x7fffffff),
      A.addi(A0, T0, 1), // overflow wraps
      A.sub(A1, 0, T0),
      A.slti(A2, A0, 0),
      A.sltiu(13, A0, -1), // unsigned compare against 0xffffffff
      A.srai(14, A0, 31),
      A.srli(15, A0, 31),
      A.xori(16, 0, -1),
      A.sltu(17, 0, T0),
    ]);
    expect(h.reg(A0)).toBe(-0x80000000);
    expect(h.reg(A1)).toBe(-0x7fffffff);
    expect(h.reg(A2)).toBe(1);
    expect(h.reg(13)).toBe(1);
    expect(h.reg(14)).toBe(-1);
    expect(h.reg(15)).toBe(1);
    expect(h.reg(16)).toBe(-1);
    expect(h.reg(17)).toBe(1);
  });

  it('divides by zero and overflows as the M extension says', () => {
    const h = runMachine([
      ...A.li(T0, 0x80000000 | 0),
      A.addi(T1, 0, -1),
      A.div(A0, T0, T1), // INT_MIN / -1 = INT_MIN
      A.rem(A1, T0, T1), // remainder 0
      A.div(A2, T0, 0), // / 0 = -1
      A.divu(13, T0, 0), // = 2^32 - 1
      A.rem(14, T0, 0), // = dividend
      A.remu(15, T1, 0), // = dividend
      A.addi(T2, 0, -7),
      A.addi(16, 0, 2),
      A.div(17, T2, 16), // -3 (toward zero)
      A.rem(18, T2, 16), // -1 (sign of dividend)
      A.divu(19, T1, 16), // 0x7fffffff
    ]);
    expect(h.reg(A0)).toBe(-0x80000000);
    expect(h.reg(A1)).toBe(0);
    expect(h.reg(A2)).toBe(-1);
    expect(h.reg(13)).toBe(-1);
    expect(h.reg(14)).toBe(-0x80000000);
    expect(h.reg(15)).toBe(-1);
    expect(h.reg(17)).toBe(-3);
    expect(h.reg(18)).toBe(-1);
    expect(h.reg(19)).toBe(0x7fffffff);
  });

  it('gets the signs of mulh, mulhsu and mulhu right', () => {
    const h = runMachine([
      A.addi(T0, 0, -1),
      A.addi(T1, 0, 3),
      A.mulh(A0, T0, T1), // -3 >> 32 = -1
      A.mulhu(A1, T0, T1), // (2^32-1)*3 >> 32 = 2
      A.mulhsu(A2, T0, T1), // -1 * 3 = -3 → high -1
      A.mulhsu(13, T1, T0), // 3 * (2^32-1) → high 2
      A.mulh(14, T0, T0), // 1 → high 0
      ...A.li(T2, 0x80000000 | 0),
      A.mulh(15, T2, T2), // 2^62 → high 0x40000000
      A.mulhu(16, T2, T2), // 2^62 → 0x40000000
      A.mul(17, T2, T0), // low word of -INT_MIN = INT_MIN
    ]);
    expect(h.reg(A0)).toBe(-1);
    expect(h.reg(A1)).toBe(2);
    expect(h.reg(A2)).toBe(-1);
    expect(h.reg(13)).toBe(2);
    expect(h.reg(14)).toBe(0);
    expect(h.reg(15)).toBe(0x40000000);
    expect(h.reg(16)).toBe(0x40000000);
    expect(h.reg(17)).toBe(-0x80000000);
  });

  it('keeps x0 zero', () => {
    const h = runMachine([A.addi(0, 0, 5), A.lui(0, 1), A.jal(0, 4), A.lw(0, 0, 0)], 6);
    expect(h.reg(0)).toBe(0);
  });

  it('carries out misaligned loads and stores, also across a page', () => {
    const h = runMachine([
      ...A.li(T0, 0x80100ffe),
      ...A.li(T1, 0x11223344),
      A.sw(T1, T0, 0),
      A.lw(A0, T0, 0),
      A.lh(A1, T0, 1),
      A.lhu(A2, T0, 3),
    ]);
    expect(h.read32(0x80100ffc) >>> 16).toBe(0x3344);
    expect(h.read32(0x80101000) & 0xffff).toBe(0x1122);
    expect(h.reg(A0)).toBe(0x11223344);
    expect(h.reg(A1)).toBe(0x2233);
    expect(h.reg(A2) & 0xff).toBe(0x11);
  });
});

describe('exceptions', () => {
  it('reports illegal instructions with their bits in mtval (16 bits when compressed)', () => {
    const h = runMachine([0xffffffff >>> 0]);
    expect(h.cpu.readCsr(MCAUSE)).toBe(2);
    expect(h.cpu.readCsr(MTVAL)).toBe(0xffffffff);
    expect(h.cpu.readCsr(MEPC)).toBe(BASE + 12);
    const c = runMachine([0x0000]);
    expect(c.cpu.readCsr(MCAUSE)).toBe(2);
    expect(c.cpu.readCsr(MTVAL)).toBe(0);
    const d = runMachine([0x6000 | 0x0001 /* c.lui x0? no: reserved c.lui with rd=0 imm=0 */ | (0 << 7)]);
    expect(d.cpu.readCsr(MCAUSE)).toBe(2);
    expect(d.cpu.readCsr(MTVAL)).toBe(0x6001);
  });

  it('raises breakpoint and ecall with the right causes', () => {
    expect(runMachine([A.ebreak()]).cpu.readCsr(MCAUSE)).toBe(3);
    expect(runMachine([A.cEbreak()]).cpu.readCsr(MCAUSE)).toBe(3);
    expect(runMachine([A.ecall()]).cpu.readCsr(MCAUSE)).toBe(11);
  });

  it('raises access faults for addresses nothing claims, with the address in mtval', () => {
    const load = runMachine([...A.li(T0, 0x40000000), A.lw(A0, T0, 4)]);
    expect(load.cpu.readCsr(MCAUSE)).toBe(5);
    expect(load.cpu.readCsr(MTVAL)).toBe(0x40000004);
    const store = runMachine([...A.li(T0, 0x40000000), A.sb(A0, T0, 1)]);
    expect(store.cpu.readCsr(MCAUSE)).toBe(7);
    expect(store.cpu.readCsr(MTVAL)).toBe(0x40000001);
    const fetch = runMachine([...A.li(T0, 0x40000000), A.jalr(0, T0, 0)]);
    expect(fetch.cpu.readCsr(MCAUSE)).toBe(1);
    expect(fetch.cpu.readCsr(MTVAL)).toBe(0x40000000);
    expect(fetch.cpu.readCsr(MEPC)).toBe(0x40000000);
  });

  it('reports misaligned LR as a load (4) and misaligned AMO/SC as store/AMO (6)', () => {
    const lr = runMachine([...A.li(T0, BASE + 0x2001), A.lrW(A0, T0)]);
    expect(lr.cpu.readCsr(MCAUSE)).toBe(4);
    expect(lr.cpu.readCsr(MTVAL)).toBe(BASE + 0x2001);
    const amo = runMachine([...A.li(T0, BASE + 0x2002), A.amoaddW(A0, T0, T1)]);
    expect(amo.cpu.readCsr(MCAUSE)).toBe(6);
  });

  it('reports a faulting AMO as a store/AMO access fault (7), as the manual says', () => {
    const h = runMachine([...A.li(T0, 0x40000000), A.amoswapW(A0, T0, T1)]);
    expect(h.cpu.readCsr(MCAUSE)).toBe(7);
  });

  it('never throws on any 32-bit pattern', () => {
    const h = createHarness();
    for (let bits = 0x3; bits < 0xffffffff; bits += 0x00ef_f3a7) {
      h.code(BASE, [...installHandler(), bits >>> 0]);
      h.cpu.reset(BASE, 0, 0);
      expect(() => h.cpu.run(10)).not.toThrow();
    }
  });

  it('uses vectored mtvec only for interrupts', () => {
    const h = createHarness();
    h.code(BASE, [
      ...A.li(T0, HANDLER - 0x100 + 1), // vectored, base HANDLER - 0x100
      A.csrrw(0, MTVEC, T0),
      A.ecall(),
    ]);
    h.cpu.reset(BASE, 0, 0);
    h.cpu.run(4);
    expect(h.cpu.pc).toBe(HANDLER - 0x100); // exception: base
    h.code(BASE, [
      ...A.li(T0, HANDLER - 0x100 + 1),
      A.csrrw(0, MTVEC, T0),
      A.addi(T0, 0, 0x80),
      A.csrrw(0, MIE, T0), // MTIE
      A.csrrsi(0, MSTATUS, 8), // MIE
      A.jal(0, 0),
    ]);
    h.cpu.reset(BASE, 0, 0);
    h.cpu.setInterruptLine('machine-timer', true);
    h.cpu.run(7);
    expect(h.cpu.readCsr(MCAUSE)).toBe(0x80000007);
    expect(h.cpu.pc).toBe(HANDLER - 0x100 + 4 * 7);
  });
});

describe('delegation and privilege', () => {
  it('delegates an exception from U mode to S mode and returns with sret', () => {
    const h = createHarness();
    const sHandler = TARGET + 0x800;
    h.code(BASE, [
      ...installHandler(),
      A.addi(T0, 0, 1 << 8),
      A.csrrw(0, MEDELEG, T0), // delegate U ecall
      ...A.li(T0, sHandler),
      A.csrrw(0, STVEC, T0),
      ...enterMode(0, TARGET),
    ]);
    h.code(TARGET, [A.ecall(), A.addi(A0, 0, 42), A.jal(0, 0)]);
    h.code(sHandler, [A.csrrs(A1, SEPC, 0), A.addi(A1, A1, 4), A.csrrw(0, SEPC, A1), A.sret()]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(sHandler);
    expect(h.cpu.privilegeMode).toBe(1);
    expect(h.cpu.readCsr(SCAUSE)).toBe(8);
    expect(h.cpu.readCsr(SEPC)).toBe(TARGET);
    expect(h.cpu.readCsr(MCAUSE)).toBe(0);
    h.runUntil(TARGET + 8);
    expect(h.cpu.privilegeMode).toBe(0);
    expect(h.reg(A0)).toBe(42);
  });

  it('does not delegate traps taken in M mode', () => {
    const h = runMachine([A.addi(T0, 0, -1), A.csrrw(0, MEDELEG, T0), A.ecall()]);
    expect(h.cpu.readCsr(MCAUSE)).toBe(11);
    expect(h.cpu.pc).toBe(HANDLER);
  });

  it('makes mret into S/U an illegal instruction while no PMP entry is active (QEMU 7.2)', () => {
    const h = runMachine([A.lui(T0, 1), A.csrrw(0, MSTATUS, T0), A.mret()]); // MPP = S
    expect(h.cpu.readCsr(MCAUSE)).toBe(2);
    expect(h.cpu.readCsr(MTVAL)).toBe(0x30200073);
  });

  it('checks CSR privilege and read-only CSRs', () => {
    const h = createHarness();
    h.code(BASE, [...installHandler(), ...enterMode(0, TARGET)]);
    h.code(TARGET, [A.csrrs(A0, MSTATUS, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(HANDLER);
    expect(h.cpu.readCsr(MCAUSE)).toBe(2);
    expect(h.cpu.readCsr(MTVAL)).toBe(A.csrrs(A0, MSTATUS, 0));
    const ro = runMachine([A.csrrw(0, 0xf14, 0)]); // mhartid is read-only
    expect(ro.cpu.readCsr(MCAUSE)).toBe(2);
    const missing = runMachine([A.csrrs(A0, 0x7c0, 0)]);
    expect(missing.cpu.readCsr(MCAUSE)).toBe(2);
  });

  it('guards counters in S/U mode with mcounteren and scounteren', () => {
    const h = createHarness();
    h.code(BASE, [...installHandler(), A.addi(T0, 0, 5), A.csrrw(0, 0x306, T0), ...enterMode(1, TARGET)]);
    h.code(TARGET, [A.csrrs(A0, 0xc02, 0), A.csrrs(A1, 0xc00, 0), A.csrrs(A2, 0xc01, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(HANDLER);
    // instret and cycle allowed; time has no timer here: illegal.
    expect(h.cpu.readCsr(MEPC)).toBe(TARGET + 8);
    expect(h.cpu.readCsr(MCAUSE)).toBe(2);
  });

  it('traps sret in S mode with TSR, wfi in U mode and sfence.vma in S mode with TVM', () => {
    const tsr = createHarness();
    tsr.code(BASE, [...installHandler(), ...enterMode(1, TARGET, 1 << 22)]);
    tsr.code(TARGET, [A.sret()]);
    tsr.cpu.reset(BASE, 0, 0);
    tsr.runUntil(HANDLER);
    expect(tsr.cpu.readCsr(MTVAL)).toBe(0x10200073);
    const user = createHarness();
    user.code(BASE, [...installHandler(), ...enterMode(0, TARGET)]);
    user.code(TARGET, [A.wfi()]);
    user.cpu.reset(BASE, 0, 0);
    user.runUntil(HANDLER);
    expect(user.cpu.readCsr(MTVAL)).toBe(0x10500073);
    const tvm = createHarness();
    tvm.code(BASE, [...installHandler(), ...enterMode(1, TARGET, 1 << 20)]);
    tvm.code(TARGET, [A.sfenceVma(), A.csrrs(A0, SATP, 0)]);
    tvm.cpu.reset(BASE, 0, 0);
    tvm.runUntil(HANDLER);
    expect(tvm.cpu.readCsr(MCAUSE)).toBe(2);
    expect(tvm.cpu.readCsr(MEPC)).toBe(TARGET);
  });
});

describe('interrupts', () => {
  function armed(mie: number) {
    const h = createHarness();
    h.code(BASE, [
      ...installHandler(),
      ...A.li(T0, mie),
      A.csrrw(0, MIE, T0),
      A.csrrsi(0, MSTATUS, 8),
      A.jal(0, 0),
    ]);
    h.cpu.reset(BASE, 0, 0);
    return h;
  }

  it('takes MEI before MSI before MTI, then SEI, SSI, STI', () => {
    const order: number[] = [];
    const h = armed(0xaaa);
    h.cpu.setInterruptLine('machine-external', true);
    h.cpu.setInterruptLine('machine-software', true);
    h.cpu.setInterruptLine('machine-timer', true);
    h.cpu.setInterruptLine('supervisor-external', true);
    h.runUntil(HANDLER);
    order.push(h.cpu.readCsr(MCAUSE)! & 0xff);
    for (const line of ['machine-external', 'machine-software', 'machine-timer'] as const) {
      h.cpu.setInterruptLine(line, false);
      h.cpu.reset(BASE, 0, 0);
      h.runUntil(HANDLER);
      order.push(h.cpu.readCsr(MCAUSE)! & 0xff);
    }
    expect(order).toEqual([11, 3, 7, 9]);
    const s = armed(0x22);
    s.code(BASE + 0x100, []);
    s.cpu.reset(BASE, 0, 0);
    // SSIP and STIP are software-writable in mip; SSI goes first.
    s.code(BASE, [
      ...installHandler(),
      A.addi(T0, 0, 0x22),
      A.csrrw(0, MIE, T0),
      A.csrrw(0, MIP, T0),
      A.csrrsi(0, MSTATUS, 8),
      A.jal(0, 0),
    ]);
    s.cpu.reset(BASE, 0, 0);
    s.runUntil(HANDLER);
    expect(s.cpu.readCsr(MCAUSE)).toBe(0x80000001);
  });

  it('takes interrupts only at step boundaries and counts them as a step', () => {
    const h = armed(0x80);
    h.runUntil(BASE + 28); // the `j .` loop
    h.cpu.run(3);
    const before = h.cpu.icount;
    h.cpu.setInterruptLine('machine-timer', true);
    const outcome = h.cpu.run(1);
    expect(outcome.steps).toBe(1);
    expect(h.cpu.icount).toBe(before + 1);
    expect(h.cpu.pc).toBe(HANDLER);
    expect(h.cpu.readCsr(MEPC)).toBe(BASE + 28);
  });

  it('ORs the SEIP line with the software SEIP bit', () => {
    const h = runMachine([
      A.addi(T0, 0, 0x200),
      A.csrrs(0, MIP, T0),
      A.csrrs(A0, MIP, 0),
      A.csrrc(0, MIP, T0),
      A.csrrs(A1, MIP, 0),
    ]);
    expect(h.reg(A0) & 0x200).toBe(0x200);
    expect(h.reg(A1) & 0x200).toBe(0);
    h.cpu.setInterruptLine('supervisor-external', true);
    expect(h.cpu.readCsr(MIP)! & 0x200).toBe(0x200);
  });

  it('keeps the SEIP line out of a CSRRS/CSRRC of mip: the PLIC deasserting it clears it', () => {
    // A firmware passing the timer on sets STIP with `csrs mip` while an external interrupt is
    // pending; once the PLIC lowers SEIP, mip.SEIP must read 0 again.
    const h = createHarness();
    h.code(BASE, [A.addi(T0, 0, 0x20), A.csrrs(0, MIP, T0), A.csrrc(0, MIP, T0), A.jal(0, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.cpu.setInterruptLine('supervisor-external', true);
    h.cpu.run(3);
    h.cpu.setInterruptLine('supervisor-external', false);
    expect(h.cpu.readCsr(MIP)! & 0x220).toBe(0);
  });

  it('waits in wfi until mip & mie is non-zero, even with MIE clear', () => {
    const h = createHarness();
    h.code(BASE, [...installHandler(), A.addi(T0, 0, 0x80), A.csrrw(0, MIE, T0), A.wfi(), A.addi(A0, 0, 7)]);
    h.cpu.reset(BASE, 0, 0);
    const first = h.cpu.run(100);
    expect(first).toEqual({ steps: 6, reason: 'wfi' });
    expect(h.cpu.waiting).toBe(true);
    expect(h.cpu.run(100)).toEqual({ steps: 0, reason: 'wfi' });
    h.cpu.setInterruptLine('machine-timer', true);
    const second = h.cpu.run(1);
    expect(second.steps).toBe(1);
    expect(h.cpu.waiting).toBe(false);
    expect(h.reg(A0)).toBe(7); // MIE clear: no trap, execution continues after wfi
  });

  it('stops after the current step when requested from MMIO', () => {
    const h = createHarness();
    const bus = h.bus;
    const original = bus.writeMmio.bind(bus);
    (bus as { writeMmio: typeof bus.writeMmio }).writeMmio = (address, width, value) => {
      h.cpu.requestStop();
      return original(address, width, value);
    };
    h.code(BASE, [...A.li(T0, MMIO_BASE), A.sw(T0, T0, 0), A.addi(A0, 0, 1)]);
    h.cpu.reset(BASE, 0, 0);
    expect(h.cpu.run(100)).toEqual({ steps: 3, reason: 'stop' });
    expect(h.reg(A0)).toBe(0);
    expect(h.mmioWrites).toHaveLength(1);
  });
});

describe('LR/SC and AMOs', () => {
  it('succeeds SC after LR on the same address and fails without a reservation', () => {
    const data = BASE + 0x3000;
    const h = runMachine([
      ...A.li(T0, data),
      A.addi(T1, 0, 9),
      A.scW(A0, T0, T1), // no reservation: fails (1)
      A.lrW(A1, T0),
      A.scW(A2, T0, T1), // succeeds (0)
      A.scW(13, T0, T1), // reservation consumed: fails
      A.lrW(14, T0),
      A.addi(15, T0, 4),
      A.scW(16, 15, T1), // another address: fails
    ]);
    expect(h.reg(A0)).toBe(1);
    expect(h.reg(A2)).toBe(0);
    expect(h.reg(13)).toBe(1);
    expect(h.reg(16)).toBe(1);
    expect(h.read32(data)).toBe(9);
    expect(h.read32(data + 4)).toBe(0);
  });

  it('fails SC when the reserved word changed (as QEMU compares the value)', () => {
    const data = BASE + 0x3000;
    const h = runMachine([
      ...A.li(T0, data),
      A.lrW(A1, T0),
      A.addi(T1, 0, 3),
      A.sw(T1, T0, 0),
      A.scW(A0, T0, T1),
    ]);
    expect(h.reg(A0)).toBe(1);
  });

  it('computes every AMO and returns the old value', () => {
    const data = BASE + 0x3000;
    const cases: [(rd: number, rs1: number, rs2: number) => number, number, number, number][] = [
      [A.amoswapW, 5, -2, -2],
      [A.amoaddW, 5, -2, 3],
      [A.amoxorW, 5, 3, 6],
      [A.amoandW, 5, 3, 1],
      [A.amoorW, 5, 3, 7],
      [A.amominW, 5, -2, -2],
      [A.amomaxW, 5, -2, 5],
      [A.amominuW, 5, -2, 5],
      [A.amomaxuW, 5, -2, -2],
    ];
    for (const [encode, initial, operand, expected] of cases) {
      const h = runMachine([
        ...A.li(T0, data),
        A.addi(T1, 0, initial),
        A.sw(T1, T0, 0),
        A.addi(T2, 0, operand),
        encode(A0, T0, T2),
      ]);
      expect(h.reg(A0)).toBe(initial);
      expect(h.read32(data) | 0).toBe(expected);
    }
  });
});

describe('Sv32 paging', () => {
  const ROOT = 0x80200000;
  const LEAF_TABLE = 0x80201000;
  const VIRTUAL_CODE = 0x40000000;
  const VIRTUAL_DATA = 0x40400000;
  const DATA_PAGE = 0x80300000;
  const pte = (physical: number, flags: number) => ((physical >>> 12) << 10) | flags;
  const V = 1;
  const R = 2;
  const W = 4;
  const X = 8;
  const U = 16;
  const AD = 64 | 128;

  /** S-or-U mode code at VIRTUAL_CODE (physical TARGET) accessing VIRTUAL_DATA mapped with `dataFlags`. */
  function paged(
    privilege: number,
    body: number[],
    dataFlags: number,
    options: { mstatus?: number; codeUser?: boolean } = {},
  ) {
    const h = createHarness();
    const codeFlags = V | R | X | AD | ((options.codeUser ?? privilege === 0) ? U : 0);
    // Root: VIRTUAL_CODE → leaf table (4 KiB pages); VIRTUAL_DATA → 4 MiB superpage? No: leaf table too.
    h.write32(ROOT + (VIRTUAL_CODE >>> 22) * 4, pte(LEAF_TABLE, V));
    h.write32(LEAF_TABLE, pte(TARGET, codeFlags));
    h.write32(ROOT + (VIRTUAL_DATA >>> 22) * 4, pte(LEAF_TABLE + 0x1000, V));
    h.write32(LEAF_TABLE + 0x1000, pte(DATA_PAGE, dataFlags));
    h.code(BASE, [
      ...installHandler(),
      ...A.li(T0, (1 << 31) | (ROOT >>> 12)),
      A.csrrw(0, SATP, T0),
      ...enterMode(privilege, VIRTUAL_CODE, options.mstatus ?? 0),
    ]);
    h.code(TARGET, [...A.li(T1, VIRTUAL_DATA), ...body, A.jal(0, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(HANDLER, 200);
    return h;
  }

  it('translates loads and stores and sets A and D', () => {
    const h = paged(1, [A.addi(A0, 0, 77), A.sw(A0, T1, 8), A.lw(A1, T1, 8)], V | R | W);
    expect(h.read32(DATA_PAGE + 8)).toBe(77);
    expect(h.cpu.readCsr(MCAUSE)).toBe(0); // ended in `j .`, no trap
    expect(h.read32(LEAF_TABLE + 0x1000) & AD).toBe(AD);
  });

  it('faults a store to a read-only page with cause 15 and the address in stval', () => {
    const h = paged(1, [A.sw(A0, T1, 12)], V | R | AD);
    expect(h.cpu.readCsr(MCAUSE)).toBe(15);
    expect(h.cpu.readCsr(MTVAL)).toBe(VIRTUAL_DATA + 12);
  });

  it('faults S-mode access to user pages unless SUM, and never lets S execute user pages', () => {
    expect(paged(1, [A.lw(A0, T1, 0)], V | R | U | AD).cpu.readCsr(MCAUSE)).toBe(13);
    expect(
      paged(1, [A.lw(A0, T1, 0), A.jal(0, 0)], V | R | U | AD, { mstatus: 1 << 18 }).cpu.readCsr(MCAUSE),
    ).toBe(0);
    const fetch = paged(1, [], V | R | AD, { codeUser: true });
    expect(fetch.cpu.readCsr(MCAUSE)).toBe(12);
    expect(fetch.cpu.readCsr(MTVAL)).toBe(VIRTUAL_CODE);
  });

  it('faults U-mode access to supervisor pages', () => {
    expect(paged(0, [A.lw(A0, T1, 0)], V | R | AD).cpu.readCsr(MCAUSE)).toBe(13);
  });

  it('lets MXR read execute-only pages', () => {
    expect(paged(1, [A.lw(A0, T1, 0)], V | X | AD).cpu.readCsr(MCAUSE)).toBe(13);
    expect(paged(1, [A.lw(A0, T1, 0)], V | X | AD, { mstatus: 1 << 19 }).cpu.readCsr(MCAUSE)).toBe(0);
  });

  it('treats W without R as reserved (page fault)', () => {
    expect(paged(1, [A.lw(A0, T1, 0)], V | W | AD).cpu.readCsr(MCAUSE)).toBe(13);
  });

  it('maps 4 MiB superpages and faults misaligned ones', () => {
    const h = createHarness();
    h.write32(ROOT + (VIRTUAL_DATA >>> 22) * 4, pte(0x80400000, V | R | W | AD));
    h.write32(ROOT + (0x40800000 >>> 22) * 4, pte(0x80401000, V | R | W | AD)); // misaligned
    h.write32(0x80400000 + 0x1234, 0xabcd);
    h.code(BASE, [
      ...installHandler(),
      ...A.li(T0, (1 << 31) | (ROOT >>> 12)),
      A.csrrw(0, SATP, T0),
      A.addi(T0, 0, -1),
      A.csrrw(0, 0x3b0, T0),
      A.addi(T0, 0, 0x1f),
      A.csrrw(0, 0x3a0, T0), // PMP: S may access everything
      ...A.li(T0, (1 << 17) | (1 << 11)), // MPRV, MPP = S: M-mode loads translate as S
      A.csrrw(0, MSTATUS, T0),
      ...A.li(T1, VIRTUAL_DATA + 0x1234),
      A.lw(A0, T1, 0),
      ...A.li(T1, 0x40800000),
      A.lw(A1, T1, 0),
    ]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(HANDLER, 100);
    expect(h.reg(A0)).toBe(0xabcd);
    expect(h.cpu.readCsr(MCAUSE)).toBe(13);
    expect(h.cpu.readCsr(MTVAL)).toBe(0x40800000);
  });

  it('faults invalid entries in U mode and delegates page faults to S mode', () => {
    const h = createHarness();
    h.code(BASE, [
      ...installHandler(),
      ...A.li(T0, 1 << 13),
      A.csrrw(0, MEDELEG, T0),
      ...A.li(T0, HANDLER),
      A.csrrw(0, STVEC, T0),
      ...A.li(T0, (1 << 31) | (ROOT >>> 12)),
      A.csrrw(0, SATP, T0),
      ...enterMode(0, VIRTUAL_CODE),
    ]);
    h.write32(ROOT + (VIRTUAL_CODE >>> 22) * 4, pte(LEAF_TABLE, V));
    h.write32(LEAF_TABLE, pte(TARGET, V | R | X | U | AD));
    h.code(TARGET, [...A.li(T1, 0x7000_0000), A.lw(A0, T1, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(HANDLER, 200);
    expect(h.cpu.readCsr(SCAUSE)).toBe(13);
    expect(h.cpu.readCsr(STVAL)).toBe(0x70000000);
    expect(h.cpu.privilegeMode).toBe(1);
  });
});

describe('PMP', () => {
  /** Runs U-mode code at TARGET after `setup` programmed PMP (entry 15 covers TARGET's page RX). */
  function pmp(setup: number[], body: number[]) {
    const h = createHarness();
    h.code(BASE, [
      ...installHandler(),
      ...A.li(T0, (TARGET >>> 2) | 0x1ff), // NAPOT 4 KiB at TARGET
      A.csrrw(0, 0x3bf, T0),
      ...A.li(T0, 0x1d << 24), // entry 15: NAPOT | R | X
      A.csrrw(0, 0x3a3, T0),
      ...setup,
      ...A.li(T0, TARGET),
      A.csrrw(0, MEPC, T0),
      A.csrrw(0, MSTATUS, 0),
      A.mret(),
    ]);
    h.code(TARGET, [...body, A.jal(0, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.runUntil(HANDLER, 200);
    return h;
  }
  const DATA = 0x80300000;

  it('denies U mode everything no entry allows', () => {
    const h = pmp([], [...A.li(T1, DATA), A.lw(A0, T1, 0)]);
    expect(h.cpu.readCsr(MCAUSE)).toBe(5);
    expect(h.cpu.readCsr(MTVAL)).toBe(DATA);
  });

  it('matches TOR ranges', () => {
    const setup = [
      ...A.li(T0, DATA >>> 2),
      A.csrrw(0, 0x3b0, T0),
      ...A.li(T0, (DATA + 0x100) >>> 2),
      A.csrrw(0, 0x3b1, T0),
      ...A.li(T0, 0x0b << 8), // entry 1: TOR | R | W... 0x08 TOR + R(1) + W(2)
      A.csrrw(0, 0x3a0, T0),
    ];
    expect(pmp(setup, [...A.li(T1, DATA), A.sw(A0, T1, 0xfc)]).cpu.readCsr(MCAUSE)).toBe(0);
    const outside = pmp(setup, [...A.li(T1, DATA), A.sw(A0, T1, 0x100)]);
    expect(outside.cpu.readCsr(MCAUSE)).toBe(7);
    // A word straddling the top of the range matches only partly: denied.
    expect(pmp(setup, [...A.li(T1, DATA), A.sw(A0, T1, 0xfe)]).cpu.readCsr(MCAUSE)).toBe(7);
  });

  it('matches NA4 and NAPOT regions with their permissions', () => {
    const na4 = [
      ...A.li(T0, (DATA + 8) >>> 2),
      A.csrrw(0, 0x3b0, T0),
      A.addi(T0, 0, 0x11),
      A.csrrw(0, 0x3a0, T0),
    ];
    expect(pmp(na4, [...A.li(T1, DATA), A.lw(A0, T1, 8)]).cpu.readCsr(MCAUSE)).toBe(0);
    expect(pmp(na4, [...A.li(T1, DATA), A.lw(A0, T1, 12)]).cpu.readCsr(MCAUSE)).toBe(5);
    expect(pmp(na4, [...A.li(T1, DATA), A.sw(A0, T1, 8)]).cpu.readCsr(MCAUSE)).toBe(7);
    const napot = [
      ...A.li(T0, (DATA >>> 2) | 0x3ff),
      A.csrrw(0, 0x3b0, T0),
      A.addi(T0, 0, 0x1b),
      A.csrrw(0, 0x3a0, T0),
    ];
    expect(pmp(napot, [...A.li(T1, DATA + 0x1ffc), A.sw(A0, T1, 0)]).cpu.readCsr(MCAUSE)).toBe(0);
    expect(pmp(napot, [...A.li(T1, DATA + 0x2000), A.sw(A0, T1, 0)]).cpu.readCsr(MCAUSE)).toBe(7);
  });

  it('holds M mode to locked entries and ignores writes to locked entries', () => {
    const h = runMachine([
      ...A.li(T0, (0x80300000 >>> 2) | 0x3ff),
      A.csrrw(0, 0x3b0, T0),
      A.addi(T0, 0, 0x99), // L | NAPOT | R
      A.csrrw(0, 0x3a0, T0),
      A.addi(T1, 0, -1),
      A.csrrw(0, 0x3b0, T1), // ignored: locked
      A.csrrw(0, 0x3a0, 0), // ignored: locked
      A.csrrs(A0, 0x3a0, 0),
      ...A.li(T1, 0x80300000),
      A.lw(A1, T1, 0), // allowed
      A.sw(A1, T1, 0), // locked, no W: denied even in M mode
    ]);
    expect(h.reg(A0) & 0xff).toBe(0x99);
    expect(h.cpu.readCsr(0x3b0)).toBe((0x80300000 >>> 2) | 0x3ff);
    expect(h.cpu.readCsr(MCAUSE)).toBe(7);
  });
});

describe('counters', () => {
  it('counts retired instructions in minstret and mcycle, not traps, and honours mcountinhibit', () => {
    const h = runMachine([A.csrrs(A0, 0xb02, 0), A.csrrs(A1, 0xb00, 0), A.ecall()]);
    expect(h.reg(A0)).toBe(3); // installHandler (3 instructions) retired before
    expect(h.reg(A1)).toBe(4);
    const inhibited = runMachine([
      A.csrrwi(0, 0x320, 5),
      A.addi(0, 0, 0),
      A.csrrs(A0, 0xb02, 0),
      A.csrrs(A1, 0xb00, 0),
    ]);
    expect(inhibited.reg(A0)).toBe(4);
    expect(inhibited.reg(A1)).toBe(4);
  });

  it('makes a written counter value the one the next instruction reads', () => {
    const h = runMachine([
      ...A.li(T0, -2),
      A.csrrw(0, 0xb02, T0),
      A.csrrs(A0, 0xb02, 0),
      A.csrrs(A1, 0xb82, 0),
      A.csrrs(A2, 0xb02, 0),
      A.csrrs(13, 0xb82, 0),
    ]);
    expect(h.reg(A0)).toBe(-2);
    expect(h.reg(A1)).toBe(0);
    expect(h.reg(A2)).toBe(0); // wrapped
    expect(h.reg(13)).toBe(1);
  });

  it('reads time through readTime and traps without it', () => {
    const h = createHarness({ readTime: () => 0x1_2345_6789 });
    h.code(BASE, [A.csrrs(A0, 0xc01, 0), A.csrrs(A1, 0xc81, 0)]);
    h.cpu.reset(BASE, 0, 0);
    h.cpu.run(2);
    expect(h.reg(A0)).toBe(0x23456789);
    expect(h.reg(A1)).toBe(1);
  });
});

describe('code caches', () => {
  it('sees stores into code without fence.i (self-modifying code)', () => {
    const h = createHarness();
    const patched = BASE + 0x20;
    h.code(BASE, [
      ...A.li(T0, patched),
      ...A.li(T1, A.addi(A0, 0, 2)),
      A.jal(0, 0x20 - 0x10), // run the old instruction first, so it is decoded
    ]);
    h.code(patched, [A.addi(A0, 0, 1), A.jal(0, 8), A.addi(0, 0, 0), A.sw(T1, T0, 0), A.jal(0, -16)]);
    // Flow: li, li, j patched → addi a0,1 → j patched+12 → sw (patch) → j patched → addi a0,2
    h.cpu.reset(BASE, 0, 0);
    h.cpu.run(6);
    expect(h.reg(A0)).toBe(1);
    h.cpu.run(4);
    expect(h.reg(A0)).toBe(2);
  });

  it('sees a store into the compiled block that is running', () => {
    for (const compileBlocks of [true, false]) {
      const h = createHarness({ compileBlocks });
      const increment = BASE + 40 + 28; // after five `li` and seven loop instructions
      h.code(BASE, [
        ...A.li(A2, 100), // iterations
        ...A.li(28, 50), // t3: patch when a2 == 50
        ...A.li(T1, A.addi(A0, A0, 2)),
        ...A.li(T2, BASE + 0x800), // harmless data in the same page
        ...A.li(29, increment), // t4 = x29
        // loop: t0 = a2 == t3 ? increment : data, branch-free so it stays one block
        A.sub(30, A2, 28),
        A.sltiu(30, 30, 1),
        A.sub(31, 0, 30),
        A.xor(18, T2, 29),
        A.and(18, 18, 31),
        A.xor(T0, T2, 18),
        A.sw(T1, T0, 0),
        A.addi(A0, A0, 1), // increment: patched in the 51st iteration
        A.addi(A2, A2, -1),
        A.bne(A2, 0, -36),
        A.jal(0, 0),
      ]);
      h.cpu.reset(BASE, 0, 0);
      h.cpu.run(10 + 100 * 10);
      expect(h.cpu.pc).toBe(increment + 12);
      expect(h.reg(A0)).toBe(50 + 2 * 50);
      if (compileBlocks) expect(h.cpu.compiledBlocks).toBeGreaterThan(0);
    }
  });

  it('marks stored pages dirty, again after the machine clears them', () => {
    const h = runMachine([...A.li(T0, BASE + 0x5000), A.sw(T0, T0, 0), A.sw(T0, T0, 4)]);
    const dirty = h.bus.ramRegion.dirtyPages;
    expect(dirty[5]).toBe(1);
    dirty.fill(0);
    h.cpu.invalidateMemoryCaches();
    h.code(BASE + 0x100, [A.sw(T0, T0, 8)]);
    dirty.fill(0);
    h.cpu.reset(BASE + 0x100, 0, 0);
    h.cpu.setRegister(T0, BASE + 0x5000);
    h.cpu.run(1);
    expect(dirty[5]).toBe(1);
  });
});

describe('cache invalidation for the machine', () => {
  it('drops decoded code of a range written behind its back', () => {
    const h = createHarness();
    const program = [...A.li(A0, 0), A.addi(A0, A0, 1), A.jal(0, -4)];
    h.code(BASE, program);
    h.cpu.reset(BASE, 0, 0);
    h.cpu.run(200); // hot: decoded and compiled
    const before = h.reg(A0);
    // Rewrite `addi a0, a0, 1` as `addi a0, a0, 3` without telling the CPU about all of memory.
    new DataView(h.bus.ramRegion.bytes.buffer).setUint32(8, A.addi(A0, A0, 3), true);
    h.cpu.invalidateMemoryRange(BASE + 8, 4);
    h.cpu.run(20);
    expect(h.reg(A0) - before).toBe(30);
  });

  it('marks pages dirty again after resetDirtyTracking', () => {
    const h = createHarness();
    h.code(BASE, [...A.li(T0, BASE + 0x6000), A.sw(T0, T0, 0), A.jal(0, -4)]);
    h.cpu.reset(BASE, 0, 0);
    h.cpu.run(20);
    const dirty = h.bus.ramRegion.dirtyPages;
    expect(dirty[6]).toBe(1);
    dirty.fill(0);
    h.cpu.resetDirtyTracking();
    h.cpu.run(2);
    expect(dirty[6]).toBe(1);
  });
});

describe('snapshots', () => {
  it('restores a saved state exactly and continues identically', () => {
    const program = [...installHandler(), A.addi(A0, A0, 1), A.csrrs(A1, 0xb02, 0), A.ecall(), A.jal(0, -12)];
    const a = createHarness();
    a.code(BASE, program);
    a.cpu.reset(BASE, 0, 0);
    a.code(HANDLER, [A.csrrs(T0, MEPC, 0), A.addi(T0, T0, 4), A.csrrw(0, MEPC, T0), A.mret()]);
    a.cpu.reset(BASE, 0, 0);
    a.cpu.run(37);
    const saved = a.cpu.saveState();
    const b = createHarness();
    b.code(BASE, program);
    b.code(HANDLER, [A.csrrs(T0, MEPC, 0), A.addi(T0, T0, 4), A.csrrw(0, MEPC, T0), A.mret()]);
    b.cpu.restoreState(structuredClone(saved));
    a.cpu.run(100);
    b.cpu.run(100);
    expect(b.cpu.saveState()).toEqual(a.cpu.saveState());
  });

  it('refuses bad sections with SnapshotError', () => {
    const h = createHarness();
    const saved = h.cpu.saveState();
    expect(() => h.cpu.restoreState({ ...saved, kind: 'other' })).toThrow(SnapshotError);
    expect(() => h.cpu.restoreState({ ...saved, version: 2 })).toThrow(SnapshotError);
    expect(() => h.cpu.restoreState({ ...saved, state: { ...(saved.state as object), x: [1, 2] } })).toThrow(
      SnapshotError,
    );
    expect(() => h.cpu.restoreState({ ...saved, state: null })).toThrow(SnapshotError);
  });
});
