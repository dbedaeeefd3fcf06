/*
 * ftvm-sbi: what the firmware's parts share. The constants come from the RISC-V privileged
 * specification, the SBI specification (v1.0) and the board (docs/platform.md). Included by the
 * assembly too, so everything C-only is below the __ASSEMBLER__ guard.
 */
#ifndef FTVM_SBI_FIRMWARE_H
#define FTVM_SBI_FIRMWARE_H

#define FIRMWARE_NAME "ftvm-sbi"
#define FIRMWARE_VERSION_MAJOR 0
#define FIRMWARE_VERSION_MINOR 1

/* mstatus */
#define MSTATUS_SIE (1 << 1)
#define MSTATUS_SPIE (1 << 5)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_SPP (1 << 8)
#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_MPP (3 << MSTATUS_MPP_SHIFT)
#define MSTATUS_MPRV (1 << 17)

#define PRIVILEGE_USER 0
#define PRIVILEGE_SUPERVISOR 1
#define PRIVILEGE_MACHINE 3

/* mip and mie bits */
#define MIP_SSIP (1 << 1)
#define MIP_STIP (1 << 5)
#define MIP_MTIP (1 << 7)
#define MIP_SEIP (1 << 9)

/* mcause */
#define MCAUSE_INTERRUPT (1UL << 31)
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_USER_ECALL 8
#define CAUSE_SUPERVISOR_ECALL 9
#define CAUSE_MACHINE_ECALL 11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT 13
#define CAUSE_STORE_PAGE_FAULT 15
#define INTERRUPT_MACHINE_TIMER 7

/* PMP configuration: address matching and permissions of one entry. */
#define PMP_R 0x01
#define PMP_W 0x02
#define PMP_X 0x04
#define PMP_NAPOT 0x18

/* mcounteren: the counters S-mode (and, through scounteren, U-mode) may read. */
#define COUNTEREN_CY (1 << 0)
#define COUNTEREN_TM (1 << 1)
#define COUNTEREN_IR (1 << 2)

/* The board (QEMU 7.2 virt, docs/platform.md). */
#define UART_BASE 0x10000000UL
#define CLINT_MTIMECMP 0x02004000UL /* hart 0's mtimecmp */
#define TEST_FINISHER_BASE 0x00100000UL
#define FINISHER_PASS 0x5555
#define FINISHER_FAIL 0x3333
#define FINISHER_RESET 0x7777

/* Where QEMU loads a raw kernel behind a firmware this small: RAM plus 4 MiB. */
#define DEFAULT_KERNEL_ENTRY 0x80400000UL

/* The exit status of a power-off after a trap the firmware did not expect. */
#define FATAL_EXIT_STATUS 2

/*
 * The trap frame: the registers the trap handler's C code may clobber (the caller-saved ones)
 * and the interrupted sp. The C code saves the callee-saved ones itself.
 */
#define FRAME_RA 0
#define FRAME_SP 4
#define FRAME_T0 8
#define FRAME_T1 12
#define FRAME_T2 16
#define FRAME_A0 20
#define FRAME_A1 24
#define FRAME_A2 28
#define FRAME_A3 32
#define FRAME_A4 36
#define FRAME_A5 40
#define FRAME_A6 44
#define FRAME_A7 48
#define FRAME_T3 52
#define FRAME_T4 56
#define FRAME_T5 60
#define FRAME_T6 64
#define FRAME_BYTES 80 /* 68 rounded up to keep sp 16-byte aligned */

#ifndef __ASSEMBLER__

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STRINGIFY(x) #x
#define csr_read(csr)                                                \
  ({                                                                 \
    unsigned long csr_value_;                                        \
    __asm__ volatile("csrr %0, " STRINGIFY(csr) : "=r"(csr_value_)); \
    csr_value_;                                                      \
  })
#define csr_write(csr, value) __asm__ volatile("csrw " STRINGIFY(csr) ", %0" : : "rK"(value) : "memory")
#define csr_set(csr, bits) __asm__ volatile("csrs " STRINGIFY(csr) ", %0" : : "rK"(bits) : "memory")
#define csr_clear(csr, bits) __asm__ volatile("csrc " STRINGIFY(csr) ", %0" : : "rK"(bits) : "memory")

struct trap_frame {
  unsigned long ra, sp;
  unsigned long t0, t1, t2;
  unsigned long a0, a1, a2, a3, a4, a5, a6, a7;
  unsigned long t3, t4, t5, t6;
};

_Static_assert(offsetof(struct trap_frame, sp) == FRAME_SP, "trap frame layout");
_Static_assert(offsetof(struct trap_frame, a0) == FRAME_A0, "trap frame layout");
_Static_assert(offsetof(struct trap_frame, a7) == FRAME_A7, "trap frame layout");
_Static_assert(offsetof(struct trap_frame, t6) == FRAME_T6, "trap frame layout");
_Static_assert(sizeof(struct trap_frame) <= FRAME_BYTES, "trap frame layout");

/* boot.c: entry.S calls it with the reset ROM's a0, a1 and a2. */
_Noreturn void boot(unsigned long rom_hart_id, unsigned long device_tree, unsigned long fw_dynamic_info);

/* entry.S */
_Noreturn void enter_supervisor(unsigned long hart_id, unsigned long device_tree, unsigned long entry);
long read_word(unsigned long address, unsigned long *value, unsigned long mstatus_bits);

/* console.c */
void console_init(void);
void console_putchar(int c);
int console_getchar(void);
void print(const char *format, ...) __attribute__((format(printf, 1, 2)));
void vprint(const char *format, va_list args);

/* ecall.c */
void handle_ecall(struct trap_frame *frame);
void set_timer(uint64_t when);
void disable_timer(void);

/* fdt.c */
void reserve_firmware_memory(unsigned long device_tree);

/* trap.c */
void handle_trap(struct trap_frame *frame);
_Noreturn void machine_mode_trap(void);
_Noreturn void panic(const char *format, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void power_off(unsigned int status);
_Noreturn void reset_board(void);

/* The linker script's symbols: the firmware's whole extent in RAM. */
extern char _firmware_start[], _firmware_end[];

#endif /* __ASSEMBLER__ */
#endif /* FTVM_SBI_FIRMWARE_H */
