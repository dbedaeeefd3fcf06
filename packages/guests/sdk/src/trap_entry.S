/*
 * Trap vectors for machine and supervisor mode. Both save every register into a struct
 * ftvm_trap_frame on the stack, call the mode's C dispatcher, and restore (the dispatcher may
 * change pc, status and registers).
 *
 * Stack choice: xscratch is 0 while the hart runs in that mode; when it runs in a less privileged
 * mode, xscratch holds the mode's own stack top. So a trap from the same mode stays on its stack
 * (nesting works) and a trap from below switches to the mode's stack.
 */
#define FRAME_BYTES 160
#define PC_OFFSET 128
#define CAUSE_OFFSET 132
#define VALUE_OFFSET 136
#define STATUS_OFFSET 140

.macro save_registers
  sw x1, 1*4(sp)
  sw x3, 3*4(sp)
  sw x4, 4*4(sp)
  sw x6, 6*4(sp)
  sw x7, 7*4(sp)
  sw x8, 8*4(sp)
  sw x9, 9*4(sp)
  sw x10, 10*4(sp)
  sw x11, 11*4(sp)
  sw x12, 12*4(sp)
  sw x13, 13*4(sp)
  sw x14, 14*4(sp)
  sw x15, 15*4(sp)
  sw x16, 16*4(sp)
  sw x17, 17*4(sp)
  sw x18, 18*4(sp)
  sw x19, 19*4(sp)
  sw x20, 20*4(sp)
  sw x21, 21*4(sp)
  sw x22, 22*4(sp)
  sw x23, 23*4(sp)
  sw x24, 24*4(sp)
  sw x25, 25*4(sp)
  sw x26, 26*4(sp)
  sw x27, 27*4(sp)
  sw x28, 28*4(sp)
  sw x29, 29*4(sp)
  sw x30, 30*4(sp)
  sw x31, 31*4(sp)
  sw zero, 0(sp)
.endm

.macro restore_registers
  lw x1, 1*4(sp)
  lw x3, 3*4(sp)
  lw x4, 4*4(sp)
  lw x5, 5*4(sp)
  lw x6, 6*4(sp)
  lw x7, 7*4(sp)
  lw x8, 8*4(sp)
  lw x9, 9*4(sp)
  lw x10, 10*4(sp)
  lw x11, 11*4(sp)
  lw x12, 12*4(sp)
  lw x13, 13*4(sp)
  lw x14, 14*4(sp)
  lw x15, 15*4(sp)
  lw x16, 16*4(sp)
  lw x17, 17*4(sp)
  lw x18, 18*4(sp)
  lw x19, 19*4(sp)
  lw x20, 20*4(sp)
  lw x21, 21*4(sp)
  lw x22, 22*4(sp)
  lw x23, 23*4(sp)
  lw x24, 24*4(sp)
  lw x25, 25*4(sp)
  lw x26, 26*4(sp)
  lw x27, 27*4(sp)
  lw x28, 28*4(sp)
  lw x29, 29*4(sp)
  lw x30, 30*4(sp)
  lw x31, 31*4(sp)
  lw x2, 2*4(sp)
.endm

/* trap_vector name, scratch, epc, cause, tval, status, dispatcher, is_machine */
.macro trap_vector name, scratch, epc, cause, tval, status, dispatcher, is_machine
  .section .text.\name, "ax"
  .align 2
  .global \name
  .type \name, @function
\name:
  csrrw sp, \scratch, sp
  bnez sp, 1f
  /* From the same mode: undo the swap and stay on this stack. */
  csrrw sp, \scratch, sp
  addi sp, sp, -FRAME_BYTES
  sw t0, 5*4(sp)
  addi t0, sp, FRAME_BYTES
  j 2f
1:
  /* From a less privileged mode: sp is now this mode's stack top. */
  addi sp, sp, -FRAME_BYTES
  sw t0, 5*4(sp)
  csrrw t0, \scratch, zero
2:
  sw t0, 2*4(sp)
  save_registers
  csrr t0, \epc
  sw t0, PC_OFFSET(sp)
  csrr t0, \cause
  sw t0, CAUSE_OFFSET(sp)
  csrr t0, \tval
  sw t0, VALUE_OFFSET(sp)
  csrr t0, \status
  sw t0, STATUS_OFFSET(sp)

  mv a0, sp
  call \dispatcher

  lw t0, PC_OFFSET(sp)
  csrw \epc, t0
  lw t0, STATUS_OFFSET(sp)
  csrw \status, t0
  /* Returning below this mode? Then the next trap must find this mode's stack in xscratch. */
.if \is_machine
  srli t1, t0, 11
  andi t1, t1, 3
  li t2, 3
  beq t1, t2, 3f
.else
  andi t1, t0, 0x100
  bnez t1, 3f
.endif
  addi t1, sp, FRAME_BYTES
  csrw \scratch, t1
3:
  restore_registers
.if \is_machine
  mret
.else
  sret
.endif
  .size \name, . - \name
.endm

trap_vector ftvm_machine_trap_entry, mscratch, mepc, mcause, mtval, mstatus, ftvm_machine_trap_dispatch, 1
trap_vector ftvm_supervisor_trap_entry, sscratch, sepc, scause, stval, sstatus, ftvm_supervisor_trap_dispatch, 0

/* ftvm_enter_mode(mode, pc, stack_pointer, argument) */
  .section .text.ftvm_enter_mode, "ax"
  .global ftvm_enter_mode
  .type ftvm_enter_mode, @function
ftvm_enter_mode:
  csrw mepc, a1
  li t0, 0x1800
  csrc mstatus, t0
  slli t0, a0, 11
  csrs mstatus, t0
  /* Traps back into machine mode run on the caller's stack. */
  csrw mscratch, sp
  mv sp, a2
  mv a0, a3
  mret
  .size ftvm_enter_mode, . - ftvm_enter_mode
