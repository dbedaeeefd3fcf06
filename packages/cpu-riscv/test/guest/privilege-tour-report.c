/* Prints what privilege-tour.S logged, and the leaf page-table entries (A and D bits). */
#include <stdint.h>

extern uint32_t trap_log[];
extern uint32_t log_pointer;
extern uint32_t leaf_table[];

#define UART_LSR ((volatile uint8_t *)0x10000005)
/* Waits for the transmit holding register to be empty (LSR.THRE): QEMU drops bytes written while
   its transmitter is busy. */
static void put_char(char c) {
  while ((*UART_LSR & 0x20) == 0) {
  }
  *(volatile uint8_t *)0x10000000 = (uint8_t)c;
}
static void put_string(const char *s) { while (*s) put_char(*s++); }
static void put_hex(uint32_t v) {
  for (int i = 28; i >= 0; i -= 4) put_char("0123456789abcdef"[(v >> i) & 15]);
}

void report(void) {
  uint32_t *end = (uint32_t *)log_pointer;
  for (uint32_t *entry = trap_log; entry < end; entry += 5) {
    put_string(entry[0] & 0x100 ? "S " : "M ");
    put_hex(entry[0] & 0xff);
    put_string(" cause=");
    put_hex(entry[1]);
    put_string(" tval=");
    put_hex(entry[2]);
    put_string(" epc=");
    put_hex(entry[3]);
    put_string(" from=");
    put_hex(entry[4]);
    put_char('\n');
  }
  for (int i = 0; i < 9; i++) {
    put_string("pte ");
    put_hex((uint32_t)i);
    put_char('=');
    put_hex(leaf_table[i] & 0x3ff);
    put_char('\n');
  }
  while ((*UART_LSR & 0x40) == 0) {
  }
}
