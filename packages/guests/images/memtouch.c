/*
 * memtouch: a guest whose RAM is full and keeps changing, for measuring live cloning (state
 * transfer): a pre-copy must move every page once, then keep up with a working set.
 *
 * 1. The free RAM runs from the end of the image (its heap included) to 2 MiB below the top of RAM
 *    (QEMU and ftvm put the device tree there, 2 MiB aligned), and never over the tree itself.
 *    Every word of it gets a non-zero value derived from its address, so no two pages are alike
 *    and none is a zero page a transfer could skip.
 * 2. Each round then rewrites a working set of MEMTOUCH_WORKING_SET_PAGES pages spread evenly over
 *    that area: word 0 of each is a counter that is incremented (so a stale copy stays wrong for
 *    good), the rest get values derived from the address and the round. Every
 *    MEMTOUCH_PRINT_EVERY rounds a line gives a checksum of the working set: a clone that missed or
 *    mangled one of those pages prints a different line than the original at the same round.
 * 3. Each round also checks MEMTOUCH_CHECK_PAGES_PER_ROUND pages of the whole area against what
 *    they must hold, sweeping all of it over and over, and stops with status 1 at a wrong word:
 *    that catches a lost page outside the working set too.
 *
 * It ends with status 0 after MEMTOUCH_ROUNDS rounds (long enough for minutes on an emulator);
 * "rounds=N" in /chosen/bootargs (QEMU: -append rounds=N) runs N rounds instead, for tests. The
 * lines up to round N are the same either way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftvm.h"

#ifndef MEMTOUCH_ROUNDS
#define MEMTOUCH_ROUNDS 1000000u
#endif
#ifndef MEMTOUCH_WORKING_SET_PAGES
#define MEMTOUCH_WORKING_SET_PAGES 256u
#endif
#ifndef MEMTOUCH_PRINT_EVERY
#define MEMTOUCH_PRINT_EVERY 64u
#endif
#ifndef MEMTOUCH_CHECK_PAGES_PER_ROUND
#define MEMTOUCH_CHECK_PAGES_PER_ROUND 16u
#endif

#define PAGE_BYTES 4096u
#define PAGE_WORDS (PAGE_BYTES / 4u)
#define MIB (1024u * 1024u)
/* QEMU's riscv_load_fdt: the tree sits at the top of RAM, aligned down to 2 MiB. */
#define TOP_RESERVED_BYTES (2u * MIB)

/* Odd multipliers: bijective on 32-bit words, so distinct word addresses give distinct values. */
#define FILL_STEP 0x9e3779b1u
#define ROUND_STEP 0x7f4a7c15u

extern char __heap_end[];

/* What the fill writes at `address`: (word index + 1) × odd constant, never 0 below 16 GiB. */
static inline uint32_t fill_value(uintptr_t address) {
  return (uint32_t)((address >> 2) + 1u) * FILL_STEP;
}

struct area {
  uint32_t *first;       /* page aligned */
  uint32_t pages;        /* pages in the area */
  uint32_t working_set;  /* pages in the working set */
  uint32_t stride;       /* the working set is pages 0, stride, 2 × stride, … */
};

static bool in_working_set(const struct area *area, uint32_t page) {
  return page % area->stride == 0 && page / area->stride < area->working_set;
}

static uint32_t *page_words(const struct area *area, uint32_t page) {
  return area->first + (size_t)page * PAGE_WORDS;
}

/* Writes `value`, value + FILL_STEP, … to [from, to); unrolled, as this is most of the start-up. */
static void fill_words(uint32_t *from, uint32_t *to, uint32_t value) {
  for (uint32_t *word = from; word < to; word += 8) {
    word[0] = value;
    word[1] = value + 1u * FILL_STEP;
    word[2] = value + 2u * FILL_STEP;
    word[3] = value + 3u * FILL_STEP;
    word[4] = value + 4u * FILL_STEP;
    word[5] = value + 5u * FILL_STEP;
    word[6] = value + 6u * FILL_STEP;
    word[7] = value + 7u * FILL_STEP;
    value += 8u * FILL_STEP;
  }
}

/* Round `round` of one working-set page: bump the counter, rewrite the rest from the round. */
static void rewrite_page(uint32_t *words, uint32_t round) {
  words[0] += 1u;
  uint32_t value = fill_value((uintptr_t)&words[1]) + round * ROUND_STEP;
  for (uint32_t i = 1; i < PAGE_WORDS; i++) {
    words[i] = value;
    value += FILL_STEP;
  }
}

/* Checks one page after `rounds` rounds; false (having said where) at the first wrong word. */
static bool check_page(const struct area *area, uint32_t page, uint32_t rounds) {
  const uint32_t *words = page_words(area, page);
  bool touched = in_working_set(area, page);
  uint32_t value = fill_value((uintptr_t)words);
  for (uint32_t i = 0; i < PAGE_WORDS; i++, value += FILL_STEP) {
    uint32_t expected = !touched ? value : i == 0 ? value + rounds : value + rounds * ROUND_STEP;
    if (words[i] != expected) {
      printf("memtouch: after round %lu, word at 0x%08lx is 0x%08lx, expected 0x%08lx\n", (unsigned long)rounds,
             (unsigned long)(uintptr_t)&words[i], (unsigned long)words[i], (unsigned long)expected);
      return false;
    }
  }
  return true;
}

static inline uint32_t rotate_left(uint32_t value, unsigned bits) {
  return (value << bits) | (value >> (32u - bits));
}

/*
 * MurmurHash3 (x86, 32-bit) over the working set's words, in page order. Not FNV-1a: its low bits
 * depend only on the words' low bits, which repeat every 64 rounds here.
 */
static uint32_t working_set_checksum(const struct area *area) {
  uint32_t hash = 0;
  for (uint32_t k = 0; k < area->working_set; k++) {
    const uint32_t *words = page_words(area, k * area->stride);
    for (uint32_t i = 0; i < PAGE_WORDS; i++) {
      hash ^= rotate_left(words[i] * 0xcc9e2d51u, 15) * 0x1b873593u;
      hash = rotate_left(hash, 13) * 5u + 0xe6546b64u;
    }
  }
  hash ^= area->working_set * PAGE_BYTES;
  hash ^= hash >> 16;
  hash *= 0x85ebca6bu;
  hash ^= hash >> 13;
  hash *= 0xc2b2ae35u;
  return hash ^ (hash >> 16);
}

static uint32_t rounds_from_bootargs(const struct ftvm_fdt *fdt) {
  uint32_t length;
  const char *bootargs = ftvm_fdt_property(fdt, ftvm_fdt_find_path(fdt, "/chosen"), "bootargs", &length);
  if (bootargs == NULL || length == 0 || bootargs[length - 1] != '\0') return MEMTOUCH_ROUNDS;
  const char *found = strstr(bootargs, "rounds=");
  if (found == NULL) return MEMTOUCH_ROUNDS;
  unsigned long value = strtoul(found + strlen("rounds="), NULL, 10);
  return value == 0 ? MEMTOUCH_ROUNDS : (uint32_t)value;
}

int main(void) {
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  uint64_t ram_base = 0;
  uint64_t ram_size = 0;
  if (fdt == NULL || !ftvm_fdt_reg(fdt, ftvm_fdt_find_path(fdt, "/memory"), 0, &ram_base, &ram_size)) {
    printf("memtouch: no /memory node in the device tree\n");
    return 1;
  }
  /* RV32: only the first 4 GiB of the address space are reachable. */
  uint64_t ram_end = ram_base + ram_size;
  if (ram_end > 0x100000000ull) ram_end = 0x100000000ull;
  uint64_t start = ((uintptr_t)__heap_end + PAGE_BYTES - 1u) & ~(uint64_t)(PAGE_BYTES - 1u);
  uint64_t end = ram_end >= TOP_RESERVED_BYTES ? ram_end - TOP_RESERVED_BYTES : 0;
  uint64_t tree = (uintptr_t)ftvm_boot_device_tree & ~(uint64_t)(PAGE_BYTES - 1u);
  if (tree >= start && tree < end) end = tree;
  end &= ~(uint64_t)(PAGE_BYTES - 1u);
  printf("memtouch: %llu MiB of RAM at 0x%08llx, free 0x%08llx-0x%08llx\n", (unsigned long long)(ram_size / MIB),
         (unsigned long long)ram_base, (unsigned long long)start, (unsigned long long)end);
  if (end <= start) {
    printf("memtouch: no free RAM\n");
    return 1;
  }

  struct area area = {.first = (uint32_t *)(uintptr_t)start, .pages = (uint32_t)((end - start) / PAGE_BYTES)};
  area.working_set = area.pages < MEMTOUCH_WORKING_SET_PAGES ? area.pages : MEMTOUCH_WORKING_SET_PAGES;
  area.stride = area.pages / area.working_set;

  uint64_t fill_start = ftvm_timer_now();
  fill_words(area.first, page_words(&area, area.pages), fill_value(start));
  uint64_t fill_ticks = ftvm_timer_now() - fill_start;
  uint64_t fill_us = fill_ticks / (FTVM_TIMER_TICKS_PER_SECOND / 1000000u);
  printf("memtouch: filled %llu MiB\n", (unsigned long long)((end - start) / MIB));
  printf("[nondet] memtouch: fill took %llu ms (%llu MiB/s)\n", (unsigned long long)(fill_us / 1000u),
         (unsigned long long)(fill_us == 0 ? 0 : (end - start) * 1000000u / fill_us / MIB));
  printf("memtouch: working set %lu pages (every %lu pages), checksum every %u rounds\n",
         (unsigned long)area.working_set, (unsigned long)area.stride, MEMTOUCH_PRINT_EVERY);

  uint32_t rounds = rounds_from_bootargs(fdt);
  uint32_t next_check = 0;
  uint32_t sweeps = 0;
  for (uint32_t round = 1; round <= rounds; round++) {
    for (uint32_t k = 0; k < area.working_set; k++) rewrite_page(page_words(&area, k * area.stride), round);
    for (uint32_t n = 0; n < MEMTOUCH_CHECK_PAGES_PER_ROUND; n++) {
      if (!check_page(&area, next_check, round)) return 1;
      if (++next_check == area.pages) {
        next_check = 0;
        sweeps++;
      }
    }
    if (round % MEMTOUCH_PRINT_EVERY == 0) {
      printf("memtouch: round %lu checksum 0x%08lx\n", (unsigned long)round,
             (unsigned long)working_set_checksum(&area));
    }
  }
  printf("memtouch: ok after %lu rounds, full sweeps checked: %lu\n", (unsigned long)rounds, (unsigned long)sweeps);
  return 0;
}
