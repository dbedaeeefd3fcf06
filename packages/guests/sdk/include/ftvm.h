/*
 * ftvm guest SDK: everything a bare-metal guest needs on the ftvm/QEMU `virt` board.
 *
 * Include this one header. The start-up code (sdk/src/crt0.S) clears .bss, installs the machine-mode
 * trap vector, masks the timer, and calls `int main(void)`; returning from main (or calling exit())
 * powers the board off through the SiFive test finisher with that status.
 */
#ifndef FTVM_H
#define FTVM_H

#include "ftvm/platform.h"
#include "ftvm/csr.h"
#include "ftvm/trap.h"
#include "ftvm/console.h"
#include "ftvm/power.h"
#include "ftvm/timer.h"
#include "ftvm/plic.h"
#include "ftvm/rtc.h"
#include "ftvm/fdt.h"

#endif
