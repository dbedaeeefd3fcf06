/* Checks of the SDK itself, run on the reference QEMU by src/sdk.test.ts. */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

static uint32_t breakpoints;

static void on_breakpoint(struct ftvm_trap_frame *frame) {
  breakpoints++;
  ftvm_trap_skip_instruction(frame);
}

static void on_ecall(struct ftvm_trap_frame *frame) {
  frame->registers[10] = frame->registers[10] * 2u;
  frame->pc += 4;
}

static uint32_t garbage[16] = {0xedfe0dd0u, 0x100u};

int main(void) {
  struct ftvm_fdt scratch;
  printf("fdt: open NULL: %d\n", ftvm_fdt_open(&scratch, NULL));
  printf("fdt: open garbage: %d\n", ftvm_fdt_open(&scratch, garbage));
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  printf("fdt: boot tree: %d\n", fdt != NULL);
  printf("fdt: root is node 0: %d\n", ftvm_fdt_find_path(fdt, "/") == 0);
  int uart = ftvm_fdt_find_path(fdt, "/soc/serial");
  printf("fdt: /soc/serial -> %s\n", ftvm_fdt_node_name(fdt, uart));
  printf("fdt: /soc/serial@10000001 -> %d\n", ftvm_fdt_find_path(fdt, "/soc/serial@10000001"));
  printf("fdt: /nothing/here -> %d\n", ftvm_fdt_find_path(fdt, "/nothing/here"));
  printf("fdt: parent of uart: %s\n", ftvm_fdt_node_name(fdt, ftvm_fdt_parent(fdt, uart)));
  printf("fdt: parent of root: %d\n", ftvm_fdt_parent(fdt, 0));
  uint32_t cells = 0;
  ftvm_fdt_property_u32(fdt, 0, "#address-cells", 0, &cells);
  printf("fdt: root #address-cells = %lu\n", (unsigned long)cells);
  uint32_t length = 0;
  const char *stdout_path = ftvm_fdt_property(fdt, ftvm_fdt_find_path(fdt, "/chosen"), "stdout-path", &length);
  printf("fdt: chosen stdout-path = %s\n", stdout_path != NULL ? stdout_path : "(none)");
  printf("fdt: missing property: %d\n", ftvm_fdt_property(fdt, uart, "no-such-property", &length) == NULL);
  uint32_t virtio_nodes = 0;
  uint32_t irq_sum = 0;
  for (int node = ftvm_fdt_find_compatible(fdt, -1, "virtio,mmio"); node >= 0;
       node = ftvm_fdt_find_compatible(fdt, node, "virtio,mmio")) {
    uint32_t irq = 0;
    ftvm_fdt_interrupt(fdt, node, 0, &irq);
    virtio_nodes++;
    irq_sum += irq;
  }
  printf("fdt: %lu virtio,mmio nodes, irqs summing to %lu\n", (unsigned long)virtio_nodes, (unsigned long)irq_sum);
  int test = ftvm_fdt_find_compatible(fdt, -1, "sifive,test0");
  uint64_t address = 0;
  uint64_t size = 0;
  ftvm_fdt_reg(fdt, test, 0, &address, &size);
  printf("fdt: sifive,test0 (second in its list) at 0x%llx size 0x%llx\n", (unsigned long long)address,
         (unsigned long long)size);
  int plic = ftvm_fdt_find_compatible(fdt, -1, "riscv,plic0");
  ftvm_fdt_reg(fdt, plic, 0, &address, &size);
  printf("fdt: plic at 0x%llx size 0x%llx\n", (unsigned long long)address, (unsigned long long)size);
  int clint = ftvm_fdt_find_compatible(fdt, -1, "riscv,clint0");
  ftvm_fdt_reg(fdt, clint, 0, &address, &size);
  printf("fdt: clint at 0x%llx size 0x%llx\n", (unsigned long long)address, (unsigned long long)size);

  ftvm_trap_on_exception(FTVM_MODE_MACHINE, FTVM_EXCEPTION_BREAKPOINT, on_breakpoint);
  __asm__ volatile(".option push\n.option rvc\nc.ebreak\n.option pop\n");
  __asm__ volatile(".option push\n.option norvc\nebreak\n.option pop\n");
  printf("trap: breakpoints handled: %lu\n", (unsigned long)breakpoints);
  ftvm_trap_on_exception(FTVM_MODE_MACHINE, FTVM_EXCEPTION_ECALL_FROM_MACHINE, on_ecall);
  register uint32_t a0 __asm__("a0") = 21;
  __asm__ volatile("ecall" : "+r"(a0));
  printf("trap: ecall handler doubled 21 to %lu\n", (unsigned long)a0);

  bool were_enabled = ftvm_interrupts_disable();
  printf("csr: interrupts were enabled at start: %d\n", were_enabled);
  ftvm_interrupts_enable();
  printf("csr: disable reports enabled: %d\n", ftvm_interrupts_disable());

  uint64_t before = ftvm_timer_now();
  ftvm_sleep_us(500);
  printf("timer: mtime advanced across a sleep: %d\n", ftvm_timer_now() > before);

  struct ftvm_virtio_device device;
  printf("virtio: find blk without one: %s\n",
         ftvm_virtio_describe(ftvm_virtio_find(FTVM_VIRTIO_DEVICE_BLOCK, 0, &device)));
  return 3;
}
