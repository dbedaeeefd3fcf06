/**
 * Numbers of the virtio 1.2 specification (OASIS, "Virtual I/O Device (VIRTIO) Version 1.2") that
 * the transport and the devices share. Section numbers are the specification's.
 */

/** Device status bits (§2.1). The driver writes them in the order of §3.1.1. */
export const VirtioStatus = {
  acknowledge: 1,
  driver: 2,
  driverOk: 4,
  featuresOk: 8,
  /** Set by the device alone when it hit an error it cannot recover from (§2.1.1). */
  deviceNeedsReset: 64,
  failed: 128,
} as const;

/** Reserved (device-independent) feature bits (§6). */
export const VirtioFeature = {
  /** §2.7.5.3: descriptors may point at a table of descriptors. */
  indirectDescriptors: 28n,
  /** §2.7.7, §2.7.10: `used_event` / `avail_event` notification suppression. */
  eventIndex: 29n,
  /** §6: a modern (1.x) device; required here. */
  version1: 32n,
} as const;

/** Device IDs (§5). 0 means "no device" on the MMIO transport (§4.2.2). */
export const VirtioDeviceId = {
  none: 0,
  network: 1,
  block: 2,
  entropy: 4,
} as const;

/** Split virtqueue descriptor flags (§2.7.5). */
export const VirtqDescriptorFlag = {
  next: 1,
  write: 2,
  indirect: 4,
} as const;

/** `avail.flags` bit: the driver does not want used-buffer notifications (§2.7.7). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** The largest queue size a split virtqueue may have (§2.7). */
export const VIRTQ_SIZE_MAX = 32768;

/** `InterruptStatus` bits of the MMIO transport (§4.2.2). */
export const VirtioInterrupt = {
  usedBuffer: 1,
  configChange: 2,
} as const;

/**
 * QueueNumMax of every queue: QEMU 7.2's virtio-mmio reports VIRTQUEUE_MAX_SIZE (1024) for each
 * queue a device has, whatever size the device itself uses, so guests size their rings alike on both.
 */
export const VIRTIO_QUEUE_SIZE_MAX = 1024;
