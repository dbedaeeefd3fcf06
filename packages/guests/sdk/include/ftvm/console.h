/* The console: the NS16550A UART, also behind picolibc's stdin/stdout/stderr (printf works). */
#ifndef FTVM_CONSOLE_H
#define FTVM_CONSOLE_H

#include <stdbool.h>

/* Writes one byte, waiting while the transmitter holding register is full. */
void ftvm_console_put(char byte);
/* Writes a NUL-terminated string as it is (no newline added, none translated). */
void ftvm_console_write(const char *text);
/* Reads one received byte into *byte; false when none is waiting. */
bool ftvm_console_try_get(char *byte);

#endif
