/*
 * bench: a CoreMark-class CPU workload (linked lists, matrices, a state machine, CRC).
 *
 * Every iteration runs the same work on data rebuilt from the same seeds, so each iteration must
 * produce the same CRC, and that CRC is known (BENCH_EXPECTED_CRC): the run exits 0 only when every
 * iteration matched. The iteration count defaults to BENCH_DEFAULT_ITERATIONS (a few seconds on
 * QEMU) and can be set with "iterations=N" in /chosen/bootargs (QEMU: -append "iterations=N").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftvm.h"

#define BENCH_DEFAULT_ITERATIONS 6000u
#define BENCH_EXPECTED_CRC 0x0e779e6fu

#define LIST_NODES 96u
#define MATRIX_SIZE 18u
#define STATE_INPUT_BYTES 640u

/* Seeds come through volatiles so the compiler cannot fold the work away. */
static volatile uint32_t seed_list = 0x3415u;
static volatile uint32_t seed_matrix = 0x0066u;
static volatile uint32_t seed_state = 0x00a5u;

static uint32_t crc32_table[256];

static void crc32_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t value = i;
    for (int bit = 0; bit < 8; bit++) value = (value >> 1) ^ (0xedb88320u & (0u - (value & 1u)));
    crc32_table[i] = value;
  }
}

static uint32_t crc32_update(uint32_t crc, const void *data, size_t length) {
  const uint8_t *bytes = data;
  crc = ~crc;
  for (size_t i = 0; i < length; i++) crc = (crc >> 8) ^ crc32_table[(crc ^ bytes[i]) & 0xffu];
  return ~crc;
}

static uint32_t crc32_word(uint32_t crc, uint32_t word) {
  uint8_t bytes[4] = {(uint8_t)word, (uint8_t)(word >> 8), (uint8_t)(word >> 16), (uint8_t)(word >> 24)};
  return crc32_update(crc, bytes, 4);
}

/* A small linear congruential generator: deterministic data from a seed. */
static uint32_t next_random(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return *state >> 8;
}

/* ---- linked lists ---- */

struct list_node {
  struct list_node *next;
  int16_t value;
  uint16_t index;
};

static struct list_node list_pool[LIST_NODES];

static struct list_node *list_build(uint32_t seed) {
  uint32_t state = seed;
  struct list_node *head = NULL;
  for (uint32_t i = 0; i < LIST_NODES; i++) {
    struct list_node *node = &list_pool[i];
    node->value = (int16_t)(next_random(&state) & 0x7fffu);
    node->index = (uint16_t)i;
    node->next = head;
    head = node;
  }
  return head;
}

static struct list_node *list_reverse(struct list_node *head) {
  struct list_node *previous = NULL;
  while (head != NULL) {
    struct list_node *next = head->next;
    head->next = previous;
    previous = head;
    head = next;
  }
  return previous;
}

static struct list_node *list_find(struct list_node *head, int16_t value) {
  while (head != NULL && head->value != value) head = head->next;
  return head;
}

static int compare_by_value(const struct list_node *a, const struct list_node *b) {
  if (a->value != b->value) return a->value < b->value ? -1 : 1;
  return a->index < b->index ? -1 : (a->index > b->index ? 1 : 0);
}

static int compare_by_index(const struct list_node *a, const struct list_node *b) {
  return a->index < b->index ? -1 : (a->index > b->index ? 1 : 0);
}

/* Bottom-up merge sort of a singly linked list. */
static struct list_node *list_sort(struct list_node *head,
                                   int (*compare)(const struct list_node *, const struct list_node *)) {
  for (uint32_t width = 1;; width *= 2) {
    struct list_node *remaining = head;
    struct list_node *tail = NULL;
    uint32_t merges = 0;
    head = NULL;
    while (remaining != NULL) {
      merges++;
      struct list_node *left = remaining;
      uint32_t left_size = 0;
      struct list_node *right = remaining;
      while (left_size < width && right != NULL) {
        left_size++;
        right = right->next;
      }
      uint32_t right_size = width;
      while (left_size > 0 || (right_size > 0 && right != NULL)) {
        struct list_node *taken;
        if (left_size == 0) {
          taken = right;
          right = right->next;
          right_size--;
        } else if (right_size == 0 || right == NULL || compare(left, right) <= 0) {
          taken = left;
          left = left->next;
          left_size--;
        } else {
          taken = right;
          right = right->next;
          right_size--;
        }
        if (tail != NULL) tail->next = taken;
        else head = taken;
        tail = taken;
      }
      remaining = right;
    }
    if (tail != NULL) tail->next = NULL;
    if (merges <= 1) return head;
  }
}

static uint32_t bench_lists(uint32_t seed) {
  uint32_t crc = 0;
  struct list_node *head = list_build(seed);
  uint32_t state = seed ^ 0x5a5au;
  for (int round = 0; round < 8; round++) {
    /* Look for values that are (sometimes) present. */
    int16_t wanted = (round & 1) ? list_pool[next_random(&state) % LIST_NODES].value
                                 : (int16_t)(next_random(&state) & 0x7fffu);
    struct list_node *found = list_find(head, wanted);
    crc = crc32_word(crc, found != NULL ? found->index : 0xffffu);
    head = list_reverse(head);
    head = list_sort(head, compare_by_value);
    crc = crc32_word(crc, (uint32_t)(uint16_t)head->value);
    /* Perturb: negate every third value, then restore index order. */
    uint32_t position = 0;
    for (struct list_node *node = head; node != NULL; node = node->next, position++) {
      if (position % 3u == (uint32_t)round % 3u) node->value = (int16_t)(-node->value + round);
    }
    head = list_sort(head, compare_by_index);
  }
  for (struct list_node *node = head; node != NULL; node = node->next) {
    crc = crc32_word(crc, ((uint32_t)node->index << 16) | (uint16_t)node->value);
  }
  return crc;
}

/* ---- matrices ---- */

static int16_t matrix_a[MATRIX_SIZE][MATRIX_SIZE];
static int16_t matrix_b[MATRIX_SIZE][MATRIX_SIZE];
static int32_t matrix_c[MATRIX_SIZE][MATRIX_SIZE];

static uint32_t bench_matrices(uint32_t seed) {
  uint32_t state = seed;
  for (uint32_t i = 0; i < MATRIX_SIZE; i++) {
    for (uint32_t j = 0; j < MATRIX_SIZE; j++) {
      matrix_a[i][j] = (int16_t)((int32_t)(next_random(&state) & 0xfffu) - 0x800);
      matrix_b[i][j] = (int16_t)((int32_t)(next_random(&state) & 0xfffu) - 0x800);
    }
  }
  uint32_t crc = 0;
  for (int round = 0; round < 3; round++) {
    /* C = A * B */
    for (uint32_t i = 0; i < MATRIX_SIZE; i++) {
      for (uint32_t j = 0; j < MATRIX_SIZE; j++) {
        int32_t sum = 0;
        for (uint32_t k = 0; k < MATRIX_SIZE; k++) sum += (int32_t)matrix_a[i][k] * matrix_b[k][j];
        matrix_c[i][j] = sum;
      }
    }
    /* Fold C back into A (bit extraction keeps values small), add a constant to B. */
    int32_t total = 0;
    for (uint32_t i = 0; i < MATRIX_SIZE; i++) {
      for (uint32_t j = 0; j < MATRIX_SIZE; j++) {
        int32_t value = matrix_c[i][j];
        total += value >> 4;
        matrix_a[i][j] = (int16_t)(((value >> 3) & 0x7ff) - 0x400);
        matrix_b[i][j] = (int16_t)(matrix_b[i][j] + round - 1);
      }
    }
    crc = crc32_word(crc, (uint32_t)total);
    crc = crc32_update(crc, matrix_c, sizeof matrix_c);
  }
  return crc;
}

/* ---- state machine: classify comma-separated tokens as integer, decimal, scientific or invalid ---- */

enum token_state { STATE_START, STATE_SIGN, STATE_INTEGER, STATE_POINT, STATE_DECIMAL, STATE_EXPONENT,
                   STATE_EXPONENT_SIGN, STATE_SCIENTIFIC, STATE_INVALID, STATE_COUNT };

static char state_input[STATE_INPUT_BYTES + 1];

static void state_build(uint32_t seed) {
  static const char *const fragments[] = {"5012", "1234", "-874", "+122", "35.54", "0.0035", ".1", "-110.700",
                                          "5.5e+3", "-.123e-2", "-87e+832", "+0.6e-12", "T0.3e-1F", "-T.T++Tq",
                                          "1T3.4e4z", "34.0e-T^"};
  uint32_t state = seed;
  uint32_t length = 0;
  while (length < STATE_INPUT_BYTES - 12) {
    const char *fragment = fragments[next_random(&state) & 15u];
    size_t fragment_length = strlen(fragment);
    memcpy(state_input + length, fragment, fragment_length);
    length += (uint32_t)fragment_length;
    state_input[length++] = ',';
  }
  state_input[length] = '\0';
}

static enum token_state state_step(enum token_state state, char c) {
  bool digit = c >= '0' && c <= '9';
  switch (state) {
    case STATE_START:
      if (digit) return STATE_INTEGER;
      if (c == '+' || c == '-') return STATE_SIGN;
      if (c == '.') return STATE_POINT;
      return STATE_INVALID;
    case STATE_SIGN:
      if (digit) return STATE_INTEGER;
      if (c == '.') return STATE_POINT;
      return STATE_INVALID;
    case STATE_INTEGER:
      if (digit) return STATE_INTEGER;
      if (c == '.') return STATE_POINT;
      if (c == 'e' || c == 'E') return STATE_EXPONENT;
      return STATE_INVALID;
    case STATE_POINT:
    case STATE_DECIMAL:
      if (digit) return STATE_DECIMAL;
      if (c == 'e' || c == 'E') return STATE_EXPONENT;
      return STATE_INVALID;
    case STATE_EXPONENT:
      if (c == '+' || c == '-') return STATE_EXPONENT_SIGN;
      if (digit) return STATE_SCIENTIFIC;
      return STATE_INVALID;
    case STATE_EXPONENT_SIGN:
    case STATE_SCIENTIFIC:
      if (digit) return STATE_SCIENTIFIC;
      return STATE_INVALID;
    default:
      return STATE_INVALID;
  }
}

static uint32_t bench_state_machine(uint32_t seed) {
  state_build(seed);
  uint32_t final_counts[STATE_COUNT] = {0};
  uint32_t transitions[STATE_COUNT] = {0};
  uint32_t crc = 0;
  for (int round = 0; round < 4; round++) {
    enum token_state state = STATE_START;
    for (const char *p = state_input; *p != '\0'; p++) {
      if (*p == ',') {
        final_counts[state]++;
        state = STATE_START;
        continue;
      }
      enum token_state next = state_step(state, *p);
      if (next != state) transitions[next]++;
      state = next;
    }
    /* Corrupt every 7th character differently each round, as CoreMark does. */
    for (uint32_t i = (uint32_t)round; i < STATE_INPUT_BYTES && state_input[i] != '\0'; i += 7) {
      if (state_input[i] != ',') state_input[i] ^= (char)(round + 1);
    }
  }
  crc = crc32_update(crc, final_counts, sizeof final_counts);
  crc = crc32_update(crc, transitions, sizeof transitions);
  return crc;
}

static uint32_t bench_iteration(void) {
  uint32_t crc = 0;
  crc = crc32_word(crc, bench_lists(seed_list));
  crc = crc32_word(crc, bench_matrices(seed_matrix));
  crc = crc32_word(crc, bench_state_machine(seed_state));
  return crc;
}

static uint32_t iterations_from_bootargs(void) {
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  if (fdt == NULL) return BENCH_DEFAULT_ITERATIONS;
  uint32_t length;
  const char *bootargs = ftvm_fdt_property(fdt, ftvm_fdt_find_path(fdt, "/chosen"), "bootargs", &length);
  if (bootargs == NULL || length == 0 || bootargs[length - 1] != '\0') return BENCH_DEFAULT_ITERATIONS;
  const char *found = strstr(bootargs, "iterations=");
  if (found == NULL) return BENCH_DEFAULT_ITERATIONS;
  unsigned long value = strtoul(found + strlen("iterations="), NULL, 10);
  return value == 0 || value > 100000000ul ? BENCH_DEFAULT_ITERATIONS : (uint32_t)value;
}

int main(void) {
  crc32_init();
  uint32_t iterations = iterations_from_bootargs();
  printf("bench: %lu iterations of lists, matrices, state machine, crc\n", (unsigned long)iterations);
  uint64_t start_ticks = ftvm_timer_now();
  uint32_t first = 0;
  uint32_t mismatches = 0;
  uint32_t combined = 0;
  for (uint32_t i = 0; i < iterations; i++) {
    uint32_t crc = bench_iteration();
    if (i == 0) first = crc;
    if (crc != BENCH_EXPECTED_CRC) mismatches++;
    combined = crc32_word(combined, crc);
  }
  uint64_t elapsed_ticks = ftvm_timer_now() - start_ticks;
  printf("bench: iteration crc 0x%08lx (expected 0x%08lx)\n", (unsigned long)first,
         (unsigned long)BENCH_EXPECTED_CRC);
  printf("bench: combined crc 0x%08lx\n", (unsigned long)combined);
  printf("[nondet] bench: %llu mtime ticks (%llu ms)\n", (unsigned long long)elapsed_ticks,
         (unsigned long long)(elapsed_ticks / (FTVM_TIMER_TICKS_PER_SECOND / 1000u)));
  if (mismatches != 0) {
    printf("bench: FAILED, %lu iterations gave a wrong crc\n", (unsigned long)mismatches);
    return 1;
  }
  printf("bench: ok\n");
  return 0;
}
