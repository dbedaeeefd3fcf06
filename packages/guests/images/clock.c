/*
 * clock: reads mtime and the Goldfish RTC, sleeps with timer interrupts and wfi, and reports.
 * Lines starting "[nondet] " carry the measured values (they differ run to run); the others are
 * the same on every run.
 */
#include <stdio.h>

#include "ftvm.h"

#define SLEEPS 3u
#define SLEEP_MS 20u
/* 2020-01-01T00:00:00Z in nanoseconds since the epoch. */
#define YEAR_2020_NS 1577836800000000000ull

int main(void) {
  uint64_t start_ticks = ftvm_timer_now();
  uint64_t start_rtc_ns = ftvm_rtc_now_ns();
  printf("clock: reading mtime and the rtc\n");
  printf("[nondet] clock: mtime=%llu rtc=%llu ns\n", (unsigned long long)start_ticks,
         (unsigned long long)start_rtc_ns);
  printf("clock: rtc is after 2020-01-01: %s\n", start_rtc_ns > YEAR_2020_NS ? "yes" : "no");

  for (uint32_t i = 1; i <= SLEEPS; i++) {
    uint64_t before = ftvm_timer_now();
    ftvm_sleep_ms(SLEEP_MS);
    uint64_t after = ftvm_timer_now();
    uint64_t wanted = (uint64_t)SLEEP_MS * (FTVM_TIMER_TICKS_PER_SECOND / 1000u);
    printf("clock: sleep %lu of %lu ms: woke %s\n", (unsigned long)i, (unsigned long)SLEEP_MS,
           after - before >= wanted ? "on time or later" : "EARLY");
    printf("[nondet] clock: slept %llu ticks (late by %llu)\n", (unsigned long long)(after - before),
           (unsigned long long)(after - before - wanted));
  }

  uint64_t end_ticks = ftvm_timer_now();
  uint64_t end_rtc_ns = ftvm_rtc_now_ns();
  uint32_t interrupts = ftvm_timer_interrupt_count();
  printf("clock: timer interrupts taken: %lu\n", (unsigned long)interrupts);
  printf("clock: mtime advanced by at least %lu ms: %s\n", (unsigned long)(SLEEPS * SLEEP_MS),
         end_ticks - start_ticks >= (uint64_t)SLEEPS * SLEEP_MS * 10000u ? "yes" : "no");
  printf("clock: rtc did not go backwards: %s\n", end_rtc_ns >= start_rtc_ns ? "yes" : "no");
  printf("[nondet] clock: mtime=%llu rtc=%llu ns (rtc advanced %llu us)\n", (unsigned long long)end_ticks,
         (unsigned long long)end_rtc_ns, (unsigned long long)((end_rtc_ns - start_rtc_ns) / 1000u));
  bool ok = interrupts == SLEEPS && end_rtc_ns >= start_rtc_ns && start_rtc_ns > YEAR_2020_NS;
  printf("clock: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
