/*
 * Epilogue of the differential test programs: prints the registers the program saved, the traps
 * its handler logged and a checksum of the scratch area over the UART.
 */
#include <stdint.h>

extern uint32_t saved_registers[32];
extern uint32_t trap_log[];
extern uint32_t trap_log_end_pointer;
extern uint8_t scratch[];
extern uint32_t scratch_size;

#define UART_LSR ((volatile uint8_t *)0x10000005)
/* Waits for the transmit holding register to be empty (LSR.THRE), as a real driver does: QEMU
   drops bytes written while its transmitter is busy (its output is a pipe in the tests). */
static void put_char(char c) {
  while ((*UART_LSR & 0x20) == 0) {
  }
  *(volatile uint8_t *)0x10000000 = (uint8_t)c;
}
/* Waits until every byte has left the UART (LSR.TEMT), before powering off. */
static void flush_output(void) {
  while ((*UART_LSR & 0x40) == 0) {
  }
}
static void put_string(const char *s) { while (*s) put_char(*s++); }
static void put_hex(uint32_t v) {
  for (int i = 28; i >= 0; i -= 4) put_char("0123456789abcdef"[(v >> i) & 15]);
}

void report(void) {
  for (int i = 1; i < 32; i++) {
    put_char('x');
    put_hex((uint32_t)i);
    put_char('=');
    put_hex(saved_registers[i]);
    put_char('\n');
  }
  uint32_t *end = (uint32_t *)trap_log_end_pointer;
  for (uint32_t *entry = trap_log; entry < end; entry += 3) {
    put_string("trap cause=");
    put_hex(entry[0]);
    put_string(" tval=");
    put_hex(entry[1]);
    put_string(" epc=");
    put_hex(entry[2]);
    put_char('\n');
  }
  uint32_t hash = 2166136261u;
  for (uint32_t i = 0; i < scratch_size; i++) hash = (hash ^ scratch[i]) * 16777619u;
  put_string("scratch=");
  put_hex(hash);
  put_char('\n');
  flush_output();
}
