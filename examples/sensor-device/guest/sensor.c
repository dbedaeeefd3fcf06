/*
 * sensor: a guest for the example sensor device. It finds the device in the device tree (never by a
 * fixed address), takes three readings, then waits up to half a second for an alert interrupt.
 * Lines starting "[nondet] " carry host values; the others are the same on every run.
 */
#include <stdio.h>

#include "ftvm.h"

#define SENSOR_READING 0x00u
#define SENSOR_READ_COUNT 0x04u
#define SENSOR_ALERT_VALUE 0x08u
#define SENSOR_ALERT_PENDING 0x0cu
#define SENSOR_ID 0x10u
#define SENSOR_ID_VALUE 0x53454e53u

static uintptr_t sensor_base;
static volatile uint32_t alert_value;
static volatile bool alerted;

static uint32_t sensor_read(uint32_t offset) { return *(volatile uint32_t *)(sensor_base + offset); }

static void on_alert(uint32_t source, void *context) {
  (void)source;
  (void)context;
  alert_value = sensor_read(SENSOR_ALERT_VALUE);
  alerted = true;
  *(volatile uint32_t *)(sensor_base + SENSOR_ALERT_PENDING) = 1; /* acknowledge: lowers the line */
}

int main(void) {
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  int node = fdt ? ftvm_fdt_find_compatible(fdt, -1, "ftvm,example-sensor") : -1;
  uint64_t address = 0, size = 0;
  uint32_t irq = 0;
  if (node < 0 || !ftvm_fdt_reg(fdt, node, 0, &address, &size) || !ftvm_fdt_interrupt(fdt, node, 0, &irq)) {
    printf("sensor: no ftvm,example-sensor in the device tree (run with --device …)\n");
    return 2;
  }
  sensor_base = (uintptr_t)address;
  printf("sensor: %s at 0x%08lx, irq %lu\n", ftvm_fdt_node_name(fdt, node), (unsigned long)sensor_base,
         (unsigned long)irq);
  printf("sensor: id %s\n", sensor_read(SENSOR_ID) == SENSOR_ID_VALUE ? "ok" : "WRONG");

  for (int i = 1; i <= 3; i++) printf("[nondet] sensor: reading %d = %lu\n", i, (unsigned long)sensor_read(SENSOR_READING));
  printf("sensor: readings taken: %lu\n", (unsigned long)sensor_read(SENSOR_READ_COUNT));

  ftvm_plic_attach(irq, on_alert, NULL);
  ftvm_interrupts_enable();
  for (int waited = 0; waited < 50 && !alerted; waited++) ftvm_sleep_ms(10);
  if (alerted) printf("[nondet] sensor: alert with value %lu\n", (unsigned long)alert_value);
  else printf("[nondet] sensor: no alert within 500 ms\n");
  return 0;
}
