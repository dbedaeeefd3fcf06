/*
 * dmarace: races its own disk DMA. It reads a buffer while a read request into that buffer is in
 * flight, and changes a buffer while a write request from it is in flight, and prints hashes of
 * what it saw. Those hashes depend on when the device touched memory: on QEMU they vary run to run
 * ([nondet] lines); on ftvm, DMA lands at a recorded instruction boundary, so a replay prints the
 * same hashes as the recorded run. The final contents are checked deterministically.
 */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define RACE_SECTORS 128u
#define RACE_BYTES (RACE_SECTORS * FTVM_BLOCK_SECTOR_BYTES)
#define WRITE_RACE_SECTOR 512u

static struct ftvm_block_device block;
static uint8_t pattern[RACE_BYTES];
static volatile uint32_t race_buffer[RACE_BYTES / 4];
static uint8_t check_buffer[RACE_BYTES];

static uint32_t fnv_word(uint32_t hash, uint32_t word) {
  for (int i = 0; i < 4; i++) hash = (hash ^ ((word >> (8 * i)) & 0xffu)) * 0x01000193u;
  return hash;
}

int main(void) {
  int result = ftvm_block_open(&block);
  if (result != FTVM_VIRTIO_OK) {
    printf("dmarace: cannot open virtio-blk: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  printf("dmarace: virtio-blk with %llu sectors\n", (unsigned long long)block.capacity_sectors);
  for (uint32_t i = 0; i < RACE_BYTES; i++) pattern[i] = (uint8_t)(i * 13u + (i >> 9) + 1u);
  result = ftvm_block_write(&block, 0, pattern, RACE_SECTORS);
  if (result != FTVM_VIRTIO_OK) {
    printf("dmarace: write failed: %s\n", ftvm_virtio_describe(result));
    return 1;
  }

  /* Race 1: watch the buffer while the device fills it. */
  for (uint32_t i = 0; i < RACE_BYTES / 4; i++) race_buffer[i] = 0xeeeeeeeeu;
  struct ftvm_block_request request;
  result = ftvm_block_submit(&block, &request, false, 0, (void *)race_buffer, RACE_SECTORS);
  if (result != FTVM_VIRTIO_OK) {
    printf("dmarace: submit failed: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  uint32_t seen_hash = 0x811c9dc5u;
  uint32_t polls = 0;
  uint32_t fresh_words = 0;
  while (!request.done) {
    for (uint32_t i = 0; i < RACE_BYTES / 4; i += 128) {
      uint32_t word = race_buffer[i];
      seen_hash = fnv_word(seen_hash, word);
      if (word != 0xeeeeeeeeu) fresh_words++;
    }
    polls++;
    ftvm_block_poll(&block);
  }
  bool read_ok = request.status == 0 && memcmp((const void *)race_buffer, pattern, RACE_BYTES) == 0;
  printf("dmarace: read race done; buffer matches the disk afterwards: %s\n", read_ok ? "yes" : "no");
  printf("[nondet] dmarace: read race saw hash 0x%08lx over %lu polls (%lu words already filled)\n",
         (unsigned long)seen_hash, (unsigned long)polls, (unsigned long)fresh_words);

  /* Race 2: change the buffer while the device reads it for a write. */
  for (uint32_t i = 0; i < RACE_BYTES / 4; i++) race_buffer[i] = 0x11111111u * (i & 15u);
  result = ftvm_block_submit(&block, &request, true, WRITE_RACE_SECTOR, (void *)race_buffer, RACE_SECTORS);
  if (result != FTVM_VIRTIO_OK) {
    printf("dmarace: submit failed: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  uint32_t stores = 0;
  while (!request.done) {
    race_buffer[(stores * 97u) % (RACE_BYTES / 4)] = 0xdead0000u | (stores & 0xffffu);
    stores++;
    ftvm_block_poll(&block);
  }
  result = ftvm_block_read(&block, WRITE_RACE_SECTOR, check_buffer, RACE_SECTORS);
  uint32_t written_hash = 0x811c9dc5u;
  for (uint32_t i = 0; i < RACE_BYTES; i += 4) {
    uint32_t word;
    memcpy(&word, check_buffer + i, 4);
    written_hash = fnv_word(written_hash, word);
  }
  bool write_ok = result == FTVM_VIRTIO_OK && request.status == 0;
  printf("dmarace: write race done; disk readable afterwards: %s\n", write_ok ? "yes" : "no");
  printf("[nondet] dmarace: write race left hash 0x%08lx after %lu racing stores\n", (unsigned long)written_hash,
         (unsigned long)stores);
  printf("dmarace: %s\n", read_ok && write_ok ? "ok" : "FAILED");
  return read_ok && write_ok ? 0 : 1;
}
