/* The Goldfish RTC: wall-clock time in nanoseconds since the Unix epoch. */
#ifndef FTVM_RTC_H
#define FTVM_RTC_H

#include <stdint.h>

uint64_t ftvm_rtc_now_ns(void);

#endif
