/*
 * The platform macros of riscv-arch-test (riscv-non-isa/riscv-arch-test) for ftvm's board and
 * QEMU's virt, which share the memory map: RAM at 0x80000000, a 16550 UART at 0x10000000 and
 * the SiFive test device at 0x100000. RVMODEL_HALT prints the signature (begin_signature up to
 * end_signature) out of the UART, one 32-bit word per line as eight lowercase hex digits, as the
 * suite's reference models write their signature files, then powers the board off (0x5555 to
 * the test device). scripts/riscv-arch-test.mjs compares what ftvm and QEMU print.
 */
#ifndef FTVM_MODEL_TEST_H
#define FTVM_MODEL_TEST_H

#define ALIGNMENT 2

#define RVMODEL_DATA_SECTION                                                  \
  .pushsection .tohost, "aw", @progbits;                                     \
  .align 8; .global tohost; tohost: .dword 0;                                \
  .align 8; .global fromhost; fromhost: .dword 0;                            \
  .popsection;

/*
 * t0: the word's address, t1: the end, t2: the UART, t3: the word, t4: the shift, t5/t6: a digit
 * (48 is '0'; a digit past '9', 57, moves up 39 to 'a'). Each byte waits for the transmitter to
 * be empty (line status bit 5): QEMU drops bytes written while its output is busy.
 */
#define RVMODEL_HALT                                                          \
  la t0, begin_signature; la t1, end_signature; li t2, 0x10000000;          \
  90: bgeu t0, t1, 93f; lw t3, 0(t0); li t4, 28;                            \
  91: srl t5, t3, t4; andi t5, t5, 15; addi t5, t5, 48; li t6, 58;     \
  blt t5, t6, 92f; addi t5, t5, 39;                              \
  92: lbu t6, 5(t2); andi t6, t6, 0x20; beqz t6, 92b;                      \
  sb t5, 0(t2); addi t4, t4, -4; bgez t4, 91b;                            \
  95: lbu t6, 5(t2); andi t6, t6, 0x20; beqz t6, 95b;                       \
  li t5, 10; sb t5, 0(t2); addi t0, t0, 4; j 90b;                         \
  93: li t0, 0x100000; li t1, 0x5555; sw t1, 0(t0);                         \
  94: j 94b;

#define RVMODEL_BOOT

#define RVMODEL_DATA_BEGIN                                                    \
  RVMODEL_DATA_SECTION                                                        \
  .align 4; .global begin_signature; begin_signature:

#define RVMODEL_DATA_END                                                      \
  .align 4; .global end_signature; end_signature:

/* No console output or assertions beyond the signature; no interrupts to raise or clear. */
#define RVMODEL_IO_INIT
#define RVMODEL_IO_WRITE_STR(_R, _STR)
#define RVMODEL_IO_CHECK()
#define RVMODEL_IO_ASSERT_GPR_EQ(_S, _R, _I)
#define RVMODEL_IO_ASSERT_SFPR_EQ(_F, _R, _I)
#define RVMODEL_IO_ASSERT_DFPR_EQ(_D, _R, _I)
#define RVMODEL_SET_MSW_INT
#define RVMODEL_CLEAR_MSW_INT
#define RVMODEL_CLEAR_MTIMER_INT
#define RVMODEL_CLEAR_MEXT_INT

#endif
