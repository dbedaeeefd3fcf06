/* The board's memory map (docs/platform.md; the same as QEMU's `virt` board). */
#ifndef FTVM_PLATFORM_H
#define FTVM_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#define FTVM_TEST_FINISHER_BASE 0x00100000u
#define FTVM_RTC_BASE 0x00101000u
#define FTVM_CLINT_BASE 0x02000000u
#define FTVM_PLIC_BASE 0x0c000000u
#define FTVM_UART_BASE 0x10000000u
#define FTVM_VIRTIO_MMIO_BASE 0x10001000u
#define FTVM_VIRTIO_MMIO_STRIDE 0x1000u
#define FTVM_VIRTIO_MMIO_SLOTS 8u
#define FTVM_RAM_BASE 0x80000000u

/* PLIC interrupt sources. */
#define FTVM_IRQ_VIRTIO_FIRST 1u /* slot n raises 1 + n */
#define FTVM_IRQ_UART 10u
#define FTVM_IRQ_RTC 11u

/* CLINT timebase: mtime counts at 10 MHz. */
#define FTVM_TIMER_TICKS_PER_SECOND 10000000u

/* The hart id (a0) and device-tree address (a1) that the boot code received. */
extern uint32_t ftvm_boot_hart_id;
extern const void *ftvm_boot_device_tree;

static inline uint32_t ftvm_mmio_read32(uintptr_t address) {
  return *(volatile uint32_t *)address;
}
static inline void ftvm_mmio_write32(uintptr_t address, uint32_t value) {
  *(volatile uint32_t *)address = value;
}
static inline uint8_t ftvm_mmio_read8(uintptr_t address) {
  return *(volatile uint8_t *)address;
}
static inline void ftvm_mmio_write8(uintptr_t address, uint8_t value) {
  *(volatile uint8_t *)address = value;
}

#endif
