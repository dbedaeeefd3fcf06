import type { AccessWidth, DeviceEnv, DeviceEventPayload, StateSection } from '@ftvm/core';
import type { SplitVirtqueue } from '../queue/virtqueue.js';

/**
 * What a virtio device is to its transport (Firecracker's split): feature bits, a configuration
 * space, queues, and a few lifecycle calls. A device never sees register offsets or the status
 * machine; the transport ({@link VirtioMmioTransport}) decodes the register map for every device.
 *
 * Every call comes from the guest-visible path (an MMIO access or an applied event), so the
 * device contract holds: no host time, no randomness, no I/O, no `await`. A device that finds
 * the driver broke a virtqueue rule throws (or calls {@link VirtioDeviceContext.fail}); the
 * transport answers with DEVICE_NEEDS_RESET, never with a host exception.
 */
export interface VirtioDevice {
  /** Names the device's state section (`virtio-blk`, `virtio-net`, `virtio-rng`). */
  readonly kind: string;
  /** The virtio device ID (§5): 1 network, 2 block, 4 entropy. */
  readonly deviceId: number;
  /**
   * Device-type feature bits offered (bits 0–23 and any others the device implements). The
   * transport adds VIRTIO_F_VERSION_1, VIRTIO_F_INDIRECT_DESC and VIRTIO_F_EVENT_IDX.
   */
  readonly deviceFeatures: bigint;
  /** The largest size of each queue (QueueNumMax), one entry per queue; powers of two. */
  readonly queueSizesMax: readonly number[];

  /** Called once when the transport is attached to a machine. */
  attach(context: VirtioDeviceContext): void;
  /** A guest load from the configuration space (offset from 0x100). Out of range: any value. */
  readConfig(offset: number, width: AccessWidth): number;
  /** A guest store to the configuration space. */
  writeConfig(offset: number, width: AccessWidth, value: number): void;
  /** The driver set DRIVER_OK: the queues are live. */
  activate(): void;
  /** The driver wrote 0 to Status (or the board reset): back to the power-on state. */
  reset(): void;
  /** The driver notified queue `queueIndex` (only while the device is live). */
  notifyQueue(queueIndex: number): void;
  /** An event from the device's host half, or from the log. Must accept any payload. */
  applyEvent(event: DeviceEventPayload): void;
  /** The device's own state (the transport saves the queues). */
  saveState(): StateSection;
  /** Restores `saveState`'s section; throws `SnapshotError` when it cannot. */
  restoreState(section: StateSection): void;
  /** This machine became the primary: reissue host work that was in flight. */
  onGoLive?(): void;
  /** See `Device.whenReadyFor`. */
  whenReadyFor?(event: DeviceEventPayload): Promise<void> | undefined;
  /** See `Device.hostWorkPendingSince`. */
  hostWorkPendingSince?(): number | undefined;
  /** Releases host resources. */
  dispose?(): void;
}

/** What the transport gives its device. */
export interface VirtioDeviceContext {
  /** The transport's device environment: the three doors, guest memory, the clock. */
  readonly env: DeviceEnv;
  /** The device's queues, indexed as `queueSizesMax`. */
  readonly queues: readonly SplitVirtqueue[];
  /** The features the driver accepted (valid once FEATURES_OK is set). */
  negotiatedFeatures(): bigint;
  /** True while the driver has the device live (DRIVER_OK set, no DEVICE_NEEDS_RESET). */
  isLive(): boolean;
  /**
   * Tells the transport that used buffers were pushed on `queue`; it raises the used-buffer
   * interrupt if the driver wants one (§2.7.7, §2.7.10).
   */
  usedBuffersPushed(queue: SplitVirtqueue): void;
  /** Raises the configuration-change interrupt and bumps ConfigGeneration (§2.5, §4.2.2). */
  configChanged(): void;
  /** Puts the device in DEVICE_NEEDS_RESET (§2.1.2) because of `reason`. */
  fail(reason: string): void;
}
