/*
 * The console: the board's NS16550A UART, polled. The firmware prints its banner and diagnoses
 * here, and the legacy console_putchar/console_getchar calls come here.
 */
#include "firmware.h"

/* NS16550A registers (byte-wide, at offsets 0-7). */
#define UART_RBR 0 /* receive buffer (read) */
#define UART_THR 0 /* transmit holding (write) */
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_LSR 5

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RECEIVER 0x02
#define FCR_CLEAR_TRANSMITTER 0x04
#define LCR_8N1 0x03
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

static volatile uint8_t *const uart = (volatile uint8_t *)UART_BASE;

/*
 * Puts the UART in the state Linux's 8250 driver expects to find and reprograms anyway: no
 * interrupts, 8 data bits, no parity, 1 stop bit, FIFOs on and empty. The divisor stays at its
 * power-on value: the driver sets the line speed itself.
 */
void console_init(void) {
  uart[UART_IER] = 0;
  uart[UART_LCR] = LCR_8N1;
  uart[UART_FCR] = FCR_ENABLE | FCR_CLEAR_RECEIVER | FCR_CLEAR_TRANSMITTER;
}

void console_putchar(int c) {
  while ((uart[UART_LSR] & LSR_THR_EMPTY) == 0) {
  }
  uart[UART_THR] = (uint8_t)c;
}

/* The next received byte, or -1 when there is none. */
int console_getchar(void) {
  if ((uart[UART_LSR] & LSR_DATA_READY) == 0) return -1;
  return uart[UART_RBR];
}

static void put_string(const char *s) {
  while (*s != '\0') {
    if (*s == '\n') console_putchar('\r');
    console_putchar(*s++);
  }
}

static void put_unsigned(unsigned long value, unsigned int base, int width) {
  char digits[16];
  int count = 0;
  do {
    digits[count++] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value != 0);
  while (count < width) digits[count++] = '0';
  while (count > 0) console_putchar(digits[--count]);
}

/*
 * A printf for the firmware's few messages: %s, %c, %d, %u, %x with an optional zero-padded
 * width (%08x), and the l length modifier. "\n" prints as CR LF.
 */
void vprint(const char *format, va_list args) {
  for (const char *p = format; *p != '\0'; p++) {
    if (*p != '%') {
      if (*p == '\n') console_putchar('\r');
      console_putchar(*p);
      continue;
    }
    p++;
    int width = 0;
    if (*p == '0') p++;
    while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    bool is_long = *p == 'l';
    if (is_long) p++;
    switch (*p) {
      case 's':
        put_string(va_arg(args, const char *));
        break;
      case 'c':
        console_putchar(va_arg(args, int));
        break;
      case 'd': {
        long value = is_long ? va_arg(args, long) : va_arg(args, int);
        if (value < 0) {
          console_putchar('-');
          put_unsigned(-(unsigned long)value, 10, width);
        } else {
          put_unsigned((unsigned long)value, 10, width);
        }
        break;
      }
      case 'u':
      case 'x': {
        unsigned long value = is_long ? va_arg(args, unsigned long) : va_arg(args, unsigned int);
        put_unsigned(value, *p == 'u' ? 10 : 16, width);
        break;
      }
      case '%':
        console_putchar('%');
        break;
      default: /* not a conversion this printf knows: show it as written */
        console_putchar('%');
        if (*p == '\0') return;
        console_putchar(*p);
        break;
    }
  }
}

void print(const char *format, ...) {
  va_list args;
  va_start(args, format);
  vprint(format, args);
  va_end(args);
}
