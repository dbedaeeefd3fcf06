export type { Arbiter, ArbiterRecord, ArbiterResult } from './arbiter.js';
export type { AccessWidth, Bus, GuestMemory, RamRegion } from './bus.js';
export { PAGE_SHIFT, PAGE_SIZE_BYTES } from './bus.js';
export type { Cpu, CpuInterruptLine, Icount, RunOutcome, RunStopReason } from './cpu.js';
export type {
  Device,
  DeviceEnv,
  DeviceEvent,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  DeviceTreeValue,
  GuestClock,
  InterruptLine,
  MachineControl,
} from './device.js';
export type {
  ChannelErrorReason,
  DivergenceKind,
  FtvmErrorCode,
  FtvmErrorOptions,
  LogFormatReason,
} from './errors.js';
export {
  ArbiterUnavailableError,
  ChannelError,
  ConfigError,
  DeviceError,
  DivergenceError,
  ExitStatus,
  FtvmError,
  HostIoError,
  ImageError,
  LogFormatError,
  SnapshotError,
} from './errors.js';
export type {
  CheckpointEntry,
  EventEntry,
  LogEntry,
  LogEntryKind,
  LogSink,
  LogSource,
  NondetEntry,
  OutputEntry,
  ProgressEntry,
  StopEntry,
} from './log.js';
export { isInStepEntry, LOG_ENTRY_KINDS, progressMarkAfter } from './log.js';
export type {
  AckMessage,
  FtMessage,
  FtMessageType,
  FtRole,
  GoodbyeMessage,
  Handshake,
  HeartbeatMessage,
  LogChannel,
  LogMessage,
  TransferDiskMessage,
  TransferPagesMessage,
  TransferStateMessage,
} from './protocol.js';
export { FT_PROTOCOL_VERSION } from './protocol.js';
export type { MachineSnapshot, RamSnapshot, StateSection } from './snapshot.js';
export type { PlainValue } from './values.js';
export { isPlainValue, plainValuesEqual } from './values.js';
