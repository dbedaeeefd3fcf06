/* Powering the board off and resetting it through the SiFive test finisher. */
#ifndef FTVM_POWER_H
#define FTVM_POWER_H

#include <stdint.h>

/*
 * Powers off. Status 0 writes 0x5555 (QEMU and ftvm exit 0); any other status writes
 * (status << 16) | 0x3333 (they exit with that status). exit() and returning from main end here.
 */
__attribute__((noreturn)) void ftvm_power_off(uint32_t status);
/* Resets the board (0x7777): the image starts again from its entry. */
__attribute__((noreturn)) void ftvm_reset(void);

#endif
