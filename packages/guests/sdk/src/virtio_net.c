/* virtio-net driver (virtio 1.x, 5.1): queue 0 receives, queue 1 transmits; one buffer per frame. */
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define NET_F_MAC (1ull << 5)
#define RECEIVE_QUEUE 0u
#define TRANSMIT_QUEUE 1u

static const uint8_t default_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static int post_receive_buffer(struct ftvm_net_device *net, uint16_t buffer) {
  struct ftvm_virtio_buffer piece = {net->receive_buffers[buffer], FTVM_NET_BUFFER_BYTES, true};
  int head = ftvm_virtqueue_add(&net->receive_queue, &piece, 1);
  if (head < 0) return head;
  net->receive_buffer_of_head[head] = buffer;
  return FTVM_VIRTIO_OK;
}

int ftvm_net_device_open(struct ftvm_net_device *net) {
  memset(net, 0, sizeof *net);
  int result = ftvm_virtio_find(FTVM_VIRTIO_DEVICE_NET, 0, &net->device);
  if (result != FTVM_VIRTIO_OK) return result;
  result = ftvm_virtio_negotiate(&net->device, NET_F_MAC);
  if (result != FTVM_VIRTIO_OK) return result;
  result = ftvm_virtqueue_setup(&net->device, &net->receive_queue, RECEIVE_QUEUE);
  if (result == FTVM_VIRTIO_OK) result = ftvm_virtqueue_setup(&net->device, &net->transmit_queue, TRANSMIT_QUEUE);
  if (result != FTVM_VIRTIO_OK) {
    ftvm_virtio_fail(&net->device);
    return result;
  }
  if ((net->device.features & NET_F_MAC) != 0) {
    for (uint32_t i = 0; i < 6; i++) net->mac[i] = ftvm_virtio_config_read8(&net->device, i);
  } else {
    memcpy(net->mac, default_mac, sizeof net->mac);
  }
  uint16_t receive_buffers = net->receive_queue.size < FTVM_NET_RX_BUFFERS ? net->receive_queue.size
                                                                            : FTVM_NET_RX_BUFFERS;
  for (uint16_t i = 0; i < receive_buffers; i++) post_receive_buffer(net, i);
  for (uint32_t i = 0; i < FTVM_NET_TX_BUFFERS; i++) net->transmit_free[i] = (uint8_t)i;
  net->transmit_free_count = FTVM_NET_TX_BUFFERS;
  ftvm_virtio_enable_interrupt(&net->device);
  ftvm_virtio_driver_ok(&net->device);
  ftvm_virtqueue_notify(&net->receive_queue);
  return FTVM_VIRTIO_OK;
}

bool ftvm_net_device_receive(struct ftvm_net_device *net, uint8_t **frame, uint32_t *length, uint16_t *token) {
  for (;;) {
    uint16_t head;
    uint32_t written;
    if (!ftvm_virtqueue_take_used(&net->receive_queue, &head, &written)) return false;
    uint16_t buffer = net->receive_buffer_of_head[head];
    if (written <= FTVM_NET_HEADER_BYTES || written > FTVM_NET_BUFFER_BYTES) {
      /* Nothing usable: give the buffer straight back. */
      ftvm_net_device_release(net, buffer);
      continue;
    }
    *frame = net->receive_buffers[buffer] + FTVM_NET_HEADER_BYTES;
    *length = written - FTVM_NET_HEADER_BYTES;
    *token = buffer;
    return true;
  }
}

void ftvm_net_device_release(struct ftvm_net_device *net, uint16_t token) {
  if (token >= FTVM_NET_RX_BUFFERS) return;
  if (post_receive_buffer(net, token) == FTVM_VIRTIO_OK) ftvm_virtqueue_notify(&net->receive_queue);
}

static void reclaim_transmitted(struct ftvm_net_device *net) {
  uint16_t head;
  uint32_t written;
  while (ftvm_virtqueue_take_used(&net->transmit_queue, &head, &written)) {
    net->transmit_free[net->transmit_free_count++] = (uint8_t)net->transmit_buffer_of_head[head];
  }
}

void ftvm_net_device_flush(struct ftvm_net_device *net) {
  reclaim_transmitted(net);
  while (net->transmit_free_count < FTVM_NET_TX_BUFFERS) {
    ftvm_virtqueue_wait(&net->transmit_queue);
    reclaim_transmitted(net);
  }
}

int ftvm_net_device_send(struct ftvm_net_device *net, const void *frame, uint32_t length) {
  if (length == 0 || length > FTVM_NET_FRAME_BYTES_MAX) return FTVM_VIRTIO_INVALID;
  reclaim_transmitted(net);
  while (net->transmit_free_count == 0) {
    ftvm_virtqueue_wait(&net->transmit_queue);
    reclaim_transmitted(net);
  }
  uint8_t buffer = net->transmit_free[--net->transmit_free_count];
  uint8_t *bytes = net->transmit_buffers[buffer];
  memset(bytes, 0, FTVM_NET_HEADER_BYTES); /* no checksum offload, no segmentation */
  memcpy(bytes + FTVM_NET_HEADER_BYTES, frame, length);
  struct ftvm_virtio_buffer piece = {bytes, FTVM_NET_HEADER_BYTES + length, false};
  int head = ftvm_virtqueue_add(&net->transmit_queue, &piece, 1);
  if (head < 0) {
    net->transmit_free[net->transmit_free_count++] = buffer;
    return head;
  }
  net->transmit_buffer_of_head[head] = buffer;
  ftvm_virtqueue_notify(&net->transmit_queue);
  return FTVM_VIRTIO_OK;
}
