/*
 * ftvm-sbi's assembly: the reset entry, the trap vector, the jump into the kernel, and a load
 * that survives a fault.
 *
 * mscratch tells the trap vector where a trap came from: it holds the top of the firmware's
 * stack while the hart runs in S- or U-mode, and 0 while the firmware itself runs. Swapping it
 * with sp on entry finds the stack without touching any other register.
 */
#include "firmware.h"

  .section .text.entry, "ax"
  .globl _start
_start:
  /* From the reset ROM: a0 = hart id, a1 = device tree, a2 = fw_dynamic_info; kept for boot(). */
  csrw mie, zero
  csrw mscratch, zero
  la t0, trap_vector
  csrw mtvec, t0
  la sp, trap_stack_top
  /* A reboot (0x7777 to the test finisher) leaves RAM as it was, so .bss is cleared here. */
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  call boot
  unimp /* boot() does not return; if it did, this traps into the diagnosis */

  .text
  .align 2
  .globl trap_vector
trap_vector:
  csrrw sp, mscratch, sp
  beqz sp, trap_in_firmware
  addi sp, sp, -FRAME_BYTES
  sw ra, FRAME_RA(sp)
  sw t0, FRAME_T0(sp)
  sw t1, FRAME_T1(sp)
  sw t2, FRAME_T2(sp)
  sw a0, FRAME_A0(sp)
  sw a1, FRAME_A1(sp)
  sw a2, FRAME_A2(sp)
  sw a3, FRAME_A3(sp)
  sw a4, FRAME_A4(sp)
  sw a5, FRAME_A5(sp)
  sw a6, FRAME_A6(sp)
  sw a7, FRAME_A7(sp)
  sw t3, FRAME_T3(sp)
  sw t4, FRAME_T4(sp)
  sw t5, FRAME_T5(sp)
  sw t6, FRAME_T6(sp)
  csrrw t0, mscratch, zero /* the interrupted sp; the firmware runs from here on */
  sw t0, FRAME_SP(sp)

  mv a0, sp
  call handle_trap

  addi t0, sp, FRAME_BYTES
  csrw mscratch, t0
  lw ra, FRAME_RA(sp)
  lw t0, FRAME_T0(sp)
  lw t1, FRAME_T1(sp)
  lw t2, FRAME_T2(sp)
  lw a0, FRAME_A0(sp)
  lw a1, FRAME_A1(sp)
  lw a2, FRAME_A2(sp)
  lw a3, FRAME_A3(sp)
  lw a4, FRAME_A4(sp)
  lw a5, FRAME_A5(sp)
  lw a6, FRAME_A6(sp)
  lw a7, FRAME_A7(sp)
  lw t3, FRAME_T3(sp)
  lw t4, FRAME_T4(sp)
  lw t5, FRAME_T5(sp)
  lw t6, FRAME_T6(sp)
  lw sp, FRAME_SP(sp)
  mret

trap_in_firmware:
  /*
   * The firmware trapped itself: a bug, or a fault on a path it did not guard. Diagnose on a stack
   * of its own (the firmware's may be what went wrong), with mscratch back at 0 so that a fault
   * in the diagnosis comes here again.
   */
  csrw mscratch, zero
  la sp, fatal_stack_top
  call machine_mode_trap
  unimp

/*
 * void enter_supervisor(unsigned long hart_id, unsigned long device_tree, unsigned long entry)
 * Starts the kernel: mret to entry in the mode mstatus.MPP names, with a0 = hart id and a1 = the
 * device tree, as Linux's boot protocol wants them. The firmware's stack starts afresh at the
 * next trap.
 */
  .globl enter_supervisor
enter_supervisor:
  csrw mepc, a2
  la t0, trap_stack_top
  csrw mscratch, t0
  li a2, 0
  li t0, 0
  mret

/*
 * long read_word(unsigned long address, unsigned long *value, unsigned long mstatus_bits)
 * Loads the word at address into *value and returns 0, or returns -1 when the load faults. The
 * fault goes to a handler of this routine's own, which puts back every CSR the trap changed.
 * mstatus_bits are set in mstatus for the load alone: MSTATUS_MPRV loads as the interrupted mode
 * would, with its address translation and permissions.
 */
  .globl read_word
read_word:
  csrr t0, mtvec
  csrr t1, mepc
  csrr t2, mstatus
  csrr t3, mcause
  csrr t4, mtval
  la t5, 1f
  csrw mtvec, t5
  csrs mstatus, a2
  lw t5, 0(a0)
  csrw mstatus, t2
  sw t5, 0(a1)
  li a0, 0
  j 2f
  .align 2
1:
  csrw mstatus, t2
  li a0, -1
2:
  csrw mtvec, t0
  csrw mepc, t1
  csrw mcause, t3
  csrw mtval, t4
  ret
