/*
 * sbi-test: an S-mode program that checks the SBI firmware underneath it, as a kernel would use
 * it. It prints through the legacy console_putchar, asks the base extension what is there, takes
 * a supervisor timer interrupt and a software interrupt (IPI), fences, asks HSM about its hart,
 * checks that the firmware reserved its memory in the device tree, and ends with SRST: a shutdown
 * with no reason (exit status 0), or, as the kernel command line asks, a shutdown for a system
 * failure ("sbi-test=failure", exit status 1) or a cold reboot ("sbi-test=reboot": the board
 * starts again, and so does this test, forever). Every line it prints is the same on every run; a
 * check that fails ends the run with exit status 3.
 *
 * The SBI constants are written out here from the SBI specification, not shared with the
 * firmware, so that a wrong constant there shows up as a failure here.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SBI_EXT_BASE 0x10
#define SBI_EXT_TIME 0x54494d45
#define SBI_EXT_IPI 0x735049
#define SBI_EXT_RFENCE 0x52464e43
#define SBI_EXT_HSM 0x48534d
#define SBI_EXT_SRST 0x53525354
#define SBI_EXT_MADE_UP 0x0abcdef0

#define SBI_LEGACY_SET_TIMER 0x00
#define SBI_LEGACY_CONSOLE_PUTCHAR 0x01
#define SBI_LEGACY_CONSOLE_GETCHAR 0x02
#define SBI_LEGACY_CLEAR_IPI 0x03
#define SBI_LEGACY_SEND_IPI 0x04
#define SBI_LEGACY_REMOTE_FENCE_I 0x05
#define SBI_LEGACY_REMOTE_SFENCE_VMA 0x06

#define SIP_SSIP (1UL << 1)
#define SIP_STIP (1UL << 5)
#define SSTATUS_SIE (1UL << 1)
#define SCAUSE_INTERRUPT (1UL << 31)
#define INTERRUPT_SOFTWARE 1
#define INTERRUPT_TIMER 5

#define TIMEBASE_HZ 10000000ULL

/* A failed check powers off through the test finisher itself, with a status SRST cannot give. */
#define TEST_FINISHER 0x00100000UL
#define FAILED_CHECK_STATUS 3

/* An address no device answers on the board (QEMU virt and ftvm), to read a hart mask from. */
#define UNMAPPED_ADDRESS 0x00080000UL

#define STRINGIFY(x) #x
#define csr_read(csr)                                                \
  ({                                                                 \
    unsigned long csr_value_;                                        \
    __asm__ volatile("csrr %0, " STRINGIFY(csr) : "=r"(csr_value_)); \
    csr_value_;                                                      \
  })
#define csr_set(csr, bits) __asm__ volatile("csrs " STRINGIFY(csr) ", %0" : : "rK"(bits) : "memory")
#define csr_clear(csr, bits) __asm__ volatile("csrc " STRINGIFY(csr) ", %0" : : "rK"(bits) : "memory")

struct sbiret {
  long error;
  long value;
};

static struct sbiret sbi_call(unsigned long extension, unsigned long function, unsigned long arg0,
                              unsigned long arg1, unsigned long arg2, unsigned long arg3,
                              unsigned long arg4) {
  register unsigned long a0 __asm__("a0") = arg0;
  register unsigned long a1 __asm__("a1") = arg1;
  register unsigned long a2 __asm__("a2") = arg2;
  register unsigned long a3 __asm__("a3") = arg3;
  register unsigned long a4 __asm__("a4") = arg4;
  register unsigned long a6 __asm__("a6") = function;
  register unsigned long a7 __asm__("a7") = extension;
  __asm__ volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a2), "r"(a3), "r"(a4), "r"(a6), "r"(a7) : "memory");
  return (struct sbiret){(long)a0, (long)a1};
}

/* A legacy (v0.1) call: one result, in a0. */
static long legacy_call(unsigned long extension, unsigned long arg0, unsigned long arg1) {
  register unsigned long a0 __asm__("a0") = arg0;
  register unsigned long a1 __asm__("a1") = arg1;
  register unsigned long a7 __asm__("a7") = extension;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a7) : "memory");
  return (long)a0;
}

/* Console ------------------------------------------------------------------------------------- */

static void put_char(char c) {
  legacy_call(SBI_LEGACY_CONSOLE_PUTCHAR, (unsigned char)c, 0);
}

static void put_unsigned(unsigned long value, unsigned int base, int width) {
  char digits[16];
  int count = 0;
  do {
    digits[count++] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value != 0);
  while (count < width) digits[count++] = '0';
  while (count > 0) put_char(digits[--count]);
}

/* printf's %s, %d, %ld, %u, %lu, %x, %lx, with a zero-padded width (%08lx). */
static void print(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void print(const char *format, ...) {
  va_list args;
  va_start(args, format);
  for (const char *p = format; *p != '\0'; p++) {
    if (*p != '%') {
      if (*p == '\n') put_char('\r');
      put_char(*p);
      continue;
    }
    p++;
    int width = 0;
    while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    bool is_long = *p == 'l';
    if (is_long) p++;
    if (*p == 's') {
      for (const char *s = va_arg(args, const char *); *s != '\0'; s++) put_char(*s);
    } else if (*p == 'd') {
      long value = is_long ? va_arg(args, long) : va_arg(args, int);
      if (value < 0) put_char('-');
      put_unsigned(value < 0 ? -(unsigned long)value : (unsigned long)value, 10, width);
    } else if (*p == 'u' || *p == 'x') {
      unsigned long value = is_long ? va_arg(args, unsigned long) : va_arg(args, unsigned int);
      put_unsigned(value, *p == 'u' ? 10 : 16, width);
    }
  }
  va_end(args);
}

static const char *yes_no(bool value) {
  return value ? "yes" : "no";
}

_Noreturn static void exit_failed(void) {
  *(volatile uint32_t *)TEST_FINISHER = (FAILED_CHECK_STATUS << 16) | 0x3333;
  for (;;) {
  }
}

/* Ends the run when a check fails, saying which. */
static void check(bool ok, const char *what) {
  if (ok) return;
  print("sbi-test: FAILED: %s\n", what);
  exit_failed();
}

/* Interrupts ------------------------------------------------------------------------------------ */

static volatile unsigned int timer_interrupts;
static volatile unsigned int software_interrupts;
static volatile uint64_t timer_interrupt_time;

static uint64_t read_time(void) {
  uint32_t high, low;
  do {
    high = csr_read(timeh);
    low = csr_read(time);
  } while (high != csr_read(timeh));
  return (uint64_t)high << 32 | low;
}

static struct sbiret set_timer(uint64_t when) {
  return sbi_call(SBI_EXT_TIME, 0, (uint32_t)when, (uint32_t)(when >> 32), 0, 0, 0);
}

void handle_trap(void);
void handle_trap(void) {
  unsigned long cause = csr_read(scause);
  if (cause == (SCAUSE_INTERRUPT | INTERRUPT_TIMER)) {
    timer_interrupt_time = read_time();
    timer_interrupts++;
    set_timer(UINT64_MAX); /* the only way S-mode clears STIP */
    return;
  }
  if (cause == (SCAUSE_INTERRUPT | INTERRUPT_SOFTWARE)) {
    software_interrupts++;
    csr_clear(sip, SIP_SSIP);
    return;
  }
  print("sbi-test: FAILED: unexpected trap (scause 0x%08lx, sepc 0x%08lx, stval 0x%08lx)\n", cause,
        csr_read(sepc), csr_read(stval));
  exit_failed();
}

static void interrupts_on(void) {
  csr_set(sstatus, SSTATUS_SIE);
}

static void interrupts_off(void) {
  csr_clear(sstatus, SSTATUS_SIE);
}

static bool pending(unsigned long bits) {
  return (csr_read(sip) & bits) != 0;
}

/* Waits (with wfi) for a timer interrupt; false when none came within a second. */
static bool wait_for_timer_interrupt(unsigned int count_before) {
  uint64_t give_up = read_time() + TIMEBASE_HZ;
  while (timer_interrupts == count_before) {
    if (read_time() > give_up) return false;
    __asm__ volatile("wfi");
  }
  return true;
}

/* The device tree --------------------------------------------------------------------------------- */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static bool strings_equal(const char *a, const char *b) {
  while (*a != '\0' && *a == *b) a++, b++;
  return *a == *b;
}

static bool contains(const char *text, const char *word) {
  for (; *text != '\0'; text++) {
    const char *t = text, *w = word;
    while (*w != '\0' && *t == *w) t++, w++;
    if (*w == '\0') return true;
  }
  return false;
}

/* Whether the blob's memory reservation block has an entry that covers [start, start + size). */
static bool reserved(const uint8_t *blob, uint64_t start, uint64_t size) {
  for (const uint8_t *entry = blob + get32(blob + 16);; entry += 16) {
    uint64_t address = get64(entry), length = get64(entry + 8);
    if (address == 0 && length == 0) return false;
    if (address <= start && start + size <= address + length) return true;
  }
}

/* /chosen/bootargs, or "" (a blob as QEMU writes it: one root, properties before subnodes). */
static const char *boot_arguments(const uint8_t *blob) {
  const uint8_t *p = blob + get32(blob + 8);
  const char *strings = (const char *)blob + get32(blob + 12);
  int depth = 0;
  bool in_chosen = false;
  for (;;) {
    uint32_t token = get32(p);
    p += 4;
    if (token == 1) { /* FDT_BEGIN_NODE */
      const char *name = (const char *)p;
      depth++;
      in_chosen = depth == 2 && strings_equal(name, "chosen");
      while (*p != '\0') p++;
      p = (const uint8_t *)(((uintptr_t)p + 4) & ~(uintptr_t)3);
    } else if (token == 2) { /* FDT_END_NODE */
      depth--;
      in_chosen = false;
    } else if (token == 3) { /* FDT_PROP */
      uint32_t length = get32(p);
      const char *name = strings + get32(p + 4);
      if (in_chosen && strings_equal(name, "bootargs")) return (const char *)p + 8;
      p += 8 + ((length + 3) & ~3u);
    } else if (token != 4) { /* FDT_END, or not a device tree */
      return "";
    }
  }
}

/* The checks ------------------------------------------------------------------------------------ */

static void check_base(void) {
  struct sbiret version = sbi_call(SBI_EXT_BASE, 0, 0, 0, 0, 0, 0);
  print("sbi-test: SBI specification v%lu.%lu\n", ((unsigned long)version.value >> 24) & 0x7f,
        (unsigned long)version.value & 0xffffff);
  struct sbiret id = sbi_call(SBI_EXT_BASE, 1, 0, 0, 0, 0, 0);
  struct sbiret implementation_version = sbi_call(SBI_EXT_BASE, 2, 0, 0, 0, 0, 0);
  print("sbi-test: implementation id 0x%lx, version 0x%lx\n", (unsigned long)id.value,
        (unsigned long)implementation_version.value);
  print("sbi-test: mvendorid 0x%lx, marchid 0x%lx, mimpid 0x%lx\n",
        (unsigned long)sbi_call(SBI_EXT_BASE, 4, 0, 0, 0, 0, 0).value,
        (unsigned long)sbi_call(SBI_EXT_BASE, 5, 0, 0, 0, 0, 0).value,
        (unsigned long)sbi_call(SBI_EXT_BASE, 6, 0, 0, 0, 0, 0).value);
  static const struct {
    const char *name;
    unsigned long id;
  } extensions[] = {
      {"TIME", SBI_EXT_TIME}, {"IPI", SBI_EXT_IPI},
      {"RFENCE", SBI_EXT_RFENCE}, {"SRST", SBI_EXT_SRST},
      {"HSM", SBI_EXT_HSM}, {"legacy console_putchar", SBI_LEGACY_CONSOLE_PUTCHAR},
      {"made-up 0x0abcdef0", SBI_EXT_MADE_UP},
  };
  for (size_t i = 0; i < sizeof extensions / sizeof extensions[0]; i++) {
    struct sbiret probe = sbi_call(SBI_EXT_BASE, 3, extensions[i].id, 0, 0, 0, 0);
    print("sbi-test: probe %s: error %ld, value %ld\n", extensions[i].name, probe.error, probe.value);
  }
  print("sbi-test: call to the made-up extension: error %ld\n",
        sbi_call(SBI_EXT_MADE_UP, 0, 0, 0, 0, 0, 0).error);
  print("sbi-test: base function 7: error %ld\n", sbi_call(SBI_EXT_BASE, 7, 0, 0, 0, 0, 0).error);
}

static void check_console(void) {
  print("sbi-test: every line here came through the legacy console_putchar\n");
  print("sbi-test: legacy console_getchar with no input: %ld\n",
        legacy_call(SBI_LEGACY_CONSOLE_GETCHAR, 0, 0));
}

static void check_counters(void) {
  /* Each read traps (illegal instruction) unless mcounteren lets S-mode read the counter. */
  (void)csr_read(cycle);
  (void)csr_read(instret);
  uint64_t before = read_time();
  uint64_t after = read_time();
  print("sbi-test: time, cycle and instret are readable from S-mode; time goes forward: %s\n",
        yes_no(after >= before));
}

static void check_timer(void) {
  csr_set(sie, SIP_STIP);

  interrupts_off();
  check(set_timer(0).error == 0, "set_timer(0)");
  bool pending_at_once = pending(SIP_STIP);
  set_timer(UINT64_MAX);
  print("sbi-test: a timer set in the past is pending at once: %s; set_timer withdraws it: %s\n",
        yes_no(pending_at_once), yes_no(!pending(SIP_STIP)));

  unsigned int before = timer_interrupts;
  uint64_t deadline = read_time() + TIMEBASE_HZ / 200; /* 5 ms */
  set_timer(deadline);
  interrupts_on();
  bool arrived = wait_for_timer_interrupt(before);
  interrupts_off();
  print("sbi-test: timer interrupt 5 ms ahead arrived: %s, not early: %s\n", yes_no(arrived),
        yes_no(arrived && timer_interrupt_time >= deadline));

  before = timer_interrupts;
  deadline = read_time() + TIMEBASE_HZ / 500; /* 2 ms */
  legacy_call(SBI_LEGACY_SET_TIMER, (uint32_t)deadline, (uint32_t)(deadline >> 32));
  interrupts_on();
  arrived = wait_for_timer_interrupt(before);
  interrupts_off();
  print("sbi-test: timer interrupt from the legacy set_timer arrived: %s, not early: %s\n", yes_no(arrived),
        yes_no(arrived && timer_interrupt_time >= deadline));
}

static void check_ipi(void) {
  csr_set(sie, SIP_SSIP);
  interrupts_off();

  struct sbiret sent = sbi_call(SBI_EXT_IPI, 0, 1, 0, 0, 0, 0);
  print("sbi-test: send_ipi to hart 0: error %ld, SSIP pending: %s\n", sent.error, yes_no(pending(SIP_SSIP)));
  unsigned int before = software_interrupts;
  interrupts_on();
  interrupts_off();
  print("sbi-test: software interrupt taken: %s\n", yes_no(software_interrupts == before + 1));

  sent = sbi_call(SBI_EXT_IPI, 0, 0, -1UL, 0, 0, 0);
  print("sbi-test: send_ipi to every hart (base -1): error %ld, SSIP pending: %s\n", sent.error,
        yes_no(pending(SIP_SSIP)));
  csr_clear(sip, SIP_SSIP);
  print("sbi-test: send_ipi to hart 1: error %ld; with base 1: error %ld\n",
        sbi_call(SBI_EXT_IPI, 0, 2, 0, 0, 0, 0).error, sbi_call(SBI_EXT_IPI, 0, 1, 1, 0, 0, 0).error);

  unsigned long hart_mask = 1;
  long legacy = legacy_call(SBI_LEGACY_SEND_IPI, (unsigned long)&hart_mask, 0);
  print("sbi-test: legacy send_ipi: %ld, SSIP pending: %s\n", legacy, yes_no(pending(SIP_SSIP)));
  long cleared = legacy_call(SBI_LEGACY_CLEAR_IPI, 0, 0);
  long cleared_again = legacy_call(SBI_LEGACY_CLEAR_IPI, 0, 0);
  print("sbi-test: legacy clear_ipi: %ld, then %ld\n", cleared, cleared_again);
  print("sbi-test: legacy send_ipi with a mask at an unmapped address: %ld\n",
        legacy_call(SBI_LEGACY_SEND_IPI, UNMAPPED_ADDRESS, 0));
  check(!pending(SIP_SSIP), "no IPI after a failed legacy send_ipi");
}

static void check_rfence(void) {
  print("sbi-test: remote_fence_i: %ld, remote_sfence_vma: %ld, remote_sfence_vma_asid: %ld\n",
        sbi_call(SBI_EXT_RFENCE, 0, 1, 0, 0, 0, 0).error, sbi_call(SBI_EXT_RFENCE, 1, 1, 0, 0, -1UL, 0).error,
        sbi_call(SBI_EXT_RFENCE, 2, 1, 0, 0, -1UL, 1).error);
  print("sbi-test: remote_hfence_gvma (no H extension): %ld\n",
        sbi_call(SBI_EXT_RFENCE, 3, 1, 0, 0, 0, 0).error);
  unsigned long hart_mask = 1;
  print("sbi-test: legacy remote_fence_i: %ld, legacy remote_sfence_vma: %ld\n",
        legacy_call(SBI_LEGACY_REMOTE_FENCE_I, (unsigned long)&hart_mask, 0),
        legacy_call(SBI_LEGACY_REMOTE_SFENCE_VMA, (unsigned long)&hart_mask, 0));
}

static void check_hsm(void) {
  struct sbiret status = sbi_call(SBI_EXT_HSM, 2, 0, 0, 0, 0, 0);
  print("sbi-test: hart_get_status(0): error %ld, status %ld\n", status.error, status.value);
  print("sbi-test: hart_get_status(1): error %ld\n", sbi_call(SBI_EXT_HSM, 2, 1, 0, 0, 0, 0).error);
  print("sbi-test: hart_start(0): error %ld\n", sbi_call(SBI_EXT_HSM, 0, 0, 0x80400000UL, 0, 0, 0).error);

  /* A retentive suspend returns once an enabled interrupt is pending: here the timer's. */
  interrupts_off();
  csr_set(sie, SIP_STIP);
  set_timer(read_time() + TIMEBASE_HZ / 1000);
  struct sbiret suspended = sbi_call(SBI_EXT_HSM, 3, 0, 0, 0, 0, 0);
  print("sbi-test: hart_suspend(retentive): error %ld, timer interrupt pending after it: %s\n",
        suspended.error, yes_no(pending(SIP_STIP)));
  set_timer(UINT64_MAX);
  print("sbi-test: hart_suspend(non-retentive): error %ld; hart_suspend(reserved type 1): error %ld\n",
        sbi_call(SBI_EXT_HSM, 3, 0x80000000UL, 0, 0, 0, 0).error,
        sbi_call(SBI_EXT_HSM, 3, 1, 0, 0, 0, 0).error);
}

static void check_srst(void) {
  print("sbi-test: system_reset(reserved type 3): error %ld; (shutdown, reserved reason 2): error %ld\n",
        sbi_call(SBI_EXT_SRST, 0, 3, 0, 0, 0, 0).error, sbi_call(SBI_EXT_SRST, 0, 0, 2, 0, 0, 0).error);
}

void main(unsigned long hart_id, unsigned long device_tree);
void main(unsigned long hart_id, unsigned long device_tree) {
  const uint8_t *blob = (const uint8_t *)device_tree;
  print("sbi-test: running in S-mode on hart %lu\n", hart_id);
  check_base();
  check_console();
  check_counters();
  check_timer();
  check_ipi();
  check_rfence();
  check_hsm();
  check_srst();
  print("sbi-test: the device tree reserves the firmware's first page (0x80000000): %s\n",
        yes_no(reserved(blob, 0x80000000UL, 0x1000)));

  const char *arguments = boot_arguments(blob);
  struct sbiret reset;
  if (contains(arguments, "sbi-test=reboot")) {
    print("sbi-test: system_reset(cold reboot, no reason)\n");
    reset = sbi_call(SBI_EXT_SRST, 0, 1, 0, 0, 0, 0);
  } else {
    bool failure = contains(arguments, "sbi-test=failure");
    print("sbi-test: system_reset(shutdown, %s)\n", failure ? "system failure" : "no reason");
    reset = sbi_call(SBI_EXT_SRST, 0, 0, failure ? 1 : 0, 0, 0, 0);
  }
  print("sbi-test: FAILED: system_reset returned error %ld\n", reset.error);
  exit_failed();
}
