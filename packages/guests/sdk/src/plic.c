/* PLIC context 0 (hart 0, machine mode). */
#include "ftvm.h"

#define PLIC_PRIORITY(source) (FTVM_PLIC_BASE + 4u * (source))
#define PLIC_ENABLE(context) (FTVM_PLIC_BASE + 0x2000u + 0x80u * (context))
#define PLIC_THRESHOLD(context) (FTVM_PLIC_BASE + 0x200000u + 0x1000u * (context))
#define PLIC_CLAIM(context) (FTVM_PLIC_BASE + 0x200004u + 0x1000u * (context))

struct irq_route {
  ftvm_irq_handler handler;
  void *context;
};
static struct irq_route routes[FTVM_PLIC_SOURCES];

void ftvm_plic_set_priority(uint32_t source, uint32_t priority) {
  if (source == 0 || source >= FTVM_PLIC_SOURCES) return;
  ftvm_mmio_write32(PLIC_PRIORITY(source), priority);
}

void ftvm_plic_enable(uint32_t source) {
  if (source == 0 || source >= FTVM_PLIC_SOURCES) return;
  uintptr_t word = PLIC_ENABLE(FTVM_PLIC_CONTEXT_MACHINE) + 4u * (source / 32u);
  ftvm_mmio_write32(word, ftvm_mmio_read32(word) | (1u << (source % 32u)));
}

void ftvm_plic_disable(uint32_t source) {
  if (source == 0 || source >= FTVM_PLIC_SOURCES) return;
  uintptr_t word = PLIC_ENABLE(FTVM_PLIC_CONTEXT_MACHINE) + 4u * (source / 32u);
  ftvm_mmio_write32(word, ftvm_mmio_read32(word) & ~(1u << (source % 32u)));
}

void ftvm_plic_set_threshold(uint32_t threshold) {
  ftvm_mmio_write32(PLIC_THRESHOLD(FTVM_PLIC_CONTEXT_MACHINE), threshold);
}

uint32_t ftvm_plic_claim(void) {
  return ftvm_mmio_read32(PLIC_CLAIM(FTVM_PLIC_CONTEXT_MACHINE));
}

void ftvm_plic_complete(uint32_t source) {
  ftvm_mmio_write32(PLIC_CLAIM(FTVM_PLIC_CONTEXT_MACHINE), source);
}

static void external_interrupt(struct ftvm_trap_frame *frame) {
  (void)frame;
  for (;;) {
    uint32_t source = ftvm_plic_claim();
    if (source == 0) return;
    if (source < FTVM_PLIC_SOURCES && routes[source].handler != NULL) {
      routes[source].handler(source, routes[source].context);
    } else {
      ftvm_plic_disable(source); /* nobody listens: keep it from storming */
    }
    ftvm_plic_complete(source);
  }
}

void ftvm_plic_attach(uint32_t source, ftvm_irq_handler handler, void *context) {
  if (source == 0 || source >= FTVM_PLIC_SOURCES) return;
  routes[source].handler = handler;
  routes[source].context = context;
  ftvm_trap_on_interrupt(FTVM_MODE_MACHINE, FTVM_INTERRUPT_MACHINE_EXTERNAL, external_interrupt);
  ftvm_plic_set_priority(source, 1);
  ftvm_plic_enable(source);
  /* Last: on QEMU an enable write does not re-evaluate the hart's line, a threshold write does, so a
     source that was already pending interrupts as soon as mie.MEIE is set. */
  ftvm_plic_set_threshold(0);

  ftvm_csr_set(mie, 1u << FTVM_INTERRUPT_MACHINE_EXTERNAL);
}
