export * from './board.js';
export { buildDeviceTreeBlob, formatDeviceTree } from './device-tree.js';
export type { RunOptions, RunResult } from './driver.js';
export { DEFAULT_SLICE_STEPS, runMachine } from './driver.js';
export type { HostClock, HostScheduler, HostSleep } from './host.js';
export type { LoadedImage } from './image.js';
export {
  KERNEL_ALIGN_BYTES,
  looksLikeElf,
  parseElf,
  parseFirmwareAndKernel,
  parseImage,
  parseRawImage,
} from './image.js';
// The machine facade and the types and constants it re-exports from its parts.
export * from './machine.js';
export { createRam, MachineBus, RAM_BASE, RAM_SIZE_BYTES_MAX, RamGuestMemory } from './memory.js';
export { MemoryLog, ReplayCursor } from './replay-cursor.js';
export {
  decodeSnapshot,
  encodeSnapshot,
  SNAPSHOT_BODY_BYTES_MAX,
  SNAPSHOT_FILE_VERSION,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
} from './snapshot-file.js';
export { hashBytes, RamHasher } from './state-hash.js';
export { sliceTimeLimit, Waiter } from './waiter.js';
