/* CLINT timer: mtime / mtimecmp and interrupt-driven sleeping. */
#include "ftvm.h"

#define CLINT_MTIMECMP_LOW (FTVM_CLINT_BASE + 0x4000u)
#define CLINT_MTIMECMP_HIGH (FTVM_CLINT_BASE + 0x4004u)
#define CLINT_MTIME_LOW (FTVM_CLINT_BASE + 0xbff8u)
#define CLINT_MTIME_HIGH (FTVM_CLINT_BASE + 0xbffcu)

static volatile uint32_t interrupt_count;

uint64_t ftvm_timer_now(void) {
  for (;;) {
    uint32_t high = ftvm_mmio_read32(CLINT_MTIME_HIGH);
    uint32_t low = ftvm_mmio_read32(CLINT_MTIME_LOW);
    if (ftvm_mmio_read32(CLINT_MTIME_HIGH) == high) return ((uint64_t)high << 32) | low;
  }
}

void ftvm_timer_set_deadline(uint64_t deadline_ticks) {
  /* Raise the high half first so no intermediate value fires early. */
  ftvm_mmio_write32(CLINT_MTIMECMP_HIGH, 0xffffffffu);
  ftvm_mmio_write32(CLINT_MTIMECMP_LOW, (uint32_t)deadline_ticks);
  ftvm_mmio_write32(CLINT_MTIMECMP_HIGH, (uint32_t)(deadline_ticks >> 32));
}

void ftvm_timer_disarm(void) {
  ftvm_mmio_write32(CLINT_MTIMECMP_HIGH, 0xffffffffu);
  ftvm_mmio_write32(CLINT_MTIMECMP_LOW, 0xffffffffu);
}

static void timer_interrupt(struct ftvm_trap_frame *frame) {
  (void)frame;
  ftvm_timer_disarm();
  interrupt_count = interrupt_count + 1;
}

struct sleep_state {
  uint64_t deadline_ticks;
};

static bool deadline_passed(void *context) {
  const struct sleep_state *state = context;
  return ftvm_timer_now() >= state->deadline_ticks;
}

void ftvm_sleep_until(uint64_t deadline_ticks) {
  struct sleep_state state = {deadline_ticks};
  ftvm_trap_on_interrupt(FTVM_MODE_MACHINE, FTVM_INTERRUPT_MACHINE_TIMER, timer_interrupt);
  bool were_enabled = ftvm_interrupts_disable();
  while (!deadline_passed(&state)) {
    ftvm_timer_set_deadline(deadline_ticks);
    ftvm_csr_set(mie, 1u << FTVM_INTERRUPT_MACHINE_TIMER);
    ftvm_wait_until(deadline_passed, &state);
  }
  ftvm_timer_disarm();
  ftvm_csr_clear(mie, 1u << FTVM_INTERRUPT_MACHINE_TIMER);
  ftvm_interrupts_restore(were_enabled);
}

void ftvm_sleep_ticks(uint64_t ticks) {
  ftvm_sleep_until(ftvm_timer_now() + ticks);
}

void ftvm_sleep_us(uint32_t microseconds) {
  ftvm_sleep_ticks((uint64_t)microseconds * (FTVM_TIMER_TICKS_PER_SECOND / 1000000u));
}

void ftvm_sleep_ms(uint32_t milliseconds) {
  ftvm_sleep_ticks((uint64_t)milliseconds * (FTVM_TIMER_TICKS_PER_SECOND / 1000u));
}

uint32_t ftvm_timer_interrupt_count(void) {
  return interrupt_count;
}
