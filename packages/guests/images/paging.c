/*
 * paging: machine mode programs PMP, builds Sv32 page tables and enters supervisor mode; the
 * supervisor turns paging on and runs a user program that takes load, store and fetch page faults
 * (handled by mapping pages on demand) and makes system calls. It prints a deterministic transcript
 * and exits 0.
 *
 * Virtual memory (Sv32, 4 KiB pages and 4 MiB megapages):
 *   0x0001_0000  user code (4 KiB, U R X)              0x0005_0000  user page, read-only at first
 *   0x0002_0000  user data (4 KiB, U R W)              0x0006_0000  unmapped: fetch fault, then code
 *   0x0003_0000  unmapped: load fault, then zero page  0x0007_f000  user stack (4 KiB, U R W)
 *   0x0080_0000  user megapage (4 MiB, U R W) -> physical 0x8040_0000
 *   0x1000_0000  UART megapage (S R W), 0x8000_0000..0x8100_0000 kernel megapages (S R W X), identity
 */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"

#define PTE_V 0x001u
#define PTE_R 0x002u
#define PTE_W 0x004u
#define PTE_X 0x008u
#define PTE_U 0x010u
#define PTE_G 0x020u
#define PTE_A 0x040u
#define PTE_D 0x080u

#define PAGE_BYTES 4096u
#define MEGAPAGE_BYTES 0x400000u

#define USER_CODE 0x00010000u
#define USER_DATA 0x00020000u
#define USER_LAZY 0x00030000u
#define USER_READ_ONLY 0x00050000u
#define USER_FETCH 0x00060000u
#define USER_STACK 0x0007f000u
#define USER_MEGAPAGE 0x00800000u
#define USER_MEGAPAGE_PHYSICAL 0x80400000u

#define SYS_PUTS 1u
#define SYS_PUT_HEX 2u
#define SYS_ADD 3u
#define SYS_EXIT 4u

/* Supervisor -> machine call (SBI-like): a7 = 0 powers off with status a0. */
#define MACHINE_CALL_POWER_OFF 0u

typedef uint32_t page_table[1024];

static page_table root_table __attribute__((aligned(PAGE_BYTES)));
static page_table user_table __attribute__((aligned(PAGE_BYTES)));
static uint8_t user_code_page[PAGE_BYTES] __attribute__((aligned(PAGE_BYTES)));
static uint8_t user_data_page[PAGE_BYTES] __attribute__((aligned(PAGE_BYTES)));
static uint8_t user_lazy_page[PAGE_BYTES] __attribute__((aligned(PAGE_BYTES)));
static uint8_t user_read_only_page[PAGE_BYTES] __attribute__((aligned(PAGE_BYTES)));
static uint8_t user_fetch_page[PAGE_BYTES] __attribute__((aligned(PAGE_BYTES)));
static uint8_t user_stack_page[PAGE_BYTES] __attribute__((aligned(PAGE_BYTES)));
static uint8_t supervisor_stack[16384] __attribute__((aligned(16)));

/*
 * The user program: position-independent (pc-relative only), copied into user_code_page and run
 * at USER_CODE. 4-byte instructions only, so the kernel can skip a faulting one by adding 4.
 */
extern const uint8_t user_program_start[];
extern const uint8_t user_program_end[];
__asm__(
    ".section .text.user_program, \"ax\"\n"
    ".option push\n"
    ".option norvc\n"
    ".option norelax\n"
    ".balign 4\n"
    ".global user_program_start\n"
    "user_program_start:\n"
    /* 1. hello */
    "  lla a0, 1f\n"
    "  li a7, 1\n"
    "  ecall\n"
    /* 2. the data page: word store and load, then a misaligned load */
    "  li t0, 0x20000\n"
    "  li t1, 0x12345678\n"
    "  sw t1, 0(t0)\n"
    "  lw a0, 0(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    "  li t1, 0x9abcdef0\n"
    "  sw t1, 4(t0)\n"
    "  lw a0, 2(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 3. load from an unmapped page: the kernel maps a zero page */
    "  li t0, 0x30000\n"
    "  lw a0, 16(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    "  li t1, 0xabcd\n"
    "  sw t1, 16(t0)\n"
    "  lw a0, 16(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 4. store to a read-only page: the kernel makes it writable */
    "  li t0, 0x50000\n"
    "  lw a0, 0(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    "  li t1, 0x55aa\n"
    "  sw t1, 4(t0)\n"
    "  lw a0, 4(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 5. call into an unmapped page: the kernel maps code there */
    "  li t0, 0x60000\n"
    "  jalr ra, 0(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 6. the megapage */
    "  li t0, 0x00923450\n"
    "  li t1, 0xfeedbeef\n"
    "  sw t1, 0(t0)\n"
    "  lw a0, 0(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 7. touch kernel memory: refused, the kernel sets a0 = 0xdead and skips the load */
    "  li t0, 0x80000000\n"
    "  lw a0, 0(t0)\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 8. a system call with a result */
    "  li a0, 40\n"
    "  li a1, 2\n"
    "  li a7, 3\n"
    "  ecall\n"
    "  li a7, 2\n"
    "  ecall\n"
    /* 9. use the stack page */
    "  addi sp, sp, -16\n"
    "  sw a0, 12(sp)\n"
    "  lw a0, 12(sp)\n"
    "  addi sp, sp, 16\n"
    "  li a7, 4\n"
    "  li a0, 0\n"
    "  ecall\n"
    "2:\n"
    "  j 2b\n"
    "1:\n"
    "  .asciz \"hello from user mode\"\n"
    ".balign 4\n"
    ".global user_program_end\n"
    "user_program_end:\n"
    ".option pop\n"
    ".text\n");

static uint32_t pte_for(uintptr_t physical, uint32_t flags) {
  return (uint32_t)((physical >> 12) << 10) | flags | PTE_V;
}

static void map_megapage(uint32_t virtual_address, uintptr_t physical, uint32_t flags) {
  root_table[virtual_address >> 22] = pte_for(physical, flags);
}

static void map_page(uint32_t virtual_address, const void *physical, uint32_t flags) {
  user_table[(virtual_address >> 12) & 0x3ffu] = pte_for((uintptr_t)physical, flags);
}

static volatile uint32_t *user_pte(uint32_t virtual_address) {
  return &user_table[(virtual_address >> 12) & 0x3ffu];
}

static void flush_tlb(void) {
  __asm__ volatile("sfence.vma" ::: "memory");
}

static const char *fault_name(uint32_t cause) {
  switch (cause) {
    case FTVM_EXCEPTION_INSTRUCTION_PAGE_FAULT:
      return "fetch";
    case FTVM_EXCEPTION_LOAD_PAGE_FAULT:
      return "load";
    case FTVM_EXCEPTION_STORE_PAGE_FAULT:
      return "store";
    default:
      return "other";
  }
}

/* ---- supervisor mode ---- */

__attribute__((noreturn)) static void machine_call_power_off(uint32_t status) {
  register uint32_t a0 __asm__("a0") = status;
  register uint32_t a7 __asm__("a7") = MACHINE_CALL_POWER_OFF;
  __asm__ volatile("ecall" ::"r"(a0), "r"(a7) : "memory");
  for (;;) {
  }
}

static uint32_t user_faults;

static void supervisor_page_fault(struct ftvm_trap_frame *frame) {
  uint32_t address = frame->value;
  uint32_t page = address & ~(PAGE_BYTES - 1);
  bool from_user = (frame->status & FTVM_MSTATUS_SPP) == 0;
  const char *kind = fault_name(frame->cause);
  if (!from_user) {
    if (address < USER_MEGAPAGE + MEGAPAGE_BYTES && (frame->status & FTVM_MSTATUS_SUM) == 0) {
      printf("kernel: %s fault at 0x%08lx from supervisor mode (user page, SUM clear): setting SUM\n", kind,
             (unsigned long)address);
      frame->status |= FTVM_MSTATUS_SUM;
      return;
    }
    printf("kernel: unexpected supervisor %s fault at 0x%08lx\n", kind, (unsigned long)address);
    machine_call_power_off(2);
  }
  user_faults++;
  if (frame->cause == FTVM_EXCEPTION_LOAD_PAGE_FAULT && page == USER_LAZY && (*user_pte(page) & PTE_V) == 0) {
    map_page(USER_LAZY, user_lazy_page, PTE_U | PTE_R | PTE_W);
    printf("kernel: load fault at 0x%08lx: mapped a zero page\n", (unsigned long)address);
  } else if (frame->cause == FTVM_EXCEPTION_STORE_PAGE_FAULT && page == USER_READ_ONLY) {
    *user_pte(page) |= PTE_W;
    printf("kernel: store fault at 0x%08lx: page made writable\n", (unsigned long)address);
  } else if (frame->cause == FTVM_EXCEPTION_INSTRUCTION_PAGE_FAULT && page == USER_FETCH) {
    static const uint32_t code[] = {
        0x02a00513u, /* addi a0, zero, 42 */
        0x00008067u, /* jalr zero, 0(ra) */
    };
    memcpy(user_fetch_page, code, sizeof code);
    __asm__ volatile("fence.i" ::: "memory");
    map_page(USER_FETCH, user_fetch_page, PTE_U | PTE_R | PTE_X);
    printf("kernel: fetch fault at 0x%08lx: mapped code\n", (unsigned long)address);
  } else {
    printf("kernel: %s fault at 0x%08lx refused\n", kind, (unsigned long)address);
    frame->registers[10] = 0xdead;
    frame->pc += 4;
  }
  flush_tlb();
}

static void supervisor_user_call(struct ftvm_trap_frame *frame);
__attribute__((noreturn)) static void supervisor_after_user(uint32_t exit_status);

static void supervisor_user_call(struct ftvm_trap_frame *frame) {
  uint32_t number = frame->registers[17];
  uint32_t argument = frame->registers[10];
  frame->pc += 4;
  switch (number) {
    case SYS_PUTS: {
      /* Reading user memory from supervisor mode needs SUM. */
      ftvm_csr_set(sstatus, FTVM_MSTATUS_SUM);
      char text[64];
      const volatile char *user_text = (const volatile char *)argument;
      size_t length = 0;
      while (length + 1 < sizeof text && user_text[length] != '\0') {
        text[length] = user_text[length];
        length++;
      }
      text[length] = '\0';
      ftvm_csr_clear(sstatus, FTVM_MSTATUS_SUM);
      printf("user: %s\n", text);
      break;
    }
    case SYS_PUT_HEX:
      printf("user: 0x%08lx\n", (unsigned long)argument);
      break;
    case SYS_ADD:
      frame->registers[10] = argument + frame->registers[11];
      break;
    case SYS_EXIT:
      /* Do not return to user mode: continue in supervisor_after_user on a fresh stack. */
      frame->status |= FTVM_MSTATUS_SPP;
      frame->pc = (uint32_t)(uintptr_t)supervisor_after_user;
      frame->registers[2] = (uint32_t)(uintptr_t)(supervisor_stack + sizeof supervisor_stack);
      frame->registers[10] = argument;
      break;
    default:
      printf("kernel: unknown system call %lu\n", (unsigned long)number);
      frame->registers[10] = 0xffffffffu;
      break;
  }
}

static void print_accessed_dirty(const char *what, uint32_t pte) {
  printf("kernel: %s: A=%u D=%u\n", what, (pte & PTE_A) ? 1u : 0u, (pte & PTE_D) ? 1u : 0u);
}

__attribute__((noreturn)) static void supervisor_after_user(uint32_t exit_status) {
  printf("kernel: user program exited with %lu after %lu page faults\n", (unsigned long)exit_status,
         (unsigned long)user_faults);
  /* The hardware set accessed/dirty bits as the user touched pages (no faults for them). */
  print_accessed_dirty("code page", *user_pte(USER_CODE));
  print_accessed_dirty("data page", *user_pte(USER_DATA));
  print_accessed_dirty("zero-filled page", *user_pte(USER_LAZY));
  print_accessed_dirty("read-only page made writable", *user_pte(USER_READ_ONLY));
  print_accessed_dirty("fetched page", *user_pte(USER_FETCH));
  print_accessed_dirty("stack page", *user_pte(USER_STACK));
  print_accessed_dirty("megapage", root_table[USER_MEGAPAGE >> 22]);

  /* Read user memory without SUM: faults, the handler sets SUM, the load is retried. */
  ftvm_csr_clear(sstatus, FTVM_MSTATUS_SUM);
  uint32_t data = *(volatile uint32_t *)USER_DATA;
  printf("kernel: user data word = 0x%08lx\n", (unsigned long)data);
  uint32_t megapage_word = *(volatile uint32_t *)(USER_MEGAPAGE_PHYSICAL + 0x123450u);
  printf("kernel: megapage word through its physical address = 0x%08lx\n", (unsigned long)megapage_word);

  bool ok = exit_status == 0 && user_faults == 4 && data == 0x12345678u && megapage_word == 0xfeedbeefu;
  printf("paging: %s\n", ok ? "ok" : "FAILED");
  machine_call_power_off(ok ? 0 : 1);
}

static void supervisor_main(uint32_t argument) {
  (void)argument;
  ftvm_csr_write(sscratch, 0);
  ftvm_csr_write(stvec, (uint32_t)(uintptr_t)ftvm_supervisor_trap_entry);
  printf("kernel: running in supervisor mode\n");
  uint32_t satp = (1u << 31) | (uint32_t)((uintptr_t)root_table >> 12);
  ftvm_csr_write(satp, satp);
  flush_tlb();
  printf("kernel: Sv32 paging on\n");

  /* Enter user mode at USER_CODE with the user stack; traps come back on our stack. */
  uint32_t user_stack_top = USER_STACK + PAGE_BYTES;
  ftvm_csr_clear(sstatus, FTVM_MSTATUS_SPP);
  ftvm_csr_write(sepc, USER_CODE);
  __asm__ volatile(
      "csrw sscratch, sp\n"
      "mv sp, %0\n"
      "sret\n" ::"r"(user_stack_top)
      : "memory");
  __builtin_unreachable();
}

/* ---- machine mode ---- */

static void machine_supervisor_call(struct ftvm_trap_frame *frame) {
  if (frame->registers[17] == MACHINE_CALL_POWER_OFF) ftvm_power_off(frame->registers[10]);
  printf("machine: unknown supervisor call %lu\n", (unsigned long)frame->registers[17]);
  frame->pc += 4;
}

int main(void) {
  printf("paging: starting in machine mode\n");

  /* PMP entry 0: top-of-range over the whole address space, RWX. Without it S/U cannot run. */
  ftvm_csr_write(pmpaddr0, 0xffffffffu);
  ftvm_csr_write(pmpcfg0, 0x0fu); /* R | W | X | A=TOR */
  printf("paging: pmp programmed\n");

  /* Kernel megapages (global, accessed and dirty preset) and the user mappings (A/D clear). */
  for (uint32_t offset = 0; offset < 4 * MEGAPAGE_BYTES; offset += MEGAPAGE_BYTES) {
    map_megapage(FTVM_RAM_BASE + offset, FTVM_RAM_BASE + offset, PTE_R | PTE_W | PTE_X | PTE_G | PTE_A | PTE_D);
  }
  map_megapage(FTVM_UART_BASE, FTVM_UART_BASE, PTE_R | PTE_W | PTE_G | PTE_A | PTE_D);
  map_megapage(USER_MEGAPAGE, USER_MEGAPAGE_PHYSICAL, PTE_U | PTE_R | PTE_W);
  root_table[0] = pte_for((uintptr_t)user_table, 0); /* pointer to the next level */
  memcpy(user_code_page, user_program_start, (size_t)(user_program_end - user_program_start));
  __asm__ volatile("fence.i" ::: "memory");
  map_page(USER_CODE, user_code_page, PTE_U | PTE_R | PTE_X);
  map_page(USER_DATA, user_data_page, PTE_U | PTE_R | PTE_W);
  for (uint32_t i = 0; i < PAGE_BYTES; i++) user_read_only_page[i] = (uint8_t)(i * 7u + 1u);
  map_page(USER_READ_ONLY, user_read_only_page, PTE_U | PTE_R);
  map_page(USER_STACK, user_stack_page, PTE_U | PTE_R | PTE_W);
  printf("paging: page tables built (user program %lu bytes)\n",
         (unsigned long)(user_program_end - user_program_start));

  /* User ecalls and page faults go to supervisor mode; supervisor ecalls stay here. */
  ftvm_trap_on_exception(FTVM_MODE_SUPERVISOR, FTVM_EXCEPTION_ECALL_FROM_USER, supervisor_user_call);
  ftvm_trap_on_exception(FTVM_MODE_SUPERVISOR, FTVM_EXCEPTION_INSTRUCTION_PAGE_FAULT, supervisor_page_fault);
  ftvm_trap_on_exception(FTVM_MODE_SUPERVISOR, FTVM_EXCEPTION_LOAD_PAGE_FAULT, supervisor_page_fault);
  ftvm_trap_on_exception(FTVM_MODE_SUPERVISOR, FTVM_EXCEPTION_STORE_PAGE_FAULT, supervisor_page_fault);
  ftvm_trap_on_exception(FTVM_MODE_MACHINE, FTVM_EXCEPTION_ECALL_FROM_SUPERVISOR, machine_supervisor_call);
  ftvm_csr_write(medeleg, (1u << FTVM_EXCEPTION_ECALL_FROM_USER) | (1u << FTVM_EXCEPTION_INSTRUCTION_PAGE_FAULT) |
                              (1u << FTVM_EXCEPTION_LOAD_PAGE_FAULT) | (1u << FTVM_EXCEPTION_STORE_PAGE_FAULT));
  ftvm_csr_write(mideleg, 0);
  printf("paging: entering supervisor mode\n");
  ftvm_enter_mode(FTVM_MODE_SUPERVISOR, supervisor_main,
                  (uint32_t)(uintptr_t)(supervisor_stack + sizeof supervisor_stack), 0);
}
