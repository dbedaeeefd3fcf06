/**
 * `@ftvm/devices`: the device models of the ftvm board (QEMU 7.2 `virt`'s layout). Each is a
 * `Device` from `@ftvm/core`; the machine places and wires them. The test harness is the
 * `@ftvm/devices/test` subpath.
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
