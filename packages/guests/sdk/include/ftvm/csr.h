/* Control and status registers, interrupt masking and wfi. */
#ifndef FTVM_CSR_H
#define FTVM_CSR_H

#include <stdbool.h>
#include <stdint.h>

#define ftvm_csr_read(csr)                                                                               \
  ({                                                                                                     \
    uint32_t ftvm_csr_value_;                                                                            \
    __asm__ volatile("csrr %0, " #csr : "=r"(ftvm_csr_value_));                                          \
    ftvm_csr_value_;                                                                                     \
  })
#define ftvm_csr_write(csr, value) __asm__ volatile("csrw " #csr ", %0" ::"rK"((uint32_t)(value)) : "memory")
#define ftvm_csr_set(csr, bits) __asm__ volatile("csrs " #csr ", %0" ::"rK"((uint32_t)(bits)) : "memory")
#define ftvm_csr_clear(csr, bits) __asm__ volatile("csrc " #csr ", %0" ::"rK"((uint32_t)(bits)) : "memory")

/* mstatus / sstatus bits. */
#define FTVM_MSTATUS_SIE (1u << 1)
#define FTVM_MSTATUS_MIE (1u << 3)
#define FTVM_MSTATUS_SPIE (1u << 5)
#define FTVM_MSTATUS_MPIE (1u << 7)
#define FTVM_MSTATUS_SPP (1u << 8)
#define FTVM_MSTATUS_MPP_SHIFT 11
#define FTVM_MSTATUS_MPP_MASK (3u << 11)
#define FTVM_MSTATUS_MPRV (1u << 17)
#define FTVM_MSTATUS_SUM (1u << 18)
#define FTVM_MSTATUS_MXR (1u << 19)

/* Interrupt numbers (bits of mip/mie, low bits of mcause). */
#define FTVM_INTERRUPT_SUPERVISOR_SOFTWARE 1u
#define FTVM_INTERRUPT_MACHINE_SOFTWARE 3u
#define FTVM_INTERRUPT_SUPERVISOR_TIMER 5u
#define FTVM_INTERRUPT_MACHINE_TIMER 7u
#define FTVM_INTERRUPT_SUPERVISOR_EXTERNAL 9u
#define FTVM_INTERRUPT_MACHINE_EXTERNAL 11u

/* Exception causes. */
#define FTVM_EXCEPTION_INSTRUCTION_MISALIGNED 0u
#define FTVM_EXCEPTION_INSTRUCTION_ACCESS_FAULT 1u
#define FTVM_EXCEPTION_ILLEGAL_INSTRUCTION 2u
#define FTVM_EXCEPTION_BREAKPOINT 3u
#define FTVM_EXCEPTION_LOAD_MISALIGNED 4u
#define FTVM_EXCEPTION_LOAD_ACCESS_FAULT 5u
#define FTVM_EXCEPTION_STORE_MISALIGNED 6u
#define FTVM_EXCEPTION_STORE_ACCESS_FAULT 7u
#define FTVM_EXCEPTION_ECALL_FROM_USER 8u
#define FTVM_EXCEPTION_ECALL_FROM_SUPERVISOR 9u
#define FTVM_EXCEPTION_ECALL_FROM_MACHINE 11u
#define FTVM_EXCEPTION_INSTRUCTION_PAGE_FAULT 12u
#define FTVM_EXCEPTION_LOAD_PAGE_FAULT 13u
#define FTVM_EXCEPTION_STORE_PAGE_FAULT 15u

/* Machine-mode global interrupt enable: returns whether interrupts were enabled before. */
static inline bool ftvm_interrupts_disable(void) {
  uint32_t previous;
  __asm__ volatile("csrrc %0, mstatus, %1" : "=r"(previous) : "r"(FTVM_MSTATUS_MIE) : "memory");
  return (previous & FTVM_MSTATUS_MIE) != 0;
}
static inline void ftvm_interrupts_enable(void) {
  ftvm_csr_set(mstatus, FTVM_MSTATUS_MIE);
}
static inline void ftvm_interrupts_restore(bool enabled) {
  if (enabled) ftvm_interrupts_enable();
}

/* Sleeps until an interrupt enabled in mie is pending (even with mstatus.MIE clear). */
static inline void ftvm_wfi(void) {
  __asm__ volatile("wfi" ::: "memory");
}

/*
 * Waits, with wfi, until ready(context) is true. Interrupts are masked while the condition is tested
 * so that a wake-up between the test and the wfi cannot be lost; they are taken right after.
 */
void ftvm_wait_until(bool (*ready)(void *context), void *context);

#endif
