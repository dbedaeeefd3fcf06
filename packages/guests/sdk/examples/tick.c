/* tick: the README example. Reads the device tree, handles a trap in C, sleeps on the timer. */
#include <stdio.h>

#include "ftvm.h"

static void on_ecall(struct ftvm_trap_frame *frame) {
  printf("tick: ecall with a0=%lu\n", (unsigned long)frame->registers[10]);
  frame->pc += 4; /* resume after the ecall */
}

int main(void) {
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  uint64_t base = 0, size = 0;
  if (fdt != NULL) ftvm_fdt_reg(fdt, ftvm_fdt_find_path(fdt, "/memory"), 0, &base, &size);
  printf("tick: %llu MiB of RAM at 0x%llx\n", (unsigned long long)(size >> 20), (unsigned long long)base);

  ftvm_trap_on_exception(FTVM_MODE_MACHINE, FTVM_EXCEPTION_ECALL_FROM_MACHINE, on_ecall);
  __asm__ volatile("li a0, 42\n ecall" ::: "a0");

  for (int i = 1; i <= 3; i++) {
    ftvm_sleep_ms(100); /* timer interrupt + wfi */
    printf("tick %d\n", i);
  }
  printf("[nondet] tick: rtc says %llu ns since the epoch\n", (unsigned long long)ftvm_rtc_now_ns());
  return 0; /* powers off through the test finisher: exit status 0 */
}
