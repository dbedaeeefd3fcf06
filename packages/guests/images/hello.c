/*
 * hello: the smallest useful guest. Prints a greeting and what the device tree says about the
 * board (root compatible, model, memory, UART), then exits 0.
 */
#include <stdio.h>

#include "ftvm.h"

int main(void) {
  printf("hello from ftvm guest (hart %lu)\n", (unsigned long)ftvm_boot_hart_id);
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  if (fdt == NULL) {
    printf("hello: no device tree in a1\n");
    return 1;
  }
  uint32_t length;
  const char *compatible = ftvm_fdt_property(fdt, 0, "compatible", &length);
  printf("hello: root compatible = %s\n", compatible != NULL ? compatible : "(none)");
  uint64_t address = 0;
  uint64_t size = 0;
  int memory = ftvm_fdt_find_path(fdt, "/memory");
  if (memory < 0 || !ftvm_fdt_reg(fdt, memory, 0, &address, &size)) {
    printf("hello: no /memory node\n");
    return 1;
  }
  printf("hello: memory at 0x%08llx, %llu MiB\n", (unsigned long long)address,
         (unsigned long long)(size >> 20));
  int uart = ftvm_fdt_find_compatible(fdt, -1, "ns16550a");
  uint32_t irq = 0;
  if (uart < 0 || !ftvm_fdt_reg(fdt, uart, 0, &address, &size) || !ftvm_fdt_interrupt(fdt, uart, 0, &irq)) {
    printf("hello: no ns16550a node\n");
    return 1;
  }
  printf("hello: uart %s at 0x%08llx, irq %lu\n", ftvm_fdt_node_name(fdt, uart), (unsigned long long)address,
         (unsigned long)irq);
  uint32_t timebase = 0;
  int cpus = ftvm_fdt_find_path(fdt, "/cpus");
  if (ftvm_fdt_property_u32(fdt, cpus, "timebase-frequency", 0, &timebase)) {
    printf("hello: timebase %lu Hz\n", (unsigned long)timebase);
  }
  printf("hello: goodbye\n");
  return 0;
}
