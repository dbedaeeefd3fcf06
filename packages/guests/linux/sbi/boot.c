/*
 * ftvm-sbi's boot: find the kernel, set the hart up for an S-mode kernel, say so on the console,
 * and mret into the kernel with a0 = hart id, a1 = device tree.
 */
#include "firmware.h"

/*
 * The block QEMU's reset ROM passes in a2 (fw_dynamic_info, one register-wide word per field):
 * where the next stage starts and in which mode.
 */
#define FW_DYNAMIC_INFO_MAGIC 0x4942534fUL /* "OSBI" */
#define FW_DYNAMIC_INFO_MAGIC_OFFSET 0
#define FW_DYNAMIC_INFO_NEXT_ADDR_OFFSET 8
#define FW_DYNAMIC_INFO_NEXT_MODE_OFFSET 12

/*
 * Every exception S- and U-mode raise goes to S-mode, except the ecalls to the firmware (from S,
 * and from M, which S cannot raise). Instruction, load and store faults of every kind, illegal
 * instructions, breakpoints and ecalls from U-mode are the kernel's business.
 */
#define DELEGATED_EXCEPTIONS                                                                  \
  ((1UL << CAUSE_MISALIGNED_FETCH) | (1UL << CAUSE_FETCH_ACCESS) | (1UL << CAUSE_ILLEGAL_INSTRUCTION) | \
   (1UL << CAUSE_BREAKPOINT) | (1UL << CAUSE_MISALIGNED_LOAD) | (1UL << CAUSE_LOAD_ACCESS) |           \
   (1UL << CAUSE_MISALIGNED_STORE) | (1UL << CAUSE_STORE_ACCESS) | (1UL << CAUSE_USER_ECALL) |         \
   (1UL << CAUSE_FETCH_PAGE_FAULT) | (1UL << CAUSE_LOAD_PAGE_FAULT) | (1UL << CAUSE_STORE_PAGE_FAULT))

#define DELEGATED_INTERRUPTS (MIP_SSIP | MIP_STIP | MIP_SEIP)

/*
 * Where the kernel starts: fw_dynamic_info's next_addr when the reset ROM passed the block (the
 * board without a ROM has none to read: the read is guarded), else QEMU's address for a raw
 * kernel behind a small firmware.
 */
static unsigned long kernel_entry(unsigned long info) {
  unsigned long magic, next_addr, next_mode;
  if (info == 0 || read_word(info + FW_DYNAMIC_INFO_MAGIC_OFFSET, &magic, 0) != 0 ||
      magic != FW_DYNAMIC_INFO_MAGIC)
    return DEFAULT_KERNEL_ENTRY;
  if (read_word(info + FW_DYNAMIC_INFO_NEXT_ADDR_OFFSET, &next_addr, 0) != 0 ||
      read_word(info + FW_DYNAMIC_INFO_NEXT_MODE_OFFSET, &next_mode, 0) != 0)
    return DEFAULT_KERNEL_ENTRY;
  if (next_mode != PRIVILEGE_SUPERVISOR)
    panic("fw_dynamic_info asks for the next stage in mode %lu; this firmware starts S-mode kernels only",
          next_mode);
  return next_addr;
}

static void configure_hart(void) {
  /* PMP entry 0 lets S- and U-mode reach the whole address space: with no PMP entry active, they
     could reach nothing (and QEMU refuses an mret into them). All ones in pmpaddr with NAPOT
     matching covers every address. */
  csr_write(pmpaddr0, ~0UL);
  csr_write(pmpcfg0, PMP_NAPOT | PMP_R | PMP_W | PMP_X);

  csr_write(medeleg, DELEGATED_EXCEPTIONS);
  csr_write(mideleg, DELEGATED_INTERRUPTS);
  /* S-mode may read time (mtime, through the CLINT), cycle and instret. */
  csr_write(mcounteren, COUNTEREN_CY | COUNTEREN_TM | COUNTEREN_IR);

  /* No interrupt pending or enabled for the kernel to find; the machine timer stays off until the
     kernel's first set_timer. */
  disable_timer();
  csr_write(mie, 0);
  csr_clear(mip, MIP_SSIP | MIP_STIP);

  /* The kernel starts in S-mode with its interrupts off and translation off. */
  csr_write(satp, 0);
  csr_clear(mstatus, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MPRV | MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP);
  csr_set(mstatus, PRIVILEGE_SUPERVISOR << MSTATUS_MPP_SHIFT);
}

_Noreturn void boot(unsigned long rom_hart_id, unsigned long device_tree, unsigned long fw_dynamic_info) {
  (void)rom_hart_id; /* mhartid says the same */
  unsigned long hart_id = csr_read(mhartid);
  console_init();
  print(FIRMWARE_NAME " %d.%d: SBI v1.0 firmware for one RV32 hart\n", FIRMWARE_VERSION_MAJOR,
        FIRMWARE_VERSION_MINOR);
  unsigned long entry = kernel_entry(fw_dynamic_info);
  reserve_firmware_memory(device_tree);
  configure_hart();
  print(FIRMWARE_NAME ": starting the S-mode kernel at 0x%08lx (hart %lu, device tree at 0x%08lx)\n", entry,
        hart_id, device_tree);
  enter_supervisor(hart_id, device_tree, entry);
}
