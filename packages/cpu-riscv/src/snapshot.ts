/**
 * Snapshots of the hart: its architectural state (registers, pc, privilege, icount, CSRs and
 * counters, PMP, the LR reservation, the interrupt lines) as a plain `riscv-cpu` state section,
 * and back. Decoded code, compiled blocks and TLBs are caches, rebuilt after a restore, so they
 * are not saved.
 *
 * Cold code, apart from cpu.ts and its hot loop; it reaches the hart through SnapshotHost. The
 * section's keys, their order and their values are the snapshot format: keep them stable.
 */

import type { PlainValue, StateSection } from '@ftvm/core';
import { SnapshotError } from '@ftvm/core';
import type { Reservation } from './atomics.js';
import type { CounterState } from './counter.js';
import type { CsrFile } from './csr.js';
import { type PhysicalMemoryProtection, PMP_ENTRIES } from './pmp.js';

const STATE_KIND = 'riscv-cpu';
const STATE_VERSION = 1;
const TWO_POW_32 = 0x1_0000_0000;

/** Names of the plain CSR fields saved in a snapshot, in a fixed order. */
const SAVED_CSR_NAMES = [
  'mstatus',
  'mstatush',
  'medeleg',
  'mideleg',
  'mie',
  'mipSoftware',
  'mtvec',
  'mcounteren',
  'mcountinhibit',
  'menvcfg',
  'menvcfgh',
  'mscratch',
  'mepc',
  'mcause',
  'mtval',
  'stvec',
  'scounteren',
  'senvcfg',
  'sscratch',
  'sepc',
  'scause',
  'stval',
  'satp',
  'tselect',
] as const;
type SavedCsrName = (typeof SAVED_CSR_NAMES)[number];

/**
 * What a snapshot saves and restores of the hart: RiscvCpu's private members of these names,
 * through a cast (cpu.ts's `hart`), as the block compiler reaches BlockHost.
 */
export interface SnapshotHost {
  readonly x: Int32Array;
  pcValue: number;
  privilege: number;
  icountValue: number;
  trapCount: number;
  waitingForInterrupt: boolean;
  mipLines: number;
  readonly csrs: CsrFile;
  readonly reservation: Reservation;
  readonly pmp: PhysicalMemoryProtection;
}

/** The hart's architectural state as a section. */
export function saveHartState(hart: SnapshotHost): StateSection {
  const csrs: Record<string, PlainValue> = {};
  for (const name of SAVED_CSR_NAMES) csrs[name] = (hart.csrs[name] as number) >>> 0;
  const state: { [key: string]: PlainValue } = {
    x: Array.from(hart.x, (value) => value >>> 0),
    pc: hart.pcValue >>> 0,
    privilege: hart.privilege,
    icount: hart.icountValue,
    trapCount: hart.trapCount,
    waiting: hart.waitingForInterrupt,
    reservation: {
      valid: hart.reservation.valid,
      address: hart.reservation.address >>> 0,
      value: hart.reservation.value >>> 0,
    },
    mipLines: hart.mipLines >>> 0,
    csrs,
    tdata2: Array.from(hart.csrs.tdata2, (value) => value >>> 0),
    mhpmcounter: Array.from(hart.csrs.mhpmcounter),
    mhpmcounterh: Array.from(hart.csrs.mhpmcounterh),
    mhpmevent: Array.from(hart.csrs.mhpmevent),
    cycle: { ...hart.csrs.cycleCounter },
    instret: { ...hart.csrs.instretCounter },
    pmpConfig: Array.from(hart.pmp.config),
    pmpAddress: Array.from(hart.pmp.address),
  };
  return { kind: STATE_KIND, version: STATE_VERSION, state };
}

/**
 * Loads a section saved by saveHartState into the hart, or throws SnapshotError, having changed
 * nothing, when it is not a valid one. The caller rebuilds what derives from the state.
 */
export function restoreHartState(hart: SnapshotHost, section: StateSection): void {
  if (section.kind !== STATE_KIND)
    throw new SnapshotError(`expected a ${STATE_KIND} section, got ${section.kind}`);
  if (section.version !== STATE_VERSION) {
    throw new SnapshotError(`${STATE_KIND} state version ${section.version} is not supported`);
  }
  const state = readRecord(section.state, 'state');
  const x = readNumberArray(state.x, 'x', 32, TWO_POW_32);
  const pc = readInteger(state.pc, 'pc', TWO_POW_32);
  const privilege = readInteger(state.privilege, 'privilege', 4);
  if (privilege === 2) throw new SnapshotError('riscv-cpu state: privilege 2 does not exist');
  const icount = readInteger(state.icount, 'icount', 2 ** 53);
  const trapCount = readInteger(state.trapCount, 'trapCount', icount + 1);
  const waiting = readBoolean(state.waiting, 'waiting');
  const reservation = readRecord(state.reservation, 'reservation');
  const reservationValid = readBoolean(reservation.valid, 'reservation.valid');
  const reservationAddress = readInteger(reservation.address, 'reservation.address', TWO_POW_32);
  const reservationValue = readInteger(reservation.value, 'reservation.value', TWO_POW_32);
  const mipLines = readInteger(state.mipLines, 'mipLines', TWO_POW_32);
  const csrRecord = readRecord(state.csrs, 'csrs');
  const csrValues = SAVED_CSR_NAMES.map((name) => readInteger(csrRecord[name], `csrs.${name}`, TWO_POW_32));
  const tdata2 = readNumberArray(state.tdata2, 'tdata2', 2, TWO_POW_32);
  const mhpmcounter = readNumberArray(state.mhpmcounter, 'mhpmcounter', 32, TWO_POW_32);
  const mhpmcounterh = readNumberArray(state.mhpmcounterh, 'mhpmcounterh', 32, TWO_POW_32);
  const mhpmevent = readNumberArray(state.mhpmevent, 'mhpmevent', 32, TWO_POW_32);
  const cycle = readCounter(state.cycle, 'cycle');
  const instret = readCounter(state.instret, 'instret');
  const pmpConfig = readNumberArray(state.pmpConfig, 'pmpConfig', PMP_ENTRIES, 256);
  const pmpAddress = readNumberArray(state.pmpAddress, 'pmpAddress', PMP_ENTRIES, TWO_POW_32);
  if ((csrValues[SAVED_CSR_NAMES.indexOf('tselect')] as number) >= 2) {
    throw new SnapshotError('riscv-cpu state: tselect out of range');
  }

  // Everything is valid: apply.
  for (let i = 0; i < 32; i++) hart.x[i] = x[i] as number;
  hart.x[0] = 0;
  hart.pcValue = pc & ~1;
  hart.privilege = privilege;
  hart.icountValue = icount;
  hart.trapCount = trapCount;
  hart.waitingForInterrupt = waiting;
  hart.reservation.valid = reservationValid;
  hart.reservation.address = reservationAddress | 0;
  hart.reservation.value = reservationValue | 0;
  hart.mipLines = mipLines | 0;
  SAVED_CSR_NAMES.forEach((name: SavedCsrName, index) => {
    hart.csrs[name] = (csrValues[index] as number) | 0;
  });
  hart.csrs.tdata2.set(tdata2);
  hart.csrs.mhpmcounter.set(mhpmcounter);
  hart.csrs.mhpmcounterh.set(mhpmcounterh);
  hart.csrs.mhpmevent.set(mhpmevent);
  Object.assign(hart.csrs.cycleCounter, cycle);
  Object.assign(hart.csrs.instretCounter, instret);
  hart.pmp.load(pmpConfig, pmpAddress);
}

function readRecord(value: unknown, name: string): { readonly [key: string]: PlainValue } {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new SnapshotError(`riscv-cpu state: ${name} is not a record`);
  }
  return value as { readonly [key: string]: PlainValue };
}

function readInteger(value: unknown, name: string, limit: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= limit) {
    throw new SnapshotError(`riscv-cpu state: ${name} is not an integer in [0, ${limit})`);
  }
  return value;
}

function readBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new SnapshotError(`riscv-cpu state: ${name} is not a boolean`);
  return value;
}

function readNumberArray(value: unknown, name: string, length: number, limit: number): number[] {
  if (!Array.isArray(value) || value.length !== length) {
    throw new SnapshotError(`riscv-cpu state: ${name} is not an array of ${length} numbers`);
  }
  return value.map((item, index) => readInteger(item, `${name}[${index}]`, limit));
}

function readCounter(value: unknown, name: string): CounterState {
  const record = readRecord(value, name);
  return {
    offsetHigh: readInteger(record.offsetHigh, `${name}.offsetHigh`, TWO_POW_32),
    offsetLow: readInteger(record.offsetLow, `${name}.offsetLow`, TWO_POW_32),
    inhibited: readBoolean(record.inhibited, `${name}.inhibited`),
  };
}
