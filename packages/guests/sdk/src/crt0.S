/*
 * Start-up code. QEMU's reset vector (and ftvm's boot) enter here in machine mode with
 * a0 = hart id and a1 = the device tree address. We set gp, sp and tp, clear .tbss/.bss,
 * install the machine trap vector and hand over to C (ftvm_runtime_start, which calls main).
 */
  .section .text.init.enter, "ax"
  .global _start
  .type _start, @function
_start:
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, __stack_top
  mv s0, a0
  mv s1, a1

  /* Zero .tbss and .bss (a loader need not; a reset through 0x7777 re-enters with stale RAM). */
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  /* Thread pointer for picolibc's thread-local errno: the TLS block lives in place. */
  la tp, __tls_base

  la t0, ftvm_machine_trap_entry
  csrw mtvec, t0
  /* mscratch = 0 means "a trap comes from machine mode: stay on the current stack". */
  csrw mscratch, zero
  csrw mie, zero

  mv a0, s0
  mv a1, s1
  call ftvm_runtime_start
3:
  wfi
  j 3b
  .size _start, . - _start
