/*
 * Traps into M-mode. Once the kernel runs, the firmware expects two: an ecall from S-mode (an SBI
 * call) and the machine timer interrupt (passed on to S-mode as its timer interrupt). Everything
 * else S- and U-mode raise is delegated to S-mode. Any other trap is a bug somewhere: the firmware
 * says which trap it was, on one line, and powers the board off with a non-zero status.
 */
#include "firmware.h"

static const char *const exception_names[] = {
    [CAUSE_MISALIGNED_FETCH] = "misaligned fetch",
    [CAUSE_FETCH_ACCESS] = "fetch access fault",
    [CAUSE_ILLEGAL_INSTRUCTION] = "illegal instruction",
    [CAUSE_BREAKPOINT] = "breakpoint",
    [CAUSE_MISALIGNED_LOAD] = "misaligned load",
    [CAUSE_LOAD_ACCESS] = "load access fault",
    [CAUSE_MISALIGNED_STORE] = "misaligned store",
    [CAUSE_STORE_ACCESS] = "store access fault",
    [CAUSE_USER_ECALL] = "ecall from U-mode",
    [CAUSE_SUPERVISOR_ECALL] = "ecall from S-mode",
    [CAUSE_MACHINE_ECALL] = "ecall from M-mode",
    [CAUSE_FETCH_PAGE_FAULT] = "fetch page fault",
    [CAUSE_LOAD_PAGE_FAULT] = "load page fault",
    [CAUSE_STORE_PAGE_FAULT] = "store page fault",
};

static const char *const interrupt_names[] = {
    [1] = "supervisor software interrupt",
    [3] = "machine software interrupt",
    [5] = "supervisor timer interrupt",
    [7] = "machine timer interrupt",
    [9] = "supervisor external interrupt",
    [11] = "machine external interrupt",
};

static const char *const mode_names[] = {
    [PRIVILEGE_USER] = "U-mode",
    [PRIVILEGE_SUPERVISOR] = "S-mode",
    [2] = "a reserved mode",
    [PRIVILEGE_MACHINE] = "M-mode (the firmware itself)",
};

static const char *cause_name(unsigned long cause) {
  unsigned long code = cause & ~MCAUSE_INTERRUPT;
  const char *name = NULL;
  if ((cause & MCAUSE_INTERRUPT) != 0) {
    if (code < sizeof interrupt_names / sizeof interrupt_names[0]) name = interrupt_names[code];
  } else {
    if (code < sizeof exception_names / sizeof exception_names[0]) name = exception_names[code];
  }
  return name != NULL ? name : "unknown cause";
}

static volatile uint32_t *const test_finisher = (volatile uint32_t *)TEST_FINISHER_BASE;

_Noreturn static void halt(void) {
  for (;;) __asm__ volatile("wfi");
}

/* Powers the board off with an exit status (QEMU and ftvm exit with it). */
_Noreturn void power_off(unsigned int status) {
  *test_finisher = status == 0 ? FINISHER_PASS : (status << 16) | FINISHER_FAIL;
  halt();
}

/* Resets the board; the hart starts again at the reset vector (QEMU resets asynchronously). */
_Noreturn void reset_board(void) {
  *test_finisher = FINISHER_RESET;
  halt();
}

/* Says what went wrong, on one line, and powers off. */
_Noreturn void panic(const char *format, ...) {
  va_list args;
  va_start(args, format);
  print(FIRMWARE_NAME ": ");
  vprint(format, args);
  print("; powering off (status %d)\n", FATAL_EXIT_STATUS);
  va_end(args);
  power_off(FATAL_EXIT_STATUS);
}

_Noreturn static void unexpected_trap(unsigned long mode) {
  unsigned long cause = csr_read(mcause);
  panic("unexpected trap from %s: %s (mcause 0x%08lx, mepc 0x%08lx, mtval 0x%08lx)", mode_names[mode],
        cause_name(cause), cause, csr_read(mepc), csr_read(mtval));
}

/* A trap taken while the firmware itself ran (entry.S sends it here). */
_Noreturn void machine_mode_trap(void) {
  /* If the diagnosis traps in turn, power off without another word. */
  static bool diagnosing;
  if (diagnosing) power_off(FATAL_EXIT_STATUS);
  diagnosing = true;
  unexpected_trap(PRIVILEGE_MACHINE);
}

/* A trap from S- or U-mode. */
void handle_trap(struct trap_frame *frame) {
  unsigned long cause = csr_read(mcause);
  if (cause == (MCAUSE_INTERRUPT | INTERRUPT_MACHINE_TIMER)) {
    /* The timer S-mode armed with set_timer fired: hand it over as STIP, and keep the machine
       timer quiet until the next set_timer (MTIP stays pending until mtimecmp moves). */
    csr_clear(mie, MIP_MTIP);
    csr_set(mip, MIP_STIP);
    return;
  }
  if (cause == CAUSE_SUPERVISOR_ECALL) {
    handle_ecall(frame);
    csr_write(mepc, csr_read(mepc) + 4);
    return;
  }
  unexpected_trap((csr_read(mstatus) & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
}
