/* The CLINT timer: mtime (10 MHz), mtimecmp, and sleeping with timer interrupts and wfi. */
#ifndef FTVM_TIMER_H
#define FTVM_TIMER_H

#include <stdint.h>

/* Reads the 64-bit mtime (safely against a carry between the two halves). */
uint64_t ftvm_timer_now(void);
/* Sets mtimecmp: a machine timer interrupt becomes pending when mtime >= deadline. */
void ftvm_timer_set_deadline(uint64_t deadline_ticks);
/* Sets mtimecmp to its maximum, so no timer interrupt is pending. */
void ftvm_timer_disarm(void);

/* Sleeps until mtime >= deadline, using the timer interrupt and wfi (interrupts enabled meanwhile). */
void ftvm_sleep_until(uint64_t deadline_ticks);
void ftvm_sleep_ticks(uint64_t ticks);
void ftvm_sleep_us(uint32_t microseconds);
void ftvm_sleep_ms(uint32_t milliseconds);

/* How many machine timer interrupts the SDK's handler has taken since boot. */
uint32_t ftvm_timer_interrupt_count(void);

#endif
