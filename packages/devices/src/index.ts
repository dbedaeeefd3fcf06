/**
 * `@ftvm/devices`: the device models of the ftvm board (QEMU 7.2 `virt`'s layout). Each is a
 * `Device` from `@ftvm/core`; the machine places and wires them. The test harness is the
 * `@ftvm/devices/test` subpath; Node-only host backends (disk image files) are `@ftvm/devices/node`.
 */
export type { ClintOptions } from './clint/clint.js';
export { CLINT_MMIO_SIZE_BYTES, CLINT_NS_PER_TICK, CLINT_TIMEBASE_HZ, Clint } from './clint/clint.js';
export { HART_INTERRUPT, nodeName, QEMU_VIRT_PHANDLES, socReg } from './device-tree.js';
export type { PlicOptions } from './plic/plic.js';
export {
  PLIC_CONTEXT_COUNT,
  PLIC_DEVICE_TREE_NDEV,
  PLIC_MMIO_SIZE_BYTES,
  PLIC_PRIORITY_MAX,
  PLIC_SOURCE_COUNT,
  Plic,
} from './plic/plic.js';
export type { GoldfishRtcOptions } from './rtc/rtc.js';
export { GOLDFISH_RTC_MMIO_SIZE_BYTES, GOLDFISH_RTC_VIRT_IRQ, GoldfishRtc } from './rtc/rtc.js';
export type { SifiveTestFinisherOptions } from './test-finisher/test-finisher.js';
export {
  FinisherStatus,
  SIFIVE_TEST_MMIO_SIZE_BYTES,
  SifiveTestFinisher,
} from './test-finisher/test-finisher.js';
export type { Ns16550aUartOptions, UartEventType } from './uart/uart.js';
export {
  Ns16550aUart,
  UART_CLOCK_FREQUENCY_HZ,
  UART_FIFO_BYTES,
  UART_MMIO_SIZE_BYTES,
  UART_RECEIVE_BACKLOG_BYTES_MAX,
  UART_VIRT_BAUD_BASE,
  UART_VIRT_IRQ,
} from './uart/uart.js';
export type { BlockBackend, MemoryBlockBackendOptions } from './virtio/block/block-backend.js';
export { MemoryBlockBackend } from './virtio/block/block-backend.js';
export type {
  BlockRequestSummary,
  VirtioBlockHostIo,
  VirtioBlockOptions,
} from './virtio/block/virtio-block.js';
export {
  BLOCK_OUTPUT_DISK_FLUSH,
  BLOCK_OUTPUT_DISK_WRITE,
  BLOCK_REQUEST_COMPLETED,
  DISK_WRITE_SUMMARY_BYTES,
  diskWriteSummary,
  fnv1a32,
  VIRTIO_BLOCK_BACKUP_READ_TRIES,
  VIRTIO_BLOCK_CONFIG_SIZE_BYTES,
  VIRTIO_BLOCK_ID_BYTES,
  VIRTIO_BLOCK_QUEUE_SIZE_MAX,
  VIRTIO_BLOCK_REQUEST_BYTES_MAX,
  VIRTIO_BLOCK_SECTOR_BYTES,
  VirtioBlock,
  VirtioBlockFeature,
  VirtioBlockRequestType,
  VirtioBlockStatus,
} from './virtio/block/virtio-block.js';
export {
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_SIZE_MAX,
  VirtioDeviceId,
  VirtioFeature,
  VirtioInterrupt,
  VirtioStatus,
  VirtqDescriptorFlag,
} from './virtio/constants.js';
export type { VirtioNetOptions, VirtioNetStatistics } from './virtio/net/virtio-net.js';
export {
  NET_FRAME_OUTPUT,
  NET_FRAME_RECEIVED,
  reverseArpAnnouncement,
  VIRTIO_NET_DEFAULT_MAC,
  VIRTIO_NET_FRAME_BYTES_MAX,
  VIRTIO_NET_HEADER_BYTES,
  VIRTIO_NET_PENDING_FRAMES_MAX,
  VIRTIO_NET_QUEUE_SIZE_MAX,
  VirtioNet,
  VirtioNetFeature,
} from './virtio/net/virtio-net.js';
export type { DescriptorChain, GuestBufferSegment, VirtqueueState } from './virtio/queue/virtqueue.js';
export { SplitVirtqueue, VIRTQ_INDIRECT_DESCRIPTORS_MAX, VirtqueueError } from './virtio/queue/virtqueue.js';
export type { EntropySource, VirtioRngOptions } from './virtio/rng/virtio-rng.js';
export {
  RNG_NONDET_KEY,
  VIRTIO_RNG_QUEUE_SIZE_MAX,
  VIRTIO_RNG_REQUEST_BYTES_MAX,
  VirtioRng,
  webCryptoEntropySource,
} from './virtio/rng/virtio-rng.js';
export type { VirtioMmioTransportOptions } from './virtio/transport/mmio-transport.js';
export {
  TRANSPORT_FEATURES,
  VIRTIO_MMIO_CONFIG_OFFSET,
  VIRTIO_MMIO_MAGIC_VALUE,
  VIRTIO_MMIO_SIZE_BYTES,
  VIRTIO_MMIO_VENDOR_ID_QEMU,
  VIRTIO_MMIO_VERSION,
  VIRTIO_MMIO_VIRT_BASE,
  VIRTIO_MMIO_VIRT_FIRST_IRQ,
  VIRTIO_MMIO_VIRT_SLOT_COUNT,
  VIRTIO_MMIO_VIRT_SLOT_STRIDE,
  VirtioMmioTransport,
} from './virtio/transport/mmio-transport.js';
export type { StatusWriteOutcome } from './virtio/transport/status-machine.js';
export { ALLOWED_STATUS_TRANSITIONS, classifyStatusWrite } from './virtio/transport/status-machine.js';
export type { VirtioDevice, VirtioDeviceContext } from './virtio/transport/virtio-device.js';
