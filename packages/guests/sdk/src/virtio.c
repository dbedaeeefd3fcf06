/* virtio-mmio transport (virtio 1.x, 4.2.2) and split virtqueues (2.7). */
#include <string.h>

#include "ftvm.h"
#include "ftvm/virtio.h"

#define MMIO_MAGIC 0x000u
#define MMIO_VERSION 0x004u
#define MMIO_DEVICE_ID 0x008u
#define MMIO_DEVICE_FEATURES 0x010u
#define MMIO_DEVICE_FEATURES_SELECT 0x014u
#define MMIO_DRIVER_FEATURES 0x020u
#define MMIO_DRIVER_FEATURES_SELECT 0x024u
#define MMIO_QUEUE_SELECT 0x030u
#define MMIO_QUEUE_SIZE_MAX 0x034u
#define MMIO_QUEUE_SIZE 0x038u
#define MMIO_QUEUE_READY 0x044u
#define MMIO_QUEUE_NOTIFY 0x050u
#define MMIO_INTERRUPT_STATUS 0x060u
#define MMIO_INTERRUPT_ACK 0x064u
#define MMIO_STATUS 0x070u
#define MMIO_QUEUE_DESCRIPTOR_LOW 0x080u
#define MMIO_QUEUE_DESCRIPTOR_HIGH 0x084u
#define MMIO_QUEUE_DRIVER_LOW 0x090u
#define MMIO_QUEUE_DRIVER_HIGH 0x094u
#define MMIO_QUEUE_DEVICE_LOW 0x0a0u
#define MMIO_QUEUE_DEVICE_HIGH 0x0a4u
#define MMIO_CONFIG_GENERATION 0x0fcu
#define MMIO_CONFIG 0x100u

#define MAGIC_VIRT 0x74726976u /* "virt" */

#define STATUS_ACKNOWLEDGE 1u
#define STATUS_DRIVER 2u
#define STATUS_DRIVER_OK 4u
#define STATUS_FEATURES_OK 8u
#define STATUS_FAILED 128u

static uint32_t read_register(const struct ftvm_virtio_device *device, uint32_t offset) {
  return ftvm_mmio_read32(device->base + offset);
}

static void write_register(const struct ftvm_virtio_device *device, uint32_t offset, uint32_t value) {
  ftvm_mmio_write32(device->base + offset, value);
}

const char *ftvm_virtio_describe(int result) {
  switch (result) {
    case FTVM_VIRTIO_OK:
      return "ok";
    case FTVM_VIRTIO_NOT_FOUND:
      return "no such virtio device";
    case FTVM_VIRTIO_LEGACY:
      return "the device is legacy virtio-mmio (version 1); ftvm guests need version 2 "
             "(QEMU: -global virtio-mmio.force-legacy=false)";
    case FTVM_VIRTIO_FEATURES:
      return "feature negotiation failed (VERSION_1 required)";
    case FTVM_VIRTIO_QUEUE:
      return "virtqueue unavailable";
    case FTVM_VIRTIO_FULL:
      return "virtqueue full";
    case FTVM_VIRTIO_DEVICE_ERROR:
      return "device reported an error";
    case FTVM_VIRTIO_INVALID:
      return "invalid argument";
    default:
      return "unknown error";
  }
}

static uint32_t irq_of_slot(uintptr_t base, uint32_t slot) {
  const struct ftvm_fdt *fdt = ftvm_fdt_boot();
  if (fdt != NULL) {
    for (int node = ftvm_fdt_find_compatible(fdt, -1, "virtio,mmio"); node >= 0;
         node = ftvm_fdt_find_compatible(fdt, node, "virtio,mmio")) {
      uint64_t address;
      uint64_t size;
      uint32_t irq;
      if (ftvm_fdt_reg(fdt, node, 0, &address, &size) && address == base && ftvm_fdt_interrupt(fdt, node, 0, &irq)) {
        return irq;
      }
    }
  }
  return FTVM_IRQ_VIRTIO_FIRST + slot;
}

int ftvm_virtio_find(uint32_t device_id, uint32_t index, struct ftvm_virtio_device *device) {
  bool saw_legacy = false;
  uint32_t seen = 0;
  for (uint32_t slot = 0; slot < FTVM_VIRTIO_MMIO_SLOTS; slot++) {
    uintptr_t base = FTVM_VIRTIO_MMIO_BASE + slot * FTVM_VIRTIO_MMIO_STRIDE;
    if (ftvm_mmio_read32(base + MMIO_MAGIC) != MAGIC_VIRT) continue;
    if (ftvm_mmio_read32(base + MMIO_DEVICE_ID) != device_id) continue;
    uint32_t version = ftvm_mmio_read32(base + MMIO_VERSION);
    if (version == 1) {
      saw_legacy = true;
      continue;
    }
    if (version != 2) continue;
    if (seen++ != index) continue;
    memset(device, 0, sizeof *device);
    device->base = base;
    device->slot = slot;
    device->device_id = device_id;
    device->irq = irq_of_slot(base, slot);
    return FTVM_VIRTIO_OK;
  }
  return saw_legacy ? FTVM_VIRTIO_LEGACY : FTVM_VIRTIO_NOT_FOUND;
}

int ftvm_virtio_negotiate(struct ftvm_virtio_device *device, uint64_t wanted) {
  /* Reset, then ACKNOWLEDGE and DRIVER (3.1.1). */
  write_register(device, MMIO_STATUS, 0);
  while (read_register(device, MMIO_STATUS) != 0) {
  }
  write_register(device, MMIO_STATUS, STATUS_ACKNOWLEDGE);
  write_register(device, MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);

  write_register(device, MMIO_DEVICE_FEATURES_SELECT, 0);
  uint64_t offered = read_register(device, MMIO_DEVICE_FEATURES);
  write_register(device, MMIO_DEVICE_FEATURES_SELECT, 1);
  offered |= (uint64_t)read_register(device, MMIO_DEVICE_FEATURES) << 32;
  if ((offered & FTVM_VIRTIO_F_VERSION_1) == 0) {
    ftvm_virtio_fail(device);
    return FTVM_VIRTIO_FEATURES;
  }
  uint64_t accepted = offered & (wanted | FTVM_VIRTIO_F_VERSION_1);
  write_register(device, MMIO_DRIVER_FEATURES_SELECT, 0);
  write_register(device, MMIO_DRIVER_FEATURES, (uint32_t)accepted);
  write_register(device, MMIO_DRIVER_FEATURES_SELECT, 1);
  write_register(device, MMIO_DRIVER_FEATURES, (uint32_t)(accepted >> 32));
  write_register(device, MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  if ((read_register(device, MMIO_STATUS) & STATUS_FEATURES_OK) == 0) {
    ftvm_virtio_fail(device);
    return FTVM_VIRTIO_FEATURES;
  }
  device->features = accepted;
  return FTVM_VIRTIO_OK;
}

void ftvm_virtio_driver_ok(struct ftvm_virtio_device *device) {
  write_register(device, MMIO_STATUS,
                 STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
}

void ftvm_virtio_fail(struct ftvm_virtio_device *device) {
  write_register(device, MMIO_STATUS, read_register(device, MMIO_STATUS) | STATUS_FAILED);
}

static void virtio_interrupt(uint32_t source, void *context) {
  (void)source;
  struct ftvm_virtio_device *device = context;
  uint32_t status = read_register(device, MMIO_INTERRUPT_STATUS);
  if (status != 0) write_register(device, MMIO_INTERRUPT_ACK, status);
}

void ftvm_virtio_enable_interrupt(struct ftvm_virtio_device *device) {
  ftvm_plic_attach(device->irq, virtio_interrupt, device);
}

uint8_t ftvm_virtio_config_read8(const struct ftvm_virtio_device *device, uint32_t offset) {
  return ftvm_mmio_read8(device->base + MMIO_CONFIG + offset);
}

uint32_t ftvm_virtio_config_read32(const struct ftvm_virtio_device *device, uint32_t offset) {
  return ftvm_mmio_read32(device->base + MMIO_CONFIG + offset);
}

uint64_t ftvm_virtio_config_read64(const struct ftvm_virtio_device *device, uint32_t offset) {
  for (;;) {
    uint32_t generation = read_register(device, MMIO_CONFIG_GENERATION);
    uint64_t value = ftvm_virtio_config_read32(device, offset) |
                     ((uint64_t)ftvm_virtio_config_read32(device, offset + 4) << 32);
    if (read_register(device, MMIO_CONFIG_GENERATION) == generation) return value;
  }
}

/* ---- split virtqueues ---- */

static void write_address(struct ftvm_virtio_device *device, uint32_t low_register, const void *address) {
  write_register(device, low_register, (uint32_t)(uintptr_t)address);
  write_register(device, low_register + 4, 0);
}

int ftvm_virtqueue_setup(struct ftvm_virtio_device *device, struct ftvm_virtqueue *queue, uint32_t queue_index) {
  memset(queue, 0, sizeof *queue);
  write_register(device, MMIO_QUEUE_SELECT, queue_index);
  if (read_register(device, MMIO_QUEUE_READY) != 0) return FTVM_VIRTIO_QUEUE;
  uint32_t size_max = read_register(device, MMIO_QUEUE_SIZE_MAX);
  if (size_max == 0) return FTVM_VIRTIO_QUEUE;
  uint16_t size = (uint16_t)(size_max < FTVM_VIRTQUEUE_SIZE ? size_max : FTVM_VIRTQUEUE_SIZE);
  queue->device = device;
  queue->queue_index = queue_index;
  queue->size = size;
  for (uint16_t i = 0; i < size; i++) queue->descriptors[i].next = (uint16_t)(i + 1);
  queue->free_head = 0;
  queue->free_count = size;
  queue->last_used_index = 0;
  write_register(device, MMIO_QUEUE_SIZE, size);
  write_address(device, MMIO_QUEUE_DESCRIPTOR_LOW, queue->descriptors);
  write_address(device, MMIO_QUEUE_DRIVER_LOW, &queue->available);
  write_address(device, MMIO_QUEUE_DEVICE_LOW, &queue->used);
  write_register(device, MMIO_QUEUE_READY, 1);
  (void)MMIO_QUEUE_DESCRIPTOR_HIGH;
  (void)MMIO_QUEUE_DRIVER_HIGH;
  (void)MMIO_QUEUE_DEVICE_HIGH;
  return FTVM_VIRTIO_OK;
}

int ftvm_virtqueue_add(struct ftvm_virtqueue *queue, const struct ftvm_virtio_buffer *buffers, uint32_t count) {
  if (count == 0) return FTVM_VIRTIO_INVALID;
  if (count > queue->free_count) return FTVM_VIRTIO_FULL;
  uint16_t head = queue->free_head;
  uint16_t index = head;
  for (uint32_t i = 0; i < count; i++) {
    struct ftvm_virtq_descriptor *descriptor = &queue->descriptors[index];
    descriptor->address = (uint64_t)(uintptr_t)buffers[i].address;
    descriptor->length = buffers[i].length;
    uint16_t flags = buffers[i].device_writes ? FTVM_VIRTQ_DESC_F_WRITE : 0;
    if (i + 1 < count) flags |= FTVM_VIRTQ_DESC_F_NEXT;
    descriptor->flags = flags;
    if (i + 1 < count) index = descriptor->next;
  }
  queue->free_head = queue->descriptors[index].next;
  queue->free_count = (uint16_t)(queue->free_count - count);
  volatile struct ftvm_virtq_available *available = &queue->available;
  available->ring[available->index % queue->size] = head;
  /* The ring entry must be visible before the index that publishes it. */
  __sync_synchronize();
  available->index = (uint16_t)(available->index + 1);
  __sync_synchronize();
  return head;
}

void ftvm_virtqueue_notify(struct ftvm_virtqueue *queue) {
  __sync_synchronize();
  write_register(queue->device, MMIO_QUEUE_NOTIFY, queue->queue_index);
}

bool ftvm_virtqueue_has_used(const struct ftvm_virtqueue *queue) {
  const volatile struct ftvm_virtq_used *used = &queue->used;
  return used->index != queue->last_used_index;
}

bool ftvm_virtqueue_take_used(struct ftvm_virtqueue *queue, uint16_t *head, uint32_t *written_bytes) {
  if (!ftvm_virtqueue_has_used(queue)) return false;
  __sync_synchronize(); /* read the element only after seeing the index */
  const volatile struct ftvm_virtq_used *used = &queue->used;
  struct ftvm_virtq_used_element element = {used->ring[queue->last_used_index % queue->size].id,
                                            used->ring[queue->last_used_index % queue->size].length};
  queue->last_used_index = (uint16_t)(queue->last_used_index + 1);
  if (element.id >= queue->size) return false; /* a broken device: ignore the element */
  /* Return the chain to the free list. */
  uint16_t last = (uint16_t)element.id;
  uint16_t freed = 1;
  while ((queue->descriptors[last].flags & FTVM_VIRTQ_DESC_F_NEXT) != 0 && freed < queue->size) {
    last = queue->descriptors[last].next;
    freed++;
  }
  queue->descriptors[last].next = queue->free_head;
  queue->free_head = (uint16_t)element.id;
  queue->free_count = (uint16_t)(queue->free_count + freed);
  *head = (uint16_t)element.id;
  *written_bytes = element.length;
  return true;
}

static bool queue_has_used(void *context) {
  return ftvm_virtqueue_has_used(context);
}

void ftvm_virtqueue_wait(const struct ftvm_virtqueue *queue) {
  ftvm_wait_until(queue_has_used, (void *)queue);
}
