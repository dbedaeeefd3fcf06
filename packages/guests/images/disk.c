/*
 * disk: writes patterned blocks to the virtio-blk disk, reads them back, checks and checksums them,
 * reads past the end (the device must refuse), and flushes. Expects a zero-filled disk of at least
 * 1 MiB; leaves sector n of the first 64 filled with disk_pattern(n, i).
 */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define FIRST_RUN_SECTORS 64u
#define SECOND_RUN_START 100u
#define SECOND_RUN_SECTORS 300u /* more than one request's worth */
#define SECTOR FTVM_BLOCK_SECTOR_BYTES

static struct ftvm_block_device block;
static uint8_t write_buffer[SECOND_RUN_SECTORS * SECTOR];
static uint8_t read_buffer[SECOND_RUN_SECTORS * SECTOR];

static uint8_t disk_pattern(uint32_t sector, uint32_t offset) {
  return (uint8_t)((sector * 31u + offset * 7u) ^ 0x5au);
}

static uint32_t checksum(const uint8_t *bytes, uint32_t length) {
  uint32_t hash = 0x811c9dc5u;
  for (uint32_t i = 0; i < length; i++) hash = (hash ^ bytes[i]) * 0x01000193u;
  return hash;
}

static void fill(uint32_t first_sector, uint32_t sectors) {
  for (uint32_t s = 0; s < sectors; s++) {
    for (uint32_t i = 0; i < SECTOR; i++) write_buffer[s * SECTOR + i] = disk_pattern(first_sector + s, i);
  }
}

static bool check(const char *what, int result) {
  if (result != FTVM_VIRTIO_OK) {
    printf("disk: %s failed: %s\n", what, ftvm_virtio_describe(result));
    return false;
  }
  return true;
}

/* A raw request the driver's own range check would refuse: the device must answer IOERR. */
static uint8_t read_past_end(void) {
  static struct ftvm_block_request request;
  request.header.type = 0; /* IN */
  request.header.reserved = 0;
  request.header.sector = block.capacity_sectors;
  request.status = 0xff;
  struct ftvm_virtio_buffer buffers[3] = {
      {&request.header, sizeof request.header, false},
      {read_buffer, SECTOR, true},
      {&request.status, 1, true},
  };
  int head = ftvm_virtqueue_add(&block.queue, buffers, 3);
  if (head < 0) return 0xfe;
  ftvm_virtqueue_notify(&block.queue);
  ftvm_virtqueue_wait(&block.queue);
  uint16_t used_head;
  uint32_t written;
  if (!ftvm_virtqueue_take_used(&block.queue, &used_head, &written)) return 0xfd;
  return request.status;
}

int main(void) {
  int result = ftvm_block_open(&block);
  if (!check("open", result)) return 1;
  printf("disk: virtio-blk with %llu sectors (%llu KiB)%s\n", (unsigned long long)block.capacity_sectors,
         (unsigned long long)(block.capacity_sectors / 2), block.read_only ? ", read-only" : "");
  printf("[nondet] disk: in slot %lu, irq %lu, flush %s\n", (unsigned long)block.device.slot,
         (unsigned long)block.device.irq, block.can_flush ? "offered" : "not offered");
  if (block.capacity_sectors < 2048) {
    printf("disk: need at least 1 MiB\n");
    return 1;
  }

  /* A never-written sector reads as zeros. */
  if (!check("read", ftvm_block_read(&block, 1000, read_buffer, 1))) return 1;
  bool zeros = true;
  for (uint32_t i = 0; i < SECTOR; i++) zeros = zeros && read_buffer[i] == 0;
  printf("disk: unwritten sector reads as zeros: %s\n", zeros ? "yes" : "no");

  fill(0, FIRST_RUN_SECTORS);
  if (!check("write", ftvm_block_write(&block, 0, write_buffer, FIRST_RUN_SECTORS))) return 1;
  memset(read_buffer, 0, sizeof read_buffer);
  if (!check("read", ftvm_block_read(&block, 0, read_buffer, FIRST_RUN_SECTORS))) return 1;
  bool first_ok = memcmp(read_buffer, write_buffer, FIRST_RUN_SECTORS * SECTOR) == 0;
  printf("disk: wrote and read back %lu sectors at 0: %s, checksum 0x%08lx\n", (unsigned long)FIRST_RUN_SECTORS,
         first_ok ? "match" : "MISMATCH", (unsigned long)checksum(read_buffer, FIRST_RUN_SECTORS * SECTOR));

  fill(SECOND_RUN_START, SECOND_RUN_SECTORS);
  if (!check("write", ftvm_block_write(&block, SECOND_RUN_START, write_buffer, SECOND_RUN_SECTORS))) return 1;
  memset(read_buffer, 0, sizeof read_buffer);
  if (!check("read", ftvm_block_read(&block, SECOND_RUN_START, read_buffer, SECOND_RUN_SECTORS))) return 1;
  bool second_ok = memcmp(read_buffer, write_buffer, SECOND_RUN_SECTORS * SECTOR) == 0;
  printf("disk: wrote and read back %lu sectors at %lu: %s, checksum 0x%08lx\n",
         (unsigned long)SECOND_RUN_SECTORS, (unsigned long)SECOND_RUN_START, second_ok ? "match" : "MISMATCH",
         (unsigned long)checksum(read_buffer, SECOND_RUN_SECTORS * SECTOR));

  /* The last sector is in range; one past it is not. */
  uint64_t last = block.capacity_sectors - 1;
  memset(write_buffer, 0xa5, SECTOR);
  bool last_ok = check("write", ftvm_block_write(&block, last, write_buffer, 1)) &&
                 check("read", ftvm_block_read(&block, last, read_buffer, 1)) &&
                 memcmp(read_buffer, write_buffer, SECTOR) == 0;
  printf("disk: last sector written and read back: %s\n", last_ok ? "yes" : "no");
  printf("disk: driver refuses a request past the end: %s\n",
         ftvm_block_submit(&block, &(struct ftvm_block_request){0}, false, block.capacity_sectors, read_buffer, 1) ==
                 FTVM_VIRTIO_INVALID
             ? "yes"
             : "no");
  uint8_t status = read_past_end();
  printf("disk: device answers a read past the end with status %u (%s)\n", status,
         status == 1 ? "IOERR" : "unexpected");

  if (!check("flush", ftvm_block_flush(&block))) return 1;
  bool ok = zeros && first_ok && second_ok && last_ok && status == 1;
  printf("disk: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
