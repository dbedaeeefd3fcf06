/* Trap entry and C-level trap handlers, for machine mode and (optionally) supervisor mode. */
#ifndef FTVM_TRAP_H
#define FTVM_TRAP_H

#include <stdint.h>

/* The registers of the interrupted code, saved by the trap entry and restored on return. */
struct ftvm_trap_frame {
  uint32_t registers[32]; /* x0..x31 (registers[2] is the interrupted sp) */
  uint32_t pc;            /* mepc / sepc: where execution resumes; a handler may change it */
  uint32_t cause;         /* mcause / scause */
  uint32_t value;         /* mtval / stval */
  uint32_t status;        /* mstatus / sstatus, written back on return (e.g. to change MPP) */
};

enum ftvm_privilege_mode {
  FTVM_MODE_USER = 0,
  FTVM_MODE_SUPERVISOR = 1,
  FTVM_MODE_MACHINE = 3,
};

typedef void (*ftvm_trap_handler)(struct ftvm_trap_frame *frame);

/* Registers a handler for exception `cause` (0..15) taken in `mode` (machine or supervisor). */
void ftvm_trap_on_exception(enum ftvm_privilege_mode mode, uint32_t cause, ftvm_trap_handler handler);
/* Registers a handler for interrupt `number` (0..15) taken in `mode` (machine or supervisor). */
void ftvm_trap_on_interrupt(enum ftvm_privilege_mode mode, uint32_t number, ftvm_trap_handler handler);

/* The trap vectors (direct mode). crt0 installs the machine one; write the other to stvec. */
void ftvm_machine_trap_entry(void);
void ftvm_supervisor_trap_entry(void);

/*
 * Leaves machine mode for `mode` (user or supervisor) at `pc` with stack pointer `stack_pointer`
 * and a0 = `argument`. Traps back into machine mode run on the current machine stack.
 * On QEMU (and ftvm) a PMP entry must cover memory first, or the mret itself faults.
 */
__attribute__((noreturn)) void ftvm_enter_mode(enum ftvm_privilege_mode mode, void (*pc)(uint32_t),
                                               uint32_t stack_pointer, uint32_t argument);

/* Skips the 2- or 4-byte instruction at frame->pc (e.g. after handling an ecall). */
void ftvm_trap_skip_instruction(struct ftvm_trap_frame *frame);

#endif
