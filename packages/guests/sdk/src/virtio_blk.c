/* virtio-blk driver (virtio 1.x, 5.2). */
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define BLOCK_F_RO (1ull << 5)
#define BLOCK_F_FLUSH (1ull << 9)
#define BLOCK_TYPE_IN 0u
#define BLOCK_TYPE_OUT 1u
#define BLOCK_TYPE_FLUSH 4u
#define BLOCK_STATUS_OK 0u

int ftvm_block_open(struct ftvm_block_device *block) {
  memset(block, 0, sizeof *block);
  int result = ftvm_virtio_find(FTVM_VIRTIO_DEVICE_BLOCK, 0, &block->device);
  if (result != FTVM_VIRTIO_OK) return result;
  result = ftvm_virtio_negotiate(&block->device, BLOCK_F_RO | BLOCK_F_FLUSH);
  if (result != FTVM_VIRTIO_OK) return result;
  result = ftvm_virtqueue_setup(&block->device, &block->queue, 0);
  if (result != FTVM_VIRTIO_OK) {
    ftvm_virtio_fail(&block->device);
    return result;
  }
  block->capacity_sectors = ftvm_virtio_config_read64(&block->device, 0);
  block->can_flush = (block->device.features & BLOCK_F_FLUSH) != 0;
  block->read_only = (block->device.features & BLOCK_F_RO) != 0;
  ftvm_virtio_enable_interrupt(&block->device);
  ftvm_virtio_driver_ok(&block->device);
  return FTVM_VIRTIO_OK;
}

static int submit(struct ftvm_block_device *block, struct ftvm_block_request *request, uint32_t type,
                  uint64_t sector, void *buffer, uint32_t sectors) {
  request->header.type = type;
  request->header.reserved = 0;
  request->header.sector = sector;
  request->status = 0xff;
  request->done = false;
  struct ftvm_virtio_buffer buffers[3];
  uint32_t count = 0;
  buffers[count++] = (struct ftvm_virtio_buffer){&request->header, sizeof request->header, false};
  if (sectors > 0) {
    buffers[count++] =
        (struct ftvm_virtio_buffer){buffer, sectors * FTVM_BLOCK_SECTOR_BYTES, type == BLOCK_TYPE_IN};
  }
  buffers[count++] = (struct ftvm_virtio_buffer){&request->status, 1, true};
  int head = ftvm_virtqueue_add(&block->queue, buffers, count);
  if (head < 0) return head;
  request->head = head;
  block->in_flight[head] = request;
  ftvm_virtqueue_notify(&block->queue);
  return FTVM_VIRTIO_OK;
}

int ftvm_block_submit(struct ftvm_block_device *block, struct ftvm_block_request *request, bool is_write,
                      uint64_t sector, void *buffer, uint32_t sectors) {
  if (sectors == 0 || sectors > FTVM_BLOCK_REQUEST_SECTORS_MAX || sector > block->capacity_sectors ||
      sectors > block->capacity_sectors - sector) {
    return FTVM_VIRTIO_INVALID;
  }
  return submit(block, request, is_write ? BLOCK_TYPE_OUT : BLOCK_TYPE_IN, sector, buffer, sectors);
}

uint32_t ftvm_block_poll(struct ftvm_block_device *block) {
  uint32_t finished = 0;
  uint16_t head;
  uint32_t written;
  while (ftvm_virtqueue_take_used(&block->queue, &head, &written)) {
    struct ftvm_block_request *request = block->in_flight[head];
    block->in_flight[head] = NULL;
    if (request == NULL) continue;
    request->head = -1;
    request->done = true;
    finished++;
  }
  return finished;
}

struct wait_state {
  struct ftvm_block_device *block;
  struct ftvm_block_request *request;
};

static bool request_done(void *context) {
  struct wait_state *state = context;
  ftvm_block_poll(state->block);
  return state->request->done;
}

int ftvm_block_wait(struct ftvm_block_device *block, struct ftvm_block_request *request) {
  struct wait_state state = {block, request};
  ftvm_wait_until(request_done, &state);
  return request->status == BLOCK_STATUS_OK ? FTVM_VIRTIO_OK : FTVM_VIRTIO_DEVICE_ERROR;
}

static int transfer(struct ftvm_block_device *block, bool is_write, uint64_t sector, uint8_t *buffer,
                    uint32_t sectors) {
  while (sectors > 0) {
    uint32_t chunk = sectors < FTVM_BLOCK_REQUEST_SECTORS_MAX ? sectors : FTVM_BLOCK_REQUEST_SECTORS_MAX;
    struct ftvm_block_request request;
    int result = ftvm_block_submit(block, &request, is_write, sector, buffer, chunk);
    if (result != FTVM_VIRTIO_OK) return result;
    result = ftvm_block_wait(block, &request);
    if (result != FTVM_VIRTIO_OK) return result;
    sector += chunk;
    buffer += chunk * FTVM_BLOCK_SECTOR_BYTES;
    sectors -= chunk;
  }
  return FTVM_VIRTIO_OK;
}

int ftvm_block_read(struct ftvm_block_device *block, uint64_t sector, void *buffer, uint32_t sectors) {
  return transfer(block, false, sector, buffer, sectors);
}

int ftvm_block_write(struct ftvm_block_device *block, uint64_t sector, const void *buffer, uint32_t sectors) {
  if (block->read_only) return FTVM_VIRTIO_DEVICE_ERROR;
  return transfer(block, true, sector, (uint8_t *)buffer, sectors);
}

int ftvm_block_flush(struct ftvm_block_device *block) {
  if (!block->can_flush) return FTVM_VIRTIO_OK;
  struct ftvm_block_request request;
  int result = submit(block, &request, BLOCK_TYPE_FLUSH, 0, NULL, 0);
  if (result != FTVM_VIRTIO_OK) return result;
  return ftvm_block_wait(block, &request);
}
