export { isOwnWin, requestNextEpoch } from './arbiter-request.js';
export type { BackupEnd, BackupMachineHooks, FtBackupOptions } from './backup.js';
export { FtBackup } from './backup.js';
export type { BackupEffects, BackupState, BackupStatistics } from './backup-core.js';
export { BackupCore } from './backup-core.js';
export type { FtConfig } from './config.js';
export { DEFAULT_FT_CONFIG, ftConfig, SLICE_STEPS_MAX, STATE_HASH_PAGES_PER_SLICE } from './config.js';
export type { DiskMode } from './disk-modes.js';
export { blockOptionsFor, DISK_MODES, holdUntilAppliedFor, isDiskMode } from './disk-modes.js';
export { entrySizeBytes } from './entry-size.js';
export type { FtEvent, FtEventType } from './events.js';
export { LiveLog } from './live-log.js';
export { PeerWatch } from './peer-watch.js';
export type {
  CloneReport,
  FtPrimaryOptions,
  FtSabotage,
  PrimaryEnd,
  PrimaryMachineHooks,
} from './primary.js';
export { FtPrimary } from './primary.js';
export type { HeldOutput, PrimaryEffects, PrimaryState, PrimaryStatistics } from './primary-core.js';
export { CPU_SHARE_MIN, PrimaryCore } from './primary-core.js';
export { diskRunPieces, TrackedDisk } from './tracked-disk.js';
