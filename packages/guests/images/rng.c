/* rng: reads entropy from virtio-rng and prints a digest of it (the digest differs run to run). */
#include <stdio.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define ENTROPY_BYTES 256u

static struct ftvm_rng_device rng;
static uint8_t entropy[ENTROPY_BYTES];

int main(void) {
  int result = ftvm_rng_open(&rng);
  if (result != FTVM_VIRTIO_OK) {
    printf("rng: cannot open virtio-rng: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  printf("rng: virtio-rng found\n");
  printf("[nondet] rng: in slot %lu, irq %lu\n", (unsigned long)rng.device.slot, (unsigned long)rng.device.irq);
  result = ftvm_rng_read(&rng, entropy, ENTROPY_BYTES);
  if (result != FTVM_VIRTIO_OK) {
    printf("rng: read failed: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  /* FNV-1a over the bytes, and how many distinct byte values appeared. */
  uint32_t digest = 0x811c9dc5u;
  bool seen[256] = {false};
  uint32_t distinct = 0;
  for (uint32_t i = 0; i < ENTROPY_BYTES; i++) {
    digest = (digest ^ entropy[i]) * 0x01000193u;
    if (!seen[entropy[i]]) {
      seen[entropy[i]] = true;
      distinct++;
    }
  }
  printf("rng: read %lu bytes\n", (unsigned long)ENTROPY_BYTES);
  printf("[nondet] rng: digest 0x%08lx, %lu distinct byte values\n", (unsigned long)digest,
         (unsigned long)distinct);
  /* 256 random bytes show far more than 64 distinct values (expected ~162). */
  bool looks_random = distinct > 64;
  printf("rng: bytes look random: %s\n", looks_random ? "yes" : "no");
  return looks_random ? 0 : 1;
}
