# A tour of the privileged architecture, compared with QEMU by the differential test: PMP, Sv32
# paging (4 KiB and 4 MiB pages, every permission rule, SUM, MXR, MPRV, A/D updates, misaligned
# superpages, accesses across pages), delegation, privileged-instruction traps and interrupts.
#
# A table of scenarios drives it. For each, M mode loads mepc, mstatus, satp, medeleg, mideleg,
# mie, mip and mcounteren from the table and mret's. The scenario's code ends in a trap: the M
# handler logs (scenario, mcause, mtval, mepc, MPP) and starts the next scenario; the S handler
# logs (scenario | 0x100, scause, stval, sepc, SPP) and ecalls to M. privilege-tour-report.c
# prints the log and some page-table entries (to show the A and D bits the hardware set).

  .equ PTE_V, 1
  .equ PTE_R, 2
  .equ PTE_W, 4
  .equ PTE_X, 8
  .equ PTE_U, 16
  .equ PTE_A, 64
  .equ PTE_D, 128
  .equ SUM, (1 << 18)
  .equ MXR, (1 << 19)
  .equ TVM, (1 << 20)
  .equ TW, (1 << 21)
  .equ TSR, (1 << 22)
  .equ MPP_S, (1 << 11)
  .equ MPP_M, (3 << 11)
  .equ SIE, (1 << 1)
  .equ USER_PAGE_VA, 0x40006000

  # Stores a leaf or pointer PTE for physical `symbol` into `table`[index].
  .macro PTE table, index, symbol, flags
  la t0, \symbol
  srli t0, t0, 12
  slli t0, t0, 10
  ori t0, t0, \flags
  la t1, \table
  sw t0, (\index * 4)(t1)
  .endm

  .section .text.start
  .globl _start
_start:
  la sp, __stack_top
  la t0, m_trap
  csrw mtvec, t0
  la t0, s_trap
  csrw stvec, t0
  li t0, -1
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  la t0, trap_log
  la t1, log_pointer
  sw t0, 0(t1)

  # Root table: 0x80000000 identity as one 4 MiB page (S only), 0x40000000 through a leaf table,
  # 0x00800000 a misaligned superpage.
  li t0, (0x80000000 >> 2) | PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D
  la t1, root_table
  li t2, 0x200 * 4
  add t2, t1, t2
  sw t0, 0(t2)
  PTE root_table, 0x100, leaf_table, PTE_V
  li t0, (0x80001000 >> 2) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
  sw t0, (0x2 * 4)(t1)
  PTE leaf_table, 0, page_user, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D
  PTE leaf_table, 1, page_read_only, PTE_V | PTE_R | PTE_A
  PTE leaf_table, 2, page_execute_only, PTE_V | PTE_X | PTE_A
  PTE leaf_table, 3, page_invalid, 0
  PTE leaf_table, 4, page_write_only, PTE_V | PTE_W | PTE_A | PTE_D
  PTE leaf_table, 5, page_fresh, PTE_V | PTE_R | PTE_W
  PTE leaf_table, 6, user_code_page, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A
  li t0, (0x00200000 >> 2) | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
  la t1, leaf_table
  sw t0, (7 * 4)(t1)
  PTE leaf_table, 8, page_fresh_read, PTE_V | PTE_R | PTE_W

driver:
  la t2, scenario_index
  lw t3, 0(t2)
  la t5, scenario_count
  lw t5, 0(t5)
  bgeu t3, t5, finish
  la t0, scenarios
  slli t1, t3, 5
  add t0, t0, t1
  lw t1, 0(t0)
  csrw mepc, t1
  lw t1, 4(t0)
  csrw mstatus, t1
  lw t1, 8(t0)
  beqz t1, 2f
  la t1, root_table
  srli t1, t1, 12
  li t4, (1 << 31)
  or t1, t1, t4
2:
  csrw satp, t1
  sfence.vma
  lw t1, 12(t0)
  csrw medeleg, t1
  lw t1, 16(t0)
  csrw mideleg, t1
  lw t1, 20(t0)
  csrw mie, t1
  lw t1, 24(t0)
  csrw mip, t1
  lw t1, 28(t0)
  csrw mcounteren, t1
  mret

finish:
  csrw satp, zero
  csrw mie, zero
  call report
  li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
1:
  j 1b

  .balign 4
m_trap:
  la t0, log_pointer
  lw t1, 0(t0)
  la t2, scenario_index
  lw t3, 0(t2)
  sw t3, 0(t1)
  csrr t4, mcause
  sw t4, 4(t1)
  csrr t4, mtval
  sw t4, 8(t1)
  csrr t4, mepc
  sw t4, 12(t1)
  csrr t4, mstatus
  srli t4, t4, 11
  andi t4, t4, 3
  sw t4, 16(t1)
  addi t1, t1, 20
  sw t1, 0(t0)
  addi t3, t3, 1
  sw t3, 0(t2)
  j driver

  .balign 4
s_trap:
  la t0, log_pointer
  lw t1, 0(t0)
  la t2, scenario_index
  lw t3, 0(t2)
  ori t3, t3, 0x100
  sw t3, 0(t1)
  csrr t4, scause
  sw t4, 4(t1)
  csrr t4, stval
  sw t4, 8(t1)
  csrr t4, sepc
  sw t4, 12(t1)
  csrr t4, sstatus
  srli t4, t4, 8
  andi t4, t4, 1
  sw t4, 16(t1)
  addi t1, t1, 20
  sw t1, 0(t0)
  ecall

# ---- S-mode and M-mode scenario code (identity mapped) ----
s_store_read_only:
  li t0, 0x40001000
  lw a0, 0(t0)
  sw a0, 0(t0)
s_load_user:
  li t0, 0x40000000
  lw a0, 8(t0)
  ecall
s_load_execute_only:
  li t0, 0x40002000
  lw a0, 0(t0)
  ecall
s_load_invalid:
  li t0, 0x40003000
  lw a0, 0(t0)
s_load_write_only:
  li t0, 0x40004000
  lw a0, 0(t0)
s_access_fresh:
  li t0, 0x40005000
  sw t0, 0(t0)
  li t0, 0x40008000
  lw a0, 16(t0)
  ecall
s_load_misaligned_superpage:
  li t0, 0x00800000
  lw a0, 0(t0)
s_jump_user_page:
  li t0, USER_PAGE_VA
  jr t0
m_load_mprv:
  li t0, MPP_S | (1 << 17)
  csrs mstatus, t0
  li t0, 0x40001000
  lw a0, 0(t0)
  ecall
m_load_mprv_user:
  li t0, (1 << 17)
  csrs mstatus, t0
  li t0, 0x40001000
  lw a0, 0(t0)
s_across_pages:
  li t0, 0x40000ffe
  lw a0, 0(t0)
  lh a1, 1(t0)
  sw a0, 0(t0)
s_sfence:
  sfence.vma
s_read_satp:
  csrr a0, satp
s_sret:
  sret
s_wfi:
  wfi
s_idle:
  nop
  ecall
s_ebreak:
  ebreak
s_illegal_compressed:
  .half 0
s_lr_misaligned:
  la t0, page_user
  addi t0, t0, 1
  lr.w a0, (t0)
s_mret:
  mret
s_read_time:
  csrr a0, time
s_load_unclaimed:
  li t0, 0x40007000
  lw a0, 4(t0)
s_store_unclaimed:
  li t0, 0x40007000
  sw a0, 8(t0)

# ---- U-mode code, on its own page (mapped at USER_PAGE_VA, and run physically without paging) ----
  .balign 4096
user_code_page:
u_plain:
  la t0, page_user
  lw a0, 0(t0)
  ecall
u_read_mstatus:
  csrr a0, mstatus
u_paged:
  li t0, 0x40000000
  lw a0, 0(t0)
  li t0, 0x40001000
  lw a0, 0(t0)
u_ecall:
  ecall
u_wfi:
  wfi
u_read_cycle:
  csrr a0, cycle
  .balign 4096

  .data
  .balign 4
  .macro SCENARIO target, mstatus, paging, medeleg=0, mideleg=0, mie=0, mip=0, mcounteren=0
  .word \target, \mstatus, \paging, \medeleg, \mideleg, \mie, \mip, \mcounteren
  .endm
  # A scenario running user code through its mapping at USER_PAGE_VA.
  .macro USER_SCENARIO target, mstatus, paging, medeleg=0
  .word \target - user_code_page + USER_PAGE_VA, \mstatus, \paging, \medeleg, 0, 0, 0, 0
  .endm
scenarios:
  SCENARIO u_plain, 0, 0
  SCENARIO u_read_mstatus, 0, 0
  SCENARIO s_store_read_only, MPP_S, 1
  SCENARIO s_load_user, MPP_S, 1
  SCENARIO s_load_user, MPP_S | SUM, 1
  SCENARIO s_load_execute_only, MPP_S, 1
  SCENARIO s_load_execute_only, MPP_S | MXR, 1
  SCENARIO s_load_invalid, MPP_S, 1
  SCENARIO s_load_write_only, MPP_S, 1
  SCENARIO s_access_fresh, MPP_S, 1
  SCENARIO s_load_misaligned_superpage, MPP_S, 1
  SCENARIO s_jump_user_page, MPP_S, 1
  USER_SCENARIO u_paged, 0, 1
  USER_SCENARIO u_ecall, 0, 1, (1 << 8)
  USER_SCENARIO u_paged, 0, 1, (1 << 13)
  SCENARIO m_load_mprv, MPP_M, 1
  SCENARIO m_load_mprv_user, MPP_M, 1
  SCENARIO s_across_pages, MPP_S | SUM, 1
  SCENARIO s_sfence, MPP_S | TVM, 1
  SCENARIO s_read_satp, MPP_S | TVM, 1
  SCENARIO s_sret, MPP_S | TSR, 1
  SCENARIO u_wfi, 0, 0
  SCENARIO s_wfi, MPP_S | TW, 1
  SCENARIO s_idle, MPP_S | SIE, 1, 0, 0x2, 0x2, 0x2
  SCENARIO s_idle, MPP_S, 1, 0, 0, 0x80
  SCENARIO s_ebreak, MPP_S, 1
  SCENARIO s_illegal_compressed, MPP_S, 1
  SCENARIO s_lr_misaligned, MPP_S, 1
  SCENARIO s_mret, MPP_S, 1
  SCENARIO s_read_time, MPP_S, 1
  SCENARIO u_read_cycle, 0, 0
  SCENARIO s_read_time, MPP_S, 1, 0, 0, 0, 0, 0x2
  SCENARIO s_load_unclaimed, MPP_S, 1
  SCENARIO s_store_unclaimed, MPP_S, 1
  SCENARIO s_wfi, MPP_S, 1, 0, 0, 0x80
  SCENARIO s_load_user, MPP_S | SUM | SIE, 1, 0, 0x20, 0x20, 0x20
scenarios_end:
scenario_count:
  .word (scenarios_end - scenarios) / 32
scenario_index:
  .word 0
log_pointer:
  .word 0

  .section .pagetables, "aw", @nobits
  .balign 4096
  .globl root_table, leaf_table, page_fresh, page_fresh_read, trap_log, log_pointer
root_table:
  .space 4096
leaf_table:
  .space 4096
page_user:
  .space 4096
page_read_only:
  .space 4096
page_execute_only:
  .space 4096
page_invalid:
  .space 4096
page_write_only:
  .space 4096
page_fresh:
  .space 4096
page_fresh_read:
  .space 4096
trap_log:
  .space 4096
