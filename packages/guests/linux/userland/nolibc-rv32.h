/*
 * Included before the kernel's nolibc.h (tools/include/nolibc, Linux 6.1) when building for rv32.
 *
 * rv32 Linux has only the 64-bit-time and 64-bit-offset system calls: no lseek, gettimeofday, poll,
 * select, stat or wait4. nolibc 6.1 calls them unconditionally, so it does not compile for rv32 as it
 * stands. Numbering them __NR_syscalls (one past the last system call) lets it compile; the kernel
 * answers those numbers with ENOSYS. init.c uses none of them: it calls pread64, pwrite64 and
 * ppoll_time64 itself.
 */
#ifndef FTVM_NOLIBC_RV32_H
#define FTVM_NOLIBC_RV32_H

#include <asm/unistd.h>

#ifndef __NR_lseek
#define __NR_lseek __NR_syscalls
#endif
#ifndef __NR_gettimeofday
#define __NR_gettimeofday __NR_syscalls
#endif
#if !defined(__NR_poll) && !defined(__NR_ppoll)
#define __NR_ppoll __NR_syscalls
#endif
#if !defined(__NR_select) && !defined(__NR_pselect6) && !defined(__NR__newselect)
#define __NR_pselect6 __NR_syscalls
#endif
#if !defined(__NR_newfstatat) && !defined(__NR_stat)
#define __NR_newfstatat __NR_syscalls
#endif
#ifndef __NR_wait4
#define __NR_wait4 __NR_syscalls
#endif

#endif
