/* Prints the table csr-probe.S filled; values of the host-timed counters are masked. */
#include <stdint.h>
extern uint32_t table[4096 * 5];
#define UART_LSR ((volatile uint8_t *)0x10000005)
/* Waits for the transmit holding register to be empty (LSR.THRE), as a real driver does: QEMU
   drops bytes written while its transmitter is busy (its output is a pipe in the tests). */
static void putc_(char c) {
  while ((*UART_LSR & 0x20) == 0) {
  }
  *(volatile uint8_t *)0x10000000 = (uint8_t)c;
}
/* Waits until every byte has left the UART (LSR.TEMT), before powering off. */
static void flush_output(void) {
  while ((*UART_LSR & 0x40) == 0) {
  }
}
static void hex(uint32_t v) { for (int i = 28; i >= 0; i -= 4) putc_("0123456789abcdef"[(v >> i) & 15]); }
static int nondet(uint32_t n) {
  uint32_t low = n & 0x7f;
  uint32_t high = n & ~0x7fu;
  if (!(high == 0xc00 || high == 0xc80 || high == 0xb00 || high == 0xb80)) return 0;
  return low == 0 || low == 1 || low == 2;
}
void report(void) {
  for (uint32_t n = 0; n < 4096; n++) {
    uint32_t *e = &table[n * 5];
    if (e[0]) continue;
    hex(n); putc_(' ');
    if (nondet(n)) { putc_('?'); } else hex(e[1]);
    if (e[4]) { putc_(' '); putc_('r'); putc_('o'); }
    else if (nondet(n)) { putc_(' '); putc_('w'); }
    else { putc_(' '); hex(e[2]); putc_(' '); hex(e[3]); }
    putc_('\n');
  }
  flush_output();
}
