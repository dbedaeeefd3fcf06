/* The PLIC, for context 0 (hart 0, machine mode). */
#ifndef FTVM_PLIC_H
#define FTVM_PLIC_H

#include <stdint.h>

#define FTVM_PLIC_SOURCES 96u
#define FTVM_PLIC_CONTEXT_MACHINE 0u

typedef void (*ftvm_irq_handler)(uint32_t source, void *context);

void ftvm_plic_set_priority(uint32_t source, uint32_t priority);
void ftvm_plic_enable(uint32_t source);
void ftvm_plic_disable(uint32_t source);
void ftvm_plic_set_threshold(uint32_t threshold);
/* Claims the highest-priority pending source (0 when none) and completes it. */
uint32_t ftvm_plic_claim(void);
void ftvm_plic_complete(uint32_t source);

/*
 * Routes PLIC source `source` to `handler` (called in the machine external interrupt, between
 * claim and complete): sets its priority to 1, enables it, sets threshold 0 and enables mie.MEIE. A
 * source that is already pending interrupts as soon as interrupts are enabled.

 */
void ftvm_plic_attach(uint32_t source, ftvm_irq_handler handler, void *context);

#endif
