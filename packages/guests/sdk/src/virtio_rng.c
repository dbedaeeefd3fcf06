/* virtio-rng driver (virtio 1.x, 5.4). */
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

int ftvm_rng_open(struct ftvm_rng_device *rng) {
  memset(rng, 0, sizeof *rng);
  int result = ftvm_virtio_find(FTVM_VIRTIO_DEVICE_RNG, 0, &rng->device);
  if (result != FTVM_VIRTIO_OK) return result;
  result = ftvm_virtio_negotiate(&rng->device, 0);
  if (result != FTVM_VIRTIO_OK) return result;
  result = ftvm_virtqueue_setup(&rng->device, &rng->queue, 0);
  if (result != FTVM_VIRTIO_OK) {
    ftvm_virtio_fail(&rng->device);
    return result;
  }
  ftvm_virtio_enable_interrupt(&rng->device);
  ftvm_virtio_driver_ok(&rng->device);
  return FTVM_VIRTIO_OK;
}

int ftvm_rng_read(struct ftvm_rng_device *rng, void *buffer, uint32_t length) {
  uint8_t *bytes = buffer;
  uint32_t empty_replies = 0;
  while (length > 0) {
    struct ftvm_virtio_buffer request = {bytes, length, true};
    int head = ftvm_virtqueue_add(&rng->queue, &request, 1);
    if (head < 0) return head;
    ftvm_virtqueue_notify(&rng->queue);
    ftvm_virtqueue_wait(&rng->queue);
    uint16_t used_head;
    uint32_t written = 0;
    if (!ftvm_virtqueue_take_used(&rng->queue, &used_head, &written)) return FTVM_VIRTIO_DEVICE_ERROR;
    if (written == 0 && ++empty_replies > 1000) return FTVM_VIRTIO_DEVICE_ERROR;
    if (written > length) written = length;
    bytes += written;
    length -= written;
  }
  return FTVM_VIRTIO_OK;
}
