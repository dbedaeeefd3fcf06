/*
 * The SBI calls: an ecall from S-mode with the extension id in a7, the function id in a6 and the
 * arguments in a0-a5. SBI v0.2+ extensions return an error in a0 and a value in a1; the legacy
 * v0.1 extensions (ids 0x00-0x0f) return one value in a0 and leave a1 alone.
 *
 * There is one hart, hart 0: "remote" operations are done locally.
 */
#include "firmware.h"

/* SBI specification v1.0, implemented by ftvm-sbi 0.1. */
#define SBI_SPEC_VERSION ((1UL << 24) | 0)
/* "ftvm" in ASCII: far from the small numbers the SBI specification assigns to projects. */
#define SBI_IMPLEMENTATION_ID 0x6674766dUL
#define SBI_IMPLEMENTATION_VERSION ((FIRMWARE_VERSION_MAJOR << 16) | FIRMWARE_VERSION_MINOR)

#define SBI_SUCCESS 0
#define SBI_ERR_FAILED -1
#define SBI_ERR_NOT_SUPPORTED -2
#define SBI_ERR_INVALID_PARAM -3
#define SBI_ERR_INVALID_ADDRESS -5
#define SBI_ERR_ALREADY_AVAILABLE -6

/* Extension ids. */
#define SBI_LEGACY_SET_TIMER 0x00
#define SBI_LEGACY_CONSOLE_PUTCHAR 0x01
#define SBI_LEGACY_CONSOLE_GETCHAR 0x02
#define SBI_LEGACY_CLEAR_IPI 0x03
#define SBI_LEGACY_SEND_IPI 0x04
#define SBI_LEGACY_REMOTE_FENCE_I 0x05
#define SBI_LEGACY_REMOTE_SFENCE_VMA 0x06
#define SBI_LEGACY_REMOTE_SFENCE_VMA_ASID 0x07
#define SBI_LEGACY_SHUTDOWN 0x08
#define SBI_LEGACY_LAST 0x0f
#define SBI_EXT_BASE 0x10
#define SBI_EXT_TIME 0x54494d45
#define SBI_EXT_IPI 0x735049
#define SBI_EXT_RFENCE 0x52464e43
#define SBI_EXT_HSM 0x48534d
#define SBI_EXT_SRST 0x53525354

/* Function ids. */
#define BASE_GET_SPEC_VERSION 0
#define BASE_GET_IMPL_ID 1
#define BASE_GET_IMPL_VERSION 2
#define BASE_PROBE_EXTENSION 3
#define BASE_GET_MVENDORID 4
#define BASE_GET_MARCHID 5
#define BASE_GET_MIMPID 6
#define TIME_SET_TIMER 0
#define IPI_SEND_IPI 0
#define RFENCE_FENCE_I 0
#define RFENCE_SFENCE_VMA 1
#define RFENCE_SFENCE_VMA_ASID 2
#define HSM_HART_START 0
#define HSM_HART_STOP 1
#define HSM_HART_GET_STATUS 2
#define HSM_HART_SUSPEND 3
#define SRST_SYSTEM_RESET 0

#define HSM_STATUS_STARTED 0
#define HSM_SUSPEND_DEFAULT_RETENTIVE 0x00000000UL
#define HSM_SUSPEND_DEFAULT_NON_RETENTIVE 0x80000000UL

#define SRST_TYPE_SHUTDOWN 0
#define SRST_TYPE_COLD_REBOOT 1
#define SRST_TYPE_WARM_REBOOT 2
#define SRST_REASON_NONE 0
#define SRST_REASON_SYSTEM_FAILURE 1

/* hart_mask_base that means "every hart", whatever hart_mask says. */
#define HART_MASK_BASE_ALL (~0UL)
#define ONLY_HART 0

struct sbiret {
  long error;
  unsigned long value;
};

static struct sbiret success(unsigned long value) {
  return (struct sbiret){SBI_SUCCESS, value};
}

static struct sbiret failure(long error) {
  return (struct sbiret){error, 0};
}

/* The timer --------------------------------------------------------------------------------- */

/*
 * Arms the supervisor timer: the machine timer fires at `when` (mtime ticks), and the trap
 * handler passes it on as STIP. A pending supervisor timer interrupt is withdrawn, as the SBI
 * specification wants.
 */
void set_timer(uint64_t when) {
  volatile uint32_t *mtimecmp = (volatile uint32_t *)CLINT_MTIMECMP;
  /* The high half goes first, with the low half at its maximum meanwhile, so that no mix of old
     and new halves is ever earlier than both values. */
  mtimecmp[0] = UINT32_MAX;
  mtimecmp[1] = (uint32_t)(when >> 32);
  mtimecmp[0] = (uint32_t)when;
  csr_clear(mip, MIP_STIP);
  csr_set(mie, MIP_MTIP);
}

/* Pushes the machine timer to the end of time (mtimecmp is 0 at reset, so MTIP starts pending). */
void disable_timer(void) {
  volatile uint32_t *mtimecmp = (volatile uint32_t *)CLINT_MTIMECMP;
  mtimecmp[0] = UINT32_MAX;
  mtimecmp[1] = UINT32_MAX;
  csr_clear(mie, MIP_MTIP);
}

static uint64_t timer_argument(const struct trap_frame *frame) {
  /* rv32: the 64-bit stime_value comes as a0 (low) and a1 (high). */
  return ((uint64_t)frame->a1 << 32) | frame->a0;
}

/* Harts and their masks ------------------------------------------------------------------------ */

/*
 * Whether hart_mask and hart_mask_base select the only hart; an error when they name harts that
 * do not exist.
 */
static long selects_only_hart(unsigned long hart_mask, unsigned long hart_mask_base, bool *selected) {
  *selected = false;
  if (hart_mask_base == HART_MASK_BASE_ALL) {
    *selected = true;
    return SBI_SUCCESS;
  }
  if (hart_mask == 0) return SBI_SUCCESS;
  if (hart_mask_base != ONLY_HART || (hart_mask & ~1UL) != 0) return SBI_ERR_INVALID_PARAM;
  *selected = true;
  return SBI_SUCCESS;
}

/*
 * The legacy extensions pass a hart mask by its address in S-mode's address space; 0 means every
 * hart (as the v0.1 firmware, BBL, read it). An address S-mode could not read is an error.
 */
static long legacy_selects_only_hart(unsigned long mask_address, bool *selected) {
  *selected = true;
  if (mask_address == 0) return SBI_SUCCESS;
  unsigned long hart_mask;
  if (read_word(mask_address, &hart_mask, MSTATUS_MPRV) != 0) return SBI_ERR_INVALID_ADDRESS;
  return selects_only_hart(hart_mask, 0, selected);
}

static void send_ipi_to_self(void) {
  csr_set(mip, MIP_SSIP);
}

static void fence_i(void) {
  __asm__ volatile("fence.i" : : : "memory");
}

/*
 * A remote sfence.vma on one hart is a local one. The whole TLB is flushed rather than the range:
 * always correct, and on these boards just as fast.
 */
static void sfence_vma(void) {
  __asm__ volatile("sfence.vma" : : : "memory");
}

static void sfence_vma_asid(unsigned long asid) {
  __asm__ volatile("sfence.vma zero, %0" : : "r"(asid) : "memory");
}

/* Extensions ---------------------------------------------------------------------------------- */

static bool extension_present(unsigned long id) {
  switch (id) {
    case SBI_LEGACY_SET_TIMER:
    case SBI_LEGACY_CONSOLE_PUTCHAR:
    case SBI_LEGACY_CONSOLE_GETCHAR:
    case SBI_LEGACY_CLEAR_IPI:
    case SBI_LEGACY_SEND_IPI:
    case SBI_LEGACY_REMOTE_FENCE_I:
    case SBI_LEGACY_REMOTE_SFENCE_VMA:
    case SBI_LEGACY_REMOTE_SFENCE_VMA_ASID:
    case SBI_LEGACY_SHUTDOWN:
    case SBI_EXT_BASE:
    case SBI_EXT_TIME:
    case SBI_EXT_IPI:
    case SBI_EXT_RFENCE:
    case SBI_EXT_HSM:
    case SBI_EXT_SRST:
      return true;
    default:
      return false;
  }
}

static struct sbiret base_call(unsigned long function, const struct trap_frame *frame) {
  switch (function) {
    case BASE_GET_SPEC_VERSION:
      return success(SBI_SPEC_VERSION);
    case BASE_GET_IMPL_ID:
      return success(SBI_IMPLEMENTATION_ID);
    case BASE_GET_IMPL_VERSION:
      return success(SBI_IMPLEMENTATION_VERSION);
    case BASE_PROBE_EXTENSION:
      return success(extension_present(frame->a0) ? 1 : 0);
    case BASE_GET_MVENDORID:
      return success(csr_read(mvendorid));
    case BASE_GET_MARCHID:
      return success(csr_read(marchid));
    case BASE_GET_MIMPID:
      return success(csr_read(mimpid));
    default:
      return failure(SBI_ERR_NOT_SUPPORTED);
  }
}

static struct sbiret time_call(unsigned long function, const struct trap_frame *frame) {
  if (function != TIME_SET_TIMER) return failure(SBI_ERR_NOT_SUPPORTED);
  set_timer(timer_argument(frame));
  return success(0);
}

static struct sbiret ipi_call(unsigned long function, const struct trap_frame *frame) {
  if (function != IPI_SEND_IPI) return failure(SBI_ERR_NOT_SUPPORTED);
  bool selected;
  long error = selects_only_hart(frame->a0, frame->a1, &selected);
  if (error != SBI_SUCCESS) return failure(error);
  if (selected) send_ipi_to_self();
  return success(0);
}

static struct sbiret rfence_call(unsigned long function, const struct trap_frame *frame) {
  /* The other functions fence hypervisor translations: there is no H extension. */
  if (function != RFENCE_FENCE_I && function != RFENCE_SFENCE_VMA && function != RFENCE_SFENCE_VMA_ASID)
    return failure(SBI_ERR_NOT_SUPPORTED);
  bool selected;
  long error = selects_only_hart(frame->a0, frame->a1, &selected);
  if (error != SBI_SUCCESS) return failure(error);
  if (!selected) return success(0);
  if (function == RFENCE_FENCE_I)
    fence_i();
  else if (function == RFENCE_SFENCE_VMA)
    sfence_vma();
  else
    sfence_vma_asid(frame->a4);
  return success(0);
}

static struct sbiret hsm_call(unsigned long function, const struct trap_frame *frame) {
  switch (function) {
    case HSM_HART_START:
      /* The only hart is running: it is the one asking. */
      return failure(frame->a0 == ONLY_HART ? SBI_ERR_ALREADY_AVAILABLE : SBI_ERR_INVALID_PARAM);
    case HSM_HART_STOP:
      /* Stopping the last hart would leave nothing to start it again. */
      return failure(SBI_ERR_FAILED);
    case HSM_HART_GET_STATUS:
      if (frame->a0 != ONLY_HART) return failure(SBI_ERR_INVALID_PARAM);
      return success(HSM_STATUS_STARTED);
    case HSM_HART_SUSPEND:
      if (frame->a0 == HSM_SUSPEND_DEFAULT_RETENTIVE) {
        /* Retentive: wait for an interrupt S-mode enabled (or the timer it armed), then return. */
        __asm__ volatile("wfi");
        return success(0);
      }
      if (frame->a0 == HSM_SUSPEND_DEFAULT_NON_RETENTIVE) return failure(SBI_ERR_NOT_SUPPORTED);
      return failure(SBI_ERR_INVALID_PARAM);
    default:
      return failure(SBI_ERR_NOT_SUPPORTED);
  }
}

static struct sbiret srst_call(unsigned long function, const struct trap_frame *frame) {
  if (function != SRST_SYSTEM_RESET) return failure(SBI_ERR_NOT_SUPPORTED);
  unsigned long type = frame->a0;
  unsigned long reason = frame->a1;
  if (reason != SRST_REASON_NONE && reason != SRST_REASON_SYSTEM_FAILURE)
    return failure(SBI_ERR_INVALID_PARAM);
  switch (type) {
    case SRST_TYPE_SHUTDOWN:
      power_off(reason == SRST_REASON_SYSTEM_FAILURE ? 1 : 0);
    case SRST_TYPE_COLD_REBOOT:
    case SRST_TYPE_WARM_REBOOT:
      reset_board();
    default:
      return failure(SBI_ERR_INVALID_PARAM);
  }
}

/* The legacy v0.1 calls: one result in a0. */
static long legacy_call(unsigned long extension, const struct trap_frame *frame) {
  bool selected;
  long error;
  switch (extension) {
    case SBI_LEGACY_SET_TIMER:
      set_timer(timer_argument(frame));
      return 0;
    case SBI_LEGACY_CONSOLE_PUTCHAR:
      console_putchar((int)frame->a0);
      return 0;
    case SBI_LEGACY_CONSOLE_GETCHAR:
      return console_getchar();
    case SBI_LEGACY_CLEAR_IPI: {
      /* 0 when no IPI was pending, 1 when one was. */
      bool pending = (csr_read(mip) & MIP_SSIP) != 0;
      csr_clear(mip, MIP_SSIP);
      return pending ? 1 : 0;
    }
    case SBI_LEGACY_SEND_IPI:
      error = legacy_selects_only_hart(frame->a0, &selected);
      if (error == SBI_SUCCESS && selected) send_ipi_to_self();
      return error;
    case SBI_LEGACY_REMOTE_FENCE_I:
      error = legacy_selects_only_hart(frame->a0, &selected);
      if (error == SBI_SUCCESS && selected) fence_i();
      return error;
    case SBI_LEGACY_REMOTE_SFENCE_VMA:
      error = legacy_selects_only_hart(frame->a0, &selected);
      if (error == SBI_SUCCESS && selected) sfence_vma();
      return error;
    case SBI_LEGACY_REMOTE_SFENCE_VMA_ASID:
      error = legacy_selects_only_hart(frame->a0, &selected);
      if (error == SBI_SUCCESS && selected) sfence_vma_asid(frame->a3);
      return error;
    case SBI_LEGACY_SHUTDOWN:
      power_off(0);
    default:
      return SBI_ERR_NOT_SUPPORTED;
  }
}

void handle_ecall(struct trap_frame *frame) {
  unsigned long extension = frame->a7;
  unsigned long function = frame->a6;
  if (extension <= SBI_LEGACY_LAST) {
    frame->a0 = (unsigned long)legacy_call(extension, frame);
    return;
  }
  struct sbiret result;
  switch (extension) {
    case SBI_EXT_BASE:
      result = base_call(function, frame);
      break;
    case SBI_EXT_TIME:
      result = time_call(function, frame);
      break;
    case SBI_EXT_IPI:
      result = ipi_call(function, frame);
      break;
    case SBI_EXT_RFENCE:
      result = rfence_call(function, frame);
      break;
    case SBI_EXT_HSM:
      result = hsm_call(function, frame);
      break;
    case SBI_EXT_SRST:
      result = srst_call(function, frame);
      break;
    default:
      result = failure(SBI_ERR_NOT_SUPPORTED);
      break;
  }
  frame->a0 = (unsigned long)result.error;
  frame->a1 = result.value;
}
