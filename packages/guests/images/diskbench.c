/*
 * diskbench: disk throughput. Writes the first 16 MiB of the virtio-blk disk (or all of a smaller
 * one) in 64 KiB requests, flushes, reads it back and checks every byte. The times are host
 * dependent and printed on "[nondet] " lines; the rest is the same on every run. Expects a disk of
 * at least 1 MiB.
 */
#include <stdio.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define SECTOR FTVM_BLOCK_SECTOR_BYTES
#define REQUEST_SECTORS 128u /* 64 KiB */
#define TOTAL_SECTORS_MAX 32768u /* 16 MiB */

static struct ftvm_block_device block;
static uint8_t buffer[REQUEST_SECTORS * SECTOR];

static uint8_t pattern(uint32_t sector, uint32_t offset) { return (uint8_t)((sector * 13u) ^ (offset * 101u) ^ 0xc3u); }

static void fill(uint32_t first_sector) {
  for (uint32_t s = 0; s < REQUEST_SECTORS; s++) {
    for (uint32_t i = 0; i < SECTOR; i++) buffer[s * SECTOR + i] = pattern(first_sector + s, i);
  }
}

static bool matches(uint32_t first_sector) {
  for (uint32_t s = 0; s < REQUEST_SECTORS; s++) {
    for (uint32_t i = 0; i < SECTOR; i++) {
      if (buffer[s * SECTOR + i] != pattern(first_sector + s, i)) return false;
    }
  }
  return true;
}

/* Throughput in KiB/s for `sectors` moved in `ticks` of the 10 MHz timer. */
static unsigned long kib_per_second(uint32_t sectors, uint64_t ticks) {
  if (ticks == 0) ticks = 1;
  return (unsigned long)((uint64_t)sectors * SECTOR / 1024u * FTVM_TIMER_TICKS_PER_SECOND / ticks);
}

int main(void) {
  int result = ftvm_block_open(&block);
  if (result != FTVM_VIRTIO_OK) {
    printf("diskbench: cannot open virtio-blk: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  if (block.capacity_sectors < 2048u || block.read_only) {
    printf("diskbench: need a writable disk of at least 1 MiB\n");
    return 1;
  }
  uint32_t total = block.capacity_sectors < TOTAL_SECTORS_MAX ? (uint32_t)block.capacity_sectors : TOTAL_SECTORS_MAX;
  total -= total % REQUEST_SECTORS;
  printf("diskbench: %lu KiB in %lu KiB requests\n", (unsigned long)(total / 2u), (unsigned long)(REQUEST_SECTORS / 2u));

  uint64_t start = ftvm_timer_now();
  for (uint32_t sector = 0; sector < total; sector += REQUEST_SECTORS) {
    fill(sector);
    if (ftvm_block_write(&block, sector, buffer, REQUEST_SECTORS) != FTVM_VIRTIO_OK) {
      printf("diskbench: write at sector %lu failed\n", (unsigned long)sector);
      return 1;
    }
  }
  if (block.can_flush && ftvm_block_flush(&block) != FTVM_VIRTIO_OK) {
    printf("diskbench: flush failed\n");
    return 1;
  }
  uint64_t written = ftvm_timer_now();
  bool ok = true;
  for (uint32_t sector = 0; sector < total; sector += REQUEST_SECTORS) {
    if (ftvm_block_read(&block, sector, buffer, REQUEST_SECTORS) != FTVM_VIRTIO_OK || !matches(sector)) ok = false;
  }
  uint64_t read = ftvm_timer_now();
  printf("[nondet] diskbench: write %lu KiB/s, read %lu KiB/s\n", kib_per_second(total, written - start),
         kib_per_second(total, read - written));
  printf("diskbench: read back what was written: %s\n", ok ? "yes" : "NO");
  printf("diskbench: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
