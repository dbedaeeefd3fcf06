/* Boot hand-over, console (UART + picolibc stdio), power off, trap dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ftvm.h"

uint32_t ftvm_boot_hart_id;
const void *ftvm_boot_device_tree;

int main(void);

/* ---- console: NS16550A ---- */

#define UART_RECEIVE_BUFFER 0u
#define UART_TRANSMIT_HOLDING 0u
#define UART_INTERRUPT_ENABLE 1u
#define UART_LINE_CONTROL 3u
#define UART_LINE_STATUS 5u
#define UART_LINE_STATUS_DATA_READY 0x01u
#define UART_LINE_STATUS_TRANSMIT_EMPTY 0x20u

static void console_init(void) {
  ftvm_mmio_write8(FTVM_UART_BASE + UART_INTERRUPT_ENABLE, 0);
  ftvm_mmio_write8(FTVM_UART_BASE + UART_LINE_CONTROL, 0x03); /* 8 data bits, no parity, 1 stop */
}

void ftvm_console_put(char byte) {
  while ((ftvm_mmio_read8(FTVM_UART_BASE + UART_LINE_STATUS) & UART_LINE_STATUS_TRANSMIT_EMPTY) == 0) {
  }
  ftvm_mmio_write8(FTVM_UART_BASE + UART_TRANSMIT_HOLDING, (uint8_t)byte);
}

void ftvm_console_write(const char *text) {
  while (*text != '\0') ftvm_console_put(*text++);
}

bool ftvm_console_try_get(char *byte) {
  if ((ftvm_mmio_read8(FTVM_UART_BASE + UART_LINE_STATUS) & UART_LINE_STATUS_DATA_READY) == 0) return false;
  *byte = (char)ftvm_mmio_read8(FTVM_UART_BASE + UART_RECEIVE_BUFFER);
  return true;
}

static int console_stream_put(char byte, FILE *stream) {
  (void)stream;
  ftvm_console_put(byte);
  return (unsigned char)byte;
}

static int console_stream_get(FILE *stream) {
  (void)stream;
  char byte;
  while (!ftvm_console_try_get(&byte)) {
  }
  return (unsigned char)byte;
}

static FILE console_stream = FDEV_SETUP_STREAM(console_stream_put, console_stream_get, NULL, _FDEV_SETUP_RW);
FILE *const stdin = &console_stream;
FILE *const stdout = &console_stream;
FILE *const stderr = &console_stream;

/* ---- power ---- */

#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u
#define FINISHER_RESET 0x7777u

void ftvm_power_off(uint32_t status) {
  ftvm_mmio_write32(FTVM_TEST_FINISHER_BASE, status == 0 ? FINISHER_PASS : ((status << 16) | FINISHER_FAIL));
  for (;;) ftvm_wfi();
}

void ftvm_reset(void) {
  ftvm_mmio_write32(FTVM_TEST_FINISHER_BASE, FINISHER_RESET);
  for (;;) ftvm_wfi();
}

/* picolibc's exit() ends here. */
void _exit(int status) {
  ftvm_power_off((uint32_t)status & 0xffffu);
}

/* ---- traps ---- */

#define TRAP_KINDS 16u
static ftvm_trap_handler machine_exceptions[TRAP_KINDS];
static ftvm_trap_handler machine_interrupts[TRAP_KINDS];
static ftvm_trap_handler supervisor_exceptions[TRAP_KINDS];
static ftvm_trap_handler supervisor_interrupts[TRAP_KINDS];

void ftvm_trap_on_exception(enum ftvm_privilege_mode mode, uint32_t cause, ftvm_trap_handler handler) {
  if (cause >= TRAP_KINDS) return;
  if (mode == FTVM_MODE_MACHINE) machine_exceptions[cause] = handler;
  else if (mode == FTVM_MODE_SUPERVISOR) supervisor_exceptions[cause] = handler;
}

void ftvm_trap_on_interrupt(enum ftvm_privilege_mode mode, uint32_t number, ftvm_trap_handler handler) {
  if (number >= TRAP_KINDS) return;
  if (mode == FTVM_MODE_MACHINE) machine_interrupts[number] = handler;
  else if (mode == FTVM_MODE_SUPERVISOR) supervisor_interrupts[number] = handler;
}

void ftvm_trap_skip_instruction(struct ftvm_trap_frame *frame) {
  uint16_t low_half = *(const volatile uint16_t *)frame->pc;
  frame->pc += (low_half & 3u) == 3u ? 4u : 2u;
}

static void unhandled_trap(const char *mode, const struct ftvm_trap_frame *frame) {
  /* Plain console writes: the trap may have come from inside printf. */
  char line[96];
  snprintf(line, sizeof line, "ftvm: unhandled %s trap: cause=0x%08lx pc=0x%08lx value=0x%08lx\n", mode,
           (unsigned long)frame->cause, (unsigned long)frame->pc, (unsigned long)frame->value);
  ftvm_console_write(line);
  ftvm_power_off(0x7f);
}

static void dispatch(const char *mode, struct ftvm_trap_frame *frame, ftvm_trap_handler *exceptions,
                     ftvm_trap_handler *interrupts) {
  uint32_t code = frame->cause & 0x7fffffffu;
  bool is_interrupt = (frame->cause & 0x80000000u) != 0;
  ftvm_trap_handler handler = NULL;
  if (code < TRAP_KINDS) handler = is_interrupt ? interrupts[code] : exceptions[code];
  if (handler == NULL) unhandled_trap(mode, frame);
  handler(frame);
}

void ftvm_machine_trap_dispatch(struct ftvm_trap_frame *frame);
void ftvm_machine_trap_dispatch(struct ftvm_trap_frame *frame) {
  dispatch("machine", frame, machine_exceptions, machine_interrupts);
}

void ftvm_supervisor_trap_dispatch(struct ftvm_trap_frame *frame);
void ftvm_supervisor_trap_dispatch(struct ftvm_trap_frame *frame) {
  dispatch("supervisor", frame, supervisor_exceptions, supervisor_interrupts);
}

void ftvm_wait_until(bool (*ready)(void *context), void *context) {
  for (;;) {
    bool were_enabled = ftvm_interrupts_disable();
    if (ready(context)) {
      ftvm_interrupts_restore(were_enabled);
      return;
    }
    ftvm_wfi();
    /* Take whatever woke us, then test again. */
    ftvm_interrupts_enable();
    if (!were_enabled) ftvm_interrupts_disable();
  }
}

/* ---- boot ---- */

void ftvm_runtime_start(uint32_t hart_id, const void *device_tree);
void ftvm_runtime_start(uint32_t hart_id, const void *device_tree) {
  ftvm_boot_hart_id = hart_id;
  ftvm_boot_device_tree = device_tree;
  /* mtimecmp is 0 at reset, so the timer interrupt is pending until we move it away. */
  ftvm_timer_disarm();
  console_init();
  exit(main());
}
