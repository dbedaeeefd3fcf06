/*
 * The C library functions the compiler may call on its own even in a freestanding program
 * (structure copies, zeroing). The firmware is built with -fno-tree-loop-distribute-patterns, so
 * these loops stay loops instead of becoming calls to themselves.
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *destination, const void *source, size_t count) {
  uint8_t *to = destination;
  const uint8_t *from = source;
  while (count-- > 0) *to++ = *from++;
  return destination;
}

void *memmove(void *destination, const void *source, size_t count) {
  uint8_t *to = destination;
  const uint8_t *from = source;
  if (to <= from || to >= from + count) return memcpy(destination, source, count);
  while (count-- > 0) to[count] = from[count];
  return destination;
}

void *memset(void *destination, int value, size_t count) {
  uint8_t *to = destination;
  while (count-- > 0) *to++ = (uint8_t)value;
  return destination;
}
