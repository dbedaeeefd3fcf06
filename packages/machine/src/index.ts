export * from './board.js';
export { buildDeviceTreeBlob, formatDeviceTree } from './device-tree.js';
export type { RunOptions, RunResult } from './driver.js';
export { DEFAULT_SLICE_STEPS, runMachine } from './driver.js';
export type { HostClock, HostScheduler, HostSleep } from './host.js';
export type { LoadedImage } from './image.js';
export { looksLikeElf, parseElf, parseImage, parseRawImage } from './image.js';
export type {
  ClockMode,
  MachineMode,
  MachineOptions,
  MachineOutput,
  SliceEnd,
  SliceOutcome,
  SliceTimeLimit,
  UserDeviceSpec,
} from './machine.js';
export {
  DEFAULT_REALTIME_BASE_NS,
  HOST_CLOCK_INTERPOLATION_NS_PER_STEP,
  HOST_CLOCK_SAMPLE_NS_MIN,
  ICOUNT_CLOCK_NS_PER_STEP,
  MACHINE_LOG_NAME,
  Machine,
  RUN_CHUNK_STEPS,
} from './machine.js';
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
