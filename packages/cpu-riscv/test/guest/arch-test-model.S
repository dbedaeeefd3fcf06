/*
 * Checks the riscv-arch-test platform macros of scripts/riscv-arch-test (model_test.h, link.ld)
 * without the suite: fills a signature with values computed at run time (every hex digit
 * appears, and a word the halt loop must not skip sits at each end), then halts the way every
 * architectural test does. The test compares what ftvm and QEMU print.
 */
#include "../../../../scripts/riscv-arch-test/model_test.h"

  .section .text.init
  .globl rvtest_entry_point
rvtest_entry_point:
  la a0, begin_signature
  li a1, 0x01234567
  sw a1, 0(a0)
  li a2, 0x89abcdef
  sw a2, 4(a0)
  /* 40 words of a running product: enough output to fill the UART's path a few times over. */
  li t0, 40
  addi a3, a0, 8
  li a4, 0x9e3779b9
1:
  mul a1, a1, a4
  addi a1, a1, 1
  sw a1, 0(a3)
  addi a3, a3, 4
  addi t0, t0, -1
  bnez t0, 1b
  li a1, -1
  sw a1, 0(a3)
  RVMODEL_HALT

  .data
  RVMODEL_DATA_BEGIN
  .fill 44, 4, 0xdeadbeef  /* 44: a multiple of the 16-byte alignment RVMODEL_DATA_END adds */
  RVMODEL_DATA_END
