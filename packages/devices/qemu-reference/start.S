# Entry and trap handler of the register-script runner. A trap (an access fault the script should
# not have caused) records mcause and skips the instruction, so the recorder can report it.
.section .text.init
.globl _start
_start:
  la sp, stack_top
  la t0, trap_entry
  csrw mtvec, t0
  call main
1: j 1b

.align 4
trap_entry:
  addi sp, sp, -16
  sw t0, 0(sp)
  sw t1, 4(sp)
  sw t2, 8(sp)
  csrr t0, mcause
  la t1, trap_cause
  sw t0, 0(t1)
  csrr t0, mepc
  lhu t1, 0(t0)
  andi t1, t1, 3
  addi t0, t0, 2
  li t2, 3
  bne t1, t2, 2f
  addi t0, t0, 2
2:
  csrw mepc, t0
  lw t0, 0(sp)
  lw t1, 4(sp)
  lw t2, 8(sp)
  addi sp, sp, 16
  mret

.bss
.align 4
.globl trap_cause
trap_cause: .word 0
.space 8192
stack_top:
