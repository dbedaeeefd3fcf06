/**
 * Architectural constants: CSR numbers, status and interrupt bits, exception causes and privilege
 * levels (RISC-V privileged spec 1.12).
 */

export const CSR_SSTATUS = 0x100;
export const CSR_SIE = 0x104;
export const CSR_STVEC = 0x105;
export const CSR_SCOUNTEREN = 0x106;
export const CSR_SENVCFG = 0x10a;
export const CSR_SSCRATCH = 0x140;
export const CSR_SEPC = 0x141;
export const CSR_SCAUSE = 0x142;
export const CSR_STVAL = 0x143;
export const CSR_SIP = 0x144;
export const CSR_SATP = 0x180;

export const CSR_MSTATUS = 0x300;
export const CSR_MISA = 0x301;
export const CSR_MEDELEG = 0x302;
export const CSR_MIDELEG = 0x303;
export const CSR_MIE = 0x304;
export const CSR_MTVEC = 0x305;
export const CSR_MCOUNTEREN = 0x306;
export const CSR_MENVCFG = 0x30a;
export const CSR_MSTATUSH = 0x310;
export const CSR_MENVCFGH = 0x31a;
export const CSR_MCOUNTINHIBIT = 0x320;
export const CSR_MHPMEVENT3 = 0x323;
export const CSR_MHPMEVENT31 = 0x33f;
export const CSR_MSCRATCH = 0x340;
export const CSR_MEPC = 0x341;
export const CSR_MCAUSE = 0x342;
export const CSR_MTVAL = 0x343;
export const CSR_MIP = 0x344;
export const CSR_PMPCFG0 = 0x3a0;
export const CSR_PMPADDR0 = 0x3b0;

export const CSR_TSELECT = 0x7a0;
export const CSR_TDATA1 = 0x7a1;
export const CSR_TDATA2 = 0x7a2;
export const CSR_TDATA3 = 0x7a3;
export const CSR_TINFO = 0x7a4;

export const CSR_MCYCLE = 0xb00;
export const CSR_MINSTRET = 0xb02;
export const CSR_MCYCLEH = 0xb80;
export const CSR_MINSTRETH = 0xb82;
export const CSR_CYCLE = 0xc00;
export const CSR_TIME = 0xc01;
export const CSR_INSTRET = 0xc02;
export const CSR_CYCLEH = 0xc80;
export const CSR_TIMEH = 0xc81;
export const CSR_INSTRETH = 0xc82;

export const CSR_MVENDORID = 0xf11;
export const CSR_MARCHID = 0xf12;
export const CSR_MIMPID = 0xf13;
export const CSR_MHARTID = 0xf14;
export const CSR_MCONFIGPTR = 0xf15;

/** The hpmcounters QEMU 7.2 has by default (pmu-num=16): 3..18. */
export const HPM_COUNTER_FIRST = 3;
export const HPM_COUNTER_LAST = 18;

// mstatus bits
export const MSTATUS_SIE = 1 << 1;
export const MSTATUS_MIE = 1 << 3;
export const MSTATUS_SPIE = 1 << 5;
export const MSTATUS_MPIE = 1 << 7;
export const MSTATUS_SPP = 1 << 8;
export const MSTATUS_VS = 3 << 9;
export const MSTATUS_MPP_SHIFT = 11;
export const MSTATUS_MPP = 3 << 11;
export const MSTATUS_MPRV = 1 << 17;
export const MSTATUS_SUM = 1 << 18;
export const MSTATUS_MXR = 1 << 19;
export const MSTATUS_TVM = 1 << 20;
export const MSTATUS_TW = 1 << 21;
export const MSTATUS_TSR = 1 << 22;
export const MSTATUS_SD = 1 << 31;
/** The bits of mstatus a write changes (as QEMU 7.2 with this CPU: no F, VS writable). */
export const MSTATUS_WRITABLE = 0x007e1faa;
/** The view of mstatus that sstatus gives (SD read-only). */
export const SSTATUS_MASK = 0x800c0722 | 0;
export const SSTATUS_WRITABLE = 0x000c0722;

// interrupt bits of mip/mie
export const IRQ_SSI = 1;
export const IRQ_MSI = 3;
export const IRQ_STI = 5;
export const IRQ_MTI = 7;
export const IRQ_SEI = 9;
export const IRQ_MEI = 11;
export const IRQ_LCOFI = 13;
export const MIP_SSIP = 1 << IRQ_SSI;
export const MIP_MSIP = 1 << IRQ_MSI;
export const MIP_STIP = 1 << IRQ_STI;
export const MIP_MTIP = 1 << IRQ_MTI;
export const MIP_SEIP = 1 << IRQ_SEI;
export const MIP_MEIP = 1 << IRQ_MEI;
/** mip bits software may write (QEMU 7.2 masks; includes the VS* and LCOFIP bits it keeps). */
export const MIP_WRITABLE = 0x2666;
export const MIE_WRITABLE = 0x2eee;
export const MIDELEG_WRITABLE = 0x2666;
export const MEDELEG_WRITABLE = 0x00f0bfff;
/** Interrupt bits visible through sie/sip. */
export const S_INTERRUPTS = MIP_SSIP | MIP_STIP | MIP_SEIP;

export const MISA_VALUE = 0x40141105;

// exception causes
export const CAUSE_FETCH_MISALIGNED = 0;
export const CAUSE_FETCH_ACCESS = 1;
export const CAUSE_ILLEGAL_INSTRUCTION = 2;
export const CAUSE_BREAKPOINT = 3;
export const CAUSE_LOAD_MISALIGNED = 4;
export const CAUSE_LOAD_ACCESS = 5;
export const CAUSE_STORE_MISALIGNED = 6;
export const CAUSE_STORE_ACCESS = 7;
export const CAUSE_ECALL_FROM_U = 8;
export const CAUSE_FETCH_PAGE_FAULT = 12;
export const CAUSE_LOAD_PAGE_FAULT = 13;
export const CAUSE_STORE_PAGE_FAULT = 15;

export const PRIVILEGE_USER = 0;
export const PRIVILEGE_SUPERVISOR = 1;
export const PRIVILEGE_MACHINE = 3;
