# Probes every CSR number 0..0xfff in M mode: whether a read traps, and for those that exist, the
# value read, whether a write traps, and what reads back after writing all ones (0x7f7f7f7f for
# pmpcfg, so that no entry gets locked) and after writing zero. The original value is restored.
# csr-probe-report.c prints the table; the differential test compares it with QEMU.
  .section .text.start
  .globl _start
_start:
  la sp, __stack_top
  la t0, trap_handler
  csrw mtvec, t0
  la s0, table
  li t1, -1
  li t2, 0x7f7f7f7f
  .set n, 0
  .rept 4096
    li s11, 0
    csrrs a0, n, x0
    sw a0, 4(s0)
    sw s11, 0(s0)
    bnez s11, 1f
    li s11, 0
    .if (n >= 0x3a0) && (n <= 0x3af)
    csrrw a1, n, t2
    .else
    csrrw a1, n, t1
    .endif
    bnez s11, 2f
    csrrs a2, n, x0
    csrrw x0, n, x0
    csrrs a3, n, x0
    csrrw x0, n, a1
    sw a2, 8(s0)
    sw a3, 12(s0)
2:  sw s11, 16(s0)
1:
    addi s0, s0, 20
    .set n, n+1
  .endr
  call report
  li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
3: j 3b

  .align 4
trap_handler:
  csrr s10, mepc
  addi s10, s10, 4
  csrw mepc, s10
  li s11, 1
  mret

  .bss
  .align 4
  .globl table
table: .space 4096*20
