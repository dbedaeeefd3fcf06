/* Goldfish RTC: reading TIME_LOW latches TIME_HIGH, so read low first. */
#include "ftvm.h"

#define RTC_TIME_LOW (FTVM_RTC_BASE + 0x00u)
#define RTC_TIME_HIGH (FTVM_RTC_BASE + 0x04u)

uint64_t ftvm_rtc_now_ns(void) {
  uint32_t low = ftvm_mmio_read32(RTC_TIME_LOW);
  uint32_t high = ftvm_mmio_read32(RTC_TIME_HIGH);
  return ((uint64_t)high << 32) | low;
}
