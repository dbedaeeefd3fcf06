/*
 * virtio over MMIO, version 2 ("modern", virtio 1.x) only, with split virtqueues, and drivers for
 * virtio-blk, virtio-net and virtio-rng. Devices are found by probing the eight slots at
 * 0x1000_1000 + n * 0x1000, never by a fixed slot number.
 *
 * QEMU's virtio-mmio is legacy (version 1) unless started with
 * `-global virtio-mmio.force-legacy=false`; the drivers refuse a legacy device with a message
 * that says so.
 */
#ifndef FTVM_VIRTIO_H
#define FTVM_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#define FTVM_VIRTIO_DEVICE_NET 1u
#define FTVM_VIRTIO_DEVICE_BLOCK 2u
#define FTVM_VIRTIO_DEVICE_RNG 4u

#define FTVM_VIRTIO_F_VERSION_1 (1ull << 32)

/* Results of the virtio calls (0 = success). */
enum ftvm_virtio_result {
  FTVM_VIRTIO_OK = 0,
  FTVM_VIRTIO_NOT_FOUND = -1,      /* no such device in any slot */
  FTVM_VIRTIO_LEGACY = -2,         /* only a version-1 (legacy) transport holds one */
  FTVM_VIRTIO_FEATURES = -3,       /* the device does not offer VERSION_1, or refused our features */
  FTVM_VIRTIO_QUEUE = -4,          /* a queue is missing, too small or already in use */
  FTVM_VIRTIO_FULL = -5,           /* no free descriptors */
  FTVM_VIRTIO_DEVICE_ERROR = -6,   /* the device reported an error for a request */
  FTVM_VIRTIO_INVALID = -7,        /* bad argument (size, range) */
};

/* A short English description of a result, for messages. */
const char *ftvm_virtio_describe(int result);

struct ftvm_virtio_device {
  uintptr_t base;
  uint32_t slot;
  uint32_t device_id;
  uint32_t irq;             /* PLIC source */
  uint64_t features;        /* negotiated */
};

/*
 * Finds the `index`-th (0 = first) device of `device_id` by probing the slots (lowest address
 * first). Returns FTVM_VIRTIO_LEGACY when only a legacy transport had one.
 */
int ftvm_virtio_find(uint32_t device_id, uint32_t index, struct ftvm_virtio_device *device);
/*
 * Resets the device and negotiates features: accepts VERSION_1 (required) plus whatever of
 * `wanted` the device offers. Leaves the device at FEATURES_OK, ready for queue setup.
 */
int ftvm_virtio_negotiate(struct ftvm_virtio_device *device, uint64_t wanted);
/* Sets DRIVER_OK: the device is live. */
void ftvm_virtio_driver_ok(struct ftvm_virtio_device *device);
/* Routes the device's interrupt through the PLIC (the handler acknowledges it; drivers poll). */
void ftvm_virtio_enable_interrupt(struct ftvm_virtio_device *device);
/* Marks the device FAILED (e.g. the driver gave up). */
void ftvm_virtio_fail(struct ftvm_virtio_device *device);
uint8_t ftvm_virtio_config_read8(const struct ftvm_virtio_device *device, uint32_t offset);
uint32_t ftvm_virtio_config_read32(const struct ftvm_virtio_device *device, uint32_t offset);
/* A 64-bit config field, read consistently (ConfigGeneration checked). */
uint64_t ftvm_virtio_config_read64(const struct ftvm_virtio_device *device, uint32_t offset);

/* ---- split virtqueues ---- */

#define FTVM_VIRTQUEUE_SIZE 16u

#define FTVM_VIRTQ_DESC_F_NEXT 1u
#define FTVM_VIRTQ_DESC_F_WRITE 2u

struct ftvm_virtq_descriptor {
  uint64_t address;
  uint32_t length;
  uint16_t flags;
  uint16_t next;
};

struct ftvm_virtq_available {
  uint16_t flags;
  uint16_t index;
  uint16_t ring[FTVM_VIRTQUEUE_SIZE];
  uint16_t used_event;
};

struct ftvm_virtq_used_element {
  uint32_t id;
  uint32_t length;
};

struct ftvm_virtq_used {
  uint16_t flags;
  uint16_t index;
  struct ftvm_virtq_used_element ring[FTVM_VIRTQUEUE_SIZE];
  uint16_t avail_event;
};

struct ftvm_virtqueue {
  /* The three rings the device reads and writes (alignments as virtio 1.x 2.7 requires). */
  struct ftvm_virtq_descriptor descriptors[FTVM_VIRTQUEUE_SIZE] __attribute__((aligned(16)));
  struct ftvm_virtq_available available __attribute__((aligned(2)));
  struct ftvm_virtq_used used __attribute__((aligned(4)));
  /* Driver bookkeeping. */
  struct ftvm_virtio_device *device;
  uint32_t queue_index;
  uint16_t size;
  uint16_t free_head;
  uint16_t free_count;
  uint16_t last_used_index;
};

/* One piece of a request: guest memory the device reads, or writes when device_writes is set. */
struct ftvm_virtio_buffer {
  void *address;
  uint32_t length;
  bool device_writes;
};

/* Sets up queue `queue_index` with up to FTVM_VIRTQUEUE_SIZE entries (fewer if the device says so). */
int ftvm_virtqueue_setup(struct ftvm_virtio_device *device, struct ftvm_virtqueue *queue, uint32_t queue_index);
/* Chains the buffers into descriptors and makes them available; returns the head id (>= 0) or an error. */
int ftvm_virtqueue_add(struct ftvm_virtqueue *queue, const struct ftvm_virtio_buffer *buffers, uint32_t count);
/* Tells the device there is work on this queue. */
void ftvm_virtqueue_notify(struct ftvm_virtqueue *queue);
/* Whether the device has returned a chain we have not taken yet. */
bool ftvm_virtqueue_has_used(const struct ftvm_virtqueue *queue);
/* Takes the next returned chain (frees its descriptors): head id and bytes the device wrote. */
bool ftvm_virtqueue_take_used(struct ftvm_virtqueue *queue, uint16_t *head, uint32_t *written_bytes);
/* Waits with wfi (interrupt-driven) until the device returns a chain on this queue. */
void ftvm_virtqueue_wait(const struct ftvm_virtqueue *queue);

/* ---- virtio-blk ---- */

#define FTVM_BLOCK_SECTOR_BYTES 512u
#define FTVM_BLOCK_REQUEST_SECTORS_MAX 128u

struct ftvm_block_request {
  struct {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
  } header;
  uint8_t status;
  int head; /* descriptor head while in flight, -1 otherwise */
  bool done;
};

struct ftvm_block_device {
  struct ftvm_virtio_device device;
  struct ftvm_virtqueue queue;
  uint64_t capacity_sectors;
  bool can_flush;
  bool read_only;
  struct ftvm_block_request *in_flight[FTVM_VIRTQUEUE_SIZE];
};

/* Finds and starts the first virtio-blk device. */
int ftvm_block_open(struct ftvm_block_device *block);
/* Synchronous reads and writes of whole sectors (split into requests as needed); interrupt-driven waits. */
int ftvm_block_read(struct ftvm_block_device *block, uint64_t sector, void *buffer, uint32_t sectors);
int ftvm_block_write(struct ftvm_block_device *block, uint64_t sector, const void *buffer, uint32_t sectors);
/* Asks the device to make written data durable (a no-op when it does not offer VIRTIO_BLK_F_FLUSH). */
int ftvm_block_flush(struct ftvm_block_device *block);
/* Asynchronous: starts a read (device_writes) or write of up to FTVM_BLOCK_REQUEST_SECTORS_MAX sectors. */
int ftvm_block_submit(struct ftvm_block_device *block, struct ftvm_block_request *request, bool is_write,
                      uint64_t sector, void *buffer, uint32_t sectors);
/* Collects finished requests (marks them done); returns how many finished. */
uint32_t ftvm_block_poll(struct ftvm_block_device *block);
/* Waits for one submitted request; returns its result. */
int ftvm_block_wait(struct ftvm_block_device *block, struct ftvm_block_request *request);

/* ---- virtio-net ---- */

#define FTVM_NET_FRAME_BYTES_MAX 1514u
#define FTVM_NET_HEADER_BYTES 12u
#define FTVM_NET_BUFFER_BYTES 1536u
#define FTVM_NET_RX_BUFFERS 16u
#define FTVM_NET_TX_BUFFERS 8u

struct ftvm_net_device {
  struct ftvm_virtio_device device;
  struct ftvm_virtqueue receive_queue;
  struct ftvm_virtqueue transmit_queue;
  uint8_t mac[6];
  uint8_t receive_buffers[FTVM_NET_RX_BUFFERS][FTVM_NET_BUFFER_BYTES];
  uint8_t transmit_buffers[FTVM_NET_TX_BUFFERS][FTVM_NET_BUFFER_BYTES];
  uint16_t receive_buffer_of_head[FTVM_VIRTQUEUE_SIZE];
  uint16_t transmit_buffer_of_head[FTVM_VIRTQUEUE_SIZE];
  uint8_t transmit_free[FTVM_NET_TX_BUFFERS];
  uint32_t transmit_free_count;
};

/* Finds and starts the first virtio-net device; its MAC comes from config space or is 52:54:00:12:34:56. */
int ftvm_net_device_open(struct ftvm_net_device *net);
/* Takes one received frame (without the virtio header) or returns false; hand it back with release. */
bool ftvm_net_device_receive(struct ftvm_net_device *net, uint8_t **frame, uint32_t *length, uint16_t *token);
void ftvm_net_device_release(struct ftvm_net_device *net, uint16_t token);
/* Sends one Ethernet frame (copied); waits for a free transmit buffer if all are in flight. */
int ftvm_net_device_send(struct ftvm_net_device *net, const void *frame, uint32_t length);
/* Waits until the device has taken every frame sent so far (e.g. before powering off). */
void ftvm_net_device_flush(struct ftvm_net_device *net);

/* ---- virtio-rng ---- */

struct ftvm_rng_device {
  struct ftvm_virtio_device device;
  struct ftvm_virtqueue queue;
};

int ftvm_rng_open(struct ftvm_rng_device *rng);
/* Fills `buffer` with entropy from the device (as many requests as it takes). */
int ftvm_rng_read(struct ftvm_rng_device *rng, void *buffer, uint32_t length);

#endif
