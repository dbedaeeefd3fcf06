/*
 * A CPU-bound benchmark guest in the spirit of CoreMark: linked-list search and sort, integer
 * matrix multiply, a string state machine and CRC-16, repeated ITERATIONS times. Prints a checksum
 * over the UART so a run can be checked, then returns (start.S powers off). Built by build.sh.
 */
#include <stdint.h>

#ifndef ITERATIONS
#define ITERATIONS 2000
#endif

#define UART_LSR ((volatile uint8_t *)0x10000005)
/* Waits for the transmit holding register to be empty (LSR.THRE), as a real driver does: QEMU
   drops bytes written while its transmitter is busy (its output is a pipe in the tests). */
static void put_char(char c) {
  while ((*UART_LSR & 0x20) == 0) {
  }
  *(volatile uint8_t *)0x10000000 = (uint8_t)c;
}
/* Waits until every byte has left the UART (LSR.TEMT), before powering off. */
static void flush_output(void) {
  while ((*UART_LSR & 0x40) == 0) {
  }
}
static void put_string(const char *s) { while (*s) put_char(*s++); }
static void put_hex(uint32_t v) {
  for (int i = 28; i >= 0; i -= 4) put_char("0123456789abcdef"[(v >> i) & 15]);
}

static uint16_t crc16_update(uint16_t crc, uint8_t data) {
  crc ^= data;
  for (int i = 0; i < 8; i++) crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
  return crc;
}

/* ---- linked list ---- */
typedef struct node {
  struct node *next;
  int32_t key;
  int32_t value;
} node_t;

#define LIST_SIZE 64
static node_t nodes[LIST_SIZE];

static node_t *list_build(uint32_t seed) {
  node_t *head = 0;
  for (int i = 0; i < LIST_SIZE; i++) {
    seed = seed * 1103515245u + 12345u;
    nodes[i].key = (int32_t)((seed >> 8) & 0xfff);
    nodes[i].value = i;
    nodes[i].next = head;
    head = &nodes[i];
  }
  return head;
}

/* Merge sort on the list by key. */
static node_t *list_sort(node_t *list) {
  int insize = 1;
  for (;;) {
    node_t *p = list, *tail = 0;
    list = 0;
    int merges = 0;
    while (p) {
      merges++;
      node_t *q = p;
      int psize = 0;
      for (int i = 0; i < insize && q; i++) {
        psize++;
        q = q->next;
      }
      int qsize = insize;
      while (psize > 0 || (qsize > 0 && q)) {
        node_t *e;
        if (psize == 0) {
          e = q; q = q->next; qsize--;
        } else if (qsize == 0 || !q || p->key <= q->key) {
          e = p; p = p->next; psize--;
        } else {
          e = q; q = q->next; qsize--;
        }
        if (tail) tail->next = e; else list = e;
        tail = e;
      }
      p = q;
    }
    tail->next = 0;
    if (merges <= 1) return list;
    insize *= 2;
  }
}

static uint32_t list_work(uint32_t seed) {
  node_t *list = list_sort(list_build(seed));
  uint32_t sum = 0;
  for (node_t *n = list; n; n = n->next) sum = sum * 31 + (uint32_t)n->key + (uint32_t)n->value;
  /* search */
  for (int32_t k = 0; k < 0x1000; k += 0x100) {
    for (node_t *n = list; n; n = n->next) {
      if (n->key >= k) {
        sum += (uint32_t)n->value;
        break;
      }
    }
  }
  return sum;
}

/* ---- matrix ---- */
#define N 12
static int32_t ma[N][N], mb[N][N], mc[N][N];

static uint32_t matrix_work(uint32_t seed) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      seed = seed * 1664525u + 1013904223u;
      ma[i][j] = (int32_t)(seed >> 20) - 2048;
      mb[i][j] = (int32_t)(seed & 0xfff) - 2048;
    }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      int32_t acc = 0;
      for (int k = 0; k < N; k++) acc += ma[i][k] * mb[k][j];
      mc[i][j] = acc;
    }
  uint32_t sum = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) sum ^= (uint32_t)mc[i][j] + (uint32_t)(i * N + j);
  return sum;
}

/* ---- state machine over a text ---- */
static const char text[] =
    "5012,1.25e3,-77,0x1f,3.14159,+42,abc,7e-2,,-0.5,1000000,12.,.5,9e9e9,--1,0,42.0e+1";

enum state { START, INTEGER, FLOAT, EXPONENT, SCIENTIFIC, INVALID };

static uint32_t state_work(uint32_t seed) {
  uint32_t counts[6] = {0, 0, 0, 0, 0, 0};
  enum state s = START;
  for (const char *p = text;; p++) {
    char c = *p;
    if (c == ',' || c == 0) {
      counts[s]++;
      s = START;
      if (c == 0) break;
      continue;
    }
    switch (s) {
      case START:
        if (c >= '0' && c <= '9') s = INTEGER;
        else if (c == '+' || c == '-') s = INTEGER;
        else if (c == '.') s = FLOAT;
        else s = INVALID;
        break;
      case INTEGER:
        if (c == '.') s = FLOAT;
        else if (c == 'e' || c == 'E') s = EXPONENT;
        else if (!(c >= '0' && c <= '9')) s = INVALID;
        break;
      case FLOAT:
        if (c == 'e' || c == 'E') s = EXPONENT;
        else if (!(c >= '0' && c <= '9')) s = INVALID;
        break;
      case EXPONENT:
        if ((c >= '0' && c <= '9') || c == '+' || c == '-') s = SCIENTIFIC;
        else s = INVALID;
        break;
      case SCIENTIFIC:
        if (!(c >= '0' && c <= '9')) s = INVALID;
        break;
      default:
        break;
    }
  }
  uint32_t sum = seed;
  for (int i = 0; i < 6; i++) sum = sum * 7 + counts[i];
  return sum;
}

int main(void) {
  uint16_t crc = 0;
  uint32_t seed = 1;
  for (int iteration = 0; iteration < ITERATIONS; iteration++) {
    uint32_t a = list_work(seed);
    uint32_t b = matrix_work(seed ^ a);
    uint32_t c = state_work(b);
    uint32_t mixed = a ^ (b * 3) ^ (c * 5);
    for (int i = 0; i < 4; i++) crc = crc16_update(crc, (uint8_t)(mixed >> (8 * i)));
    seed = mixed + (uint32_t)iteration;
  }
  put_string("workload checksum ");
  put_hex(crc);
  put_string(" ");
  put_hex(seed);
  put_char('\n');
  flush_output();
  return 0;
}
