import { ConfigError } from '@ftvm/core';

/**
 * The named limits of fault tolerance. Units go last in names. Every one is observable in the
 * roles' statistics, and the defaults are the paper's orders of magnitude.
 */
export interface FtConfig {
  /**
   * No traffic from the peer (log, acks, heartbeats) for this long and the peer is suspected
   * failed: the suspecting side asks the arbiter for the next epoch.
   */
  readonly failureTimeoutMs: number;
  /** Send a heartbeat when nothing else was sent for this long. */
  readonly heartbeatIntervalMs: number;
  /**
   * Until the peer has been heard once since the channel opened (a backup still loading its
   * machine, a first slice compiling the guest's code), the silence allowed is this long instead.
   */
  readonly startupGraceMs: number;
  /**
   * The execution lag the primary tolerates: how long the oldest log entry the backup has not
   * applied yet has waited. Past it the primary gives itself less CPU (the paper's §2.4).
   */
  readonly executionLagMsMax: number;
  /**
   * Log bytes the primary keeps for a backup that has not acknowledged them. When it is full the
   * primary stops at the next step boundary and waits (the paper's full log buffer).
   */
  readonly logBufferBytesMax: number;
  /** How long to wait before asking an arbiter that could not be reached again. */
  readonly arbiterRetryMs: number;
  /** The backup acknowledges how far it executed at most this often (it acknowledges log at once). */
  readonly appliedAckIntervalMs: number;
  /** Host time one slice of guest execution may take: the channel and timers wait no longer. */
  readonly sliceTimeMsMax: number;
  /** Live cloning: rounds of re-sending written pages before the final stop-and-copy. */
  readonly cloneRoundsMax: number;
  /** Live cloning: stop and copy once a round leaves at most this many written pages. */
  readonly cloneFinalPagesMax: number;
  /** Live cloning: pages per transfer message. */
  readonly clonePagesPerMessage: number;
  /** Live cloning: do not queue more pages while the channel holds this many bytes unsent. */
  readonly cloneChannelBytesMax: number;
}

/**
 * Pages of RAM (4 KiB) hashed ahead of the first checkpoint after each slice, by primary and
 * backup: about 5-10 ms of work, so a 64 MiB guest's first hash takes ~64 slices, not one long stop.
 */
export const STATE_HASH_PAGES_PER_SLICE = 256;

/** Steps per slice at most; a slice ends sooner by host time (`sliceTimeMsMax`). */
export const SLICE_STEPS_MAX = 5_000_000;

export const DEFAULT_FT_CONFIG: FtConfig = {
  failureTimeoutMs: 300,
  heartbeatIntervalMs: 50,
  startupGraceMs: 5000,
  executionLagMsMax: 100,
  logBufferBytesMax: 16 * 1024 * 1024,
  arbiterRetryMs: 100,
  appliedAckIntervalMs: 10,
  sliceTimeMsMax: 10,
  cloneRoundsMax: 8,
  cloneFinalPagesMax: 64,
  clonePagesPerMessage: 256,
  cloneChannelBytesMax: 4 * 1024 * 1024,
};

/** The configuration with `overrides` applied, checked: every limit a positive number. */
export function ftConfig(overrides: Partial<FtConfig> = {}): FtConfig {
  const config = { ...DEFAULT_FT_CONFIG, ...overrides };
  for (const [name, value] of Object.entries(config)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(`${name} must be a positive number, not ${String(value)}`);
    }
  }
  if (config.heartbeatIntervalMs >= config.failureTimeoutMs) {
    throw new ConfigError('heartbeatIntervalMs must be shorter than failureTimeoutMs');
  }
  return config;
}
