import {
  type AccessWidth,
  type Device,
  type DeviceEnv,
  type DeviceEventPayload,
  type DevicePlacement,
  type DeviceTreeNode,
  DivergenceError,
  type PlainValue,
  SnapshotError,
  type StateSection,
} from '@ftvm/core';
import { nodeName, QEMU_VIRT_PHANDLES, socReg } from '../../device-tree.js';
import { truncateToWidth } from '../../mmio.js';
import { bigIntToState, StateReader } from '../../state.js';
import { VirtioFeature, VirtioInterrupt, VirtioStatus } from '../constants.js';
import { SplitVirtqueue, type VirtqueueState } from '../queue/virtqueue.js';
import { classifyStatusWrite } from './status-machine.js';
import type { VirtioDevice, VirtioDeviceContext } from './virtio-device.js';

/**
 * The virtio-mmio transport, version 2 ("modern", virtio 1.2 §4.2), for any {@link VirtioDevice}
 * or none (an empty slot, DeviceID 0). It decodes the register map, runs the status machine
 * (`status-machine.ts`), negotiates features, owns the split virtqueues and drives the interrupt
 * line (`env.irq`, the slot's PLIC source) from InterruptStatus.
 *
 * Register map (§4.2.2; 32-bit accesses only, others read 0 and are ignored as QEMU does; the
 * configuration space from 0x100 takes 8-, 16- and 32-bit accesses):
 *
 *     0x000 MagicValue "virt"   0x004 Version 2            0x008 DeviceID      0x00c VendorID "QEMU"
 *     0x010 DeviceFeatures      0x014 DeviceFeaturesSel    0x020 DriverFeatures 0x024 DriverFeaturesSel
 *     0x030 QueueSel            0x034 QueueNumMax          0x038 QueueNum       0x044 QueueReady
 *     0x050 QueueNotify         0x060 InterruptStatus      0x064 InterruptACK   0x070 Status
 *     0x080/0x084 QueueDesc     0x090/0x094 QueueDriver    0x0a0/0x0a4 QueueDevice (low/high)
 *     0x0ac SHMSel  0x0b0/0x0b4 SHMLen  0x0b8/0x0bc SHMBase (no regions: length all ones, base 0)
 *     0x0fc ConfigGeneration    0x100… device configuration space
 *
 * Whatever the driver does wrong — a status written out of order, a queue laid out outside RAM, a
 * descriptor chain that loops — ends in DEVICE_NEEDS_RESET (status bit 64) and a
 * configuration-change interrupt (§2.1.2), never in a host exception. Until the driver resets the
 * device, notifications are ignored.
 *
 * State layout (section `virtio-mmio`, version 1): `status`, `deviceFeaturesSelect`,
 * `driverFeaturesSelect`, `driverFeatures` (decimal string, 64 bits), `queueSelect`,
 * `interruptStatus`, `configGeneration`, `sharedMemorySelect`, `failureReason` (string or null),
 * `queues` (one object per queue: size, ready, addressWords[6], nextAvailableIndex, usedIndex,
 * signalledUsedIndex), `device` (the device's own section, or null for an empty slot).
 */

/** MagicValue: "virt" in little-endian ASCII. */
export const VIRTIO_MMIO_MAGIC_VALUE = 0x7472_6976;
/** Version of the modern (virtio 1.x) MMIO register layout. */
export const VIRTIO_MMIO_VERSION = 2;
/** VendorID QEMU reports ("QEMU"), which guests may print. */
export const VIRTIO_MMIO_VENDOR_ID_QEMU = 0x554d_4551;
/** Size of one virtio-mmio window on `virt`. */
export const VIRTIO_MMIO_SIZE_BYTES = 0x1000;
/** Offset of the device configuration space. */
export const VIRTIO_MMIO_CONFIG_OFFSET = 0x100;
/** First virtio-mmio slot on `virt` and the distance between slots; slot n uses PLIC source 1 + n. */
export const VIRTIO_MMIO_VIRT_BASE = 0x1000_1000;
export const VIRTIO_MMIO_VIRT_SLOT_STRIDE = 0x1000;
export const VIRTIO_MMIO_VIRT_SLOT_COUNT = 8;
export const VIRTIO_MMIO_VIRT_FIRST_IRQ = 1;

/** Feature bits every device on this transport gets (§6, §2.7.5.3, §2.7.10). */
export const TRANSPORT_FEATURES =
  (1n << VirtioFeature.version1) |
  (1n << VirtioFeature.indirectDescriptors) |
  (1n << VirtioFeature.eventIndex);

const STATE_VERSION = 1;
const FAILURE_REASON_LENGTH_MAX = 512;

const enum Register {
  MagicValue = 0x000,
  Version = 0x004,
  DeviceId = 0x008,
  VendorId = 0x00c,
  DeviceFeatures = 0x010,
  DeviceFeaturesSelect = 0x014,
  DriverFeatures = 0x020,
  DriverFeaturesSelect = 0x024,
  QueueSelect = 0x030,
  QueueSizeMax = 0x034,
  QueueSize = 0x038,
  QueueReady = 0x044,
  QueueNotify = 0x050,
  InterruptStatus = 0x060,
  InterruptAcknowledge = 0x064,
  Status = 0x070,
  QueueDescriptorLow = 0x080,
  QueueDescriptorHigh = 0x084,
  QueueDriverLow = 0x090,
  QueueDriverHigh = 0x094,
  QueueDeviceLow = 0x0a0,
  QueueDeviceHigh = 0x0a4,
  SharedMemorySelect = 0x0ac,
  SharedMemoryLengthLow = 0x0b0,
  SharedMemoryLengthHigh = 0x0b4,
  SharedMemoryBaseLow = 0x0b8,
  SharedMemoryBaseHigh = 0x0bc,
  ConfigGeneration = 0x0fc,
}

/** Which address word a queue address register writes (index into `addressWords`). */
const QUEUE_ADDRESS_REGISTERS: ReadonlyMap<number, number> = new Map([
  [Register.QueueDescriptorLow, 0],
  [Register.QueueDescriptorHigh, 1],
  [Register.QueueDriverLow, 2],
  [Register.QueueDriverHigh, 3],
  [Register.QueueDeviceLow, 4],
  [Register.QueueDeviceHigh, 5],
]);

/** Options of {@link VirtioMmioTransport}. */
export interface VirtioMmioTransportOptions {
  /** Phandle of the PLIC for `interrupt-parent` (default QEMU's, 3). */
  readonly interruptParentPhandle?: number;
}

/** A virtio-mmio slot: the transport, with a device behind it or none. */
export class VirtioMmioTransport implements Device {
  readonly kind = 'virtio-mmio';
  readonly mmioSize = VIRTIO_MMIO_SIZE_BYTES;
  /** The device behind the transport, or undefined for an empty slot. */
  readonly device: VirtioDevice | undefined;
  readonly #queues: SplitVirtqueue[];
  readonly #interruptParentPhandle: number;
  #env: DeviceEnv | undefined;

  #status = 0;
  #deviceFeaturesSelect = 0;
  #driverFeaturesSelect = 0;
  #driverFeatures = 0n;
  #queueSelect = 0;
  #interruptStatus = 0;
  #configGeneration = 0;
  #sharedMemorySelect = 0;
  #failureReason: string | null = null;
  #lineLevel = false;

  constructor(device?: VirtioDevice, options: VirtioMmioTransportOptions = {}) {
    this.device = device;
    this.#queues = (device?.queueSizesMax ?? []).map((sizeMax, index) => new SplitVirtqueue(index, sizeMax));
    this.#interruptParentPhandle = options.interruptParentPhandle ?? QEMU_VIRT_PHANDLES.plic;
  }

  /** The feature bits offered to the driver (device bits plus the transport's). */
  get offeredFeatures(): bigint {
    return this.device === undefined ? 0n : this.device.deviceFeatures | TRANSPORT_FEATURES;
  }

  /** The features the driver accepted; 0 until FEATURES_OK. */
  get negotiatedFeatures(): bigint {
    return this.#status & VirtioStatus.featuresOk ? this.#driverFeatures : 0n;
  }

  /** The Status register. */
  get status(): number {
    return this.#status;
  }

  /** Why the device went to DEVICE_NEEDS_RESET the last time, or null (a diagnostic, not guest-visible). */
  get failureReason(): string | null {
    return this.#failureReason;
  }

  attach(env: DeviceEnv, _placement: DevicePlacement): void {
    this.#env = env;
    for (const queue of this.#queues) queue.bind(env.memory);
    this.device?.attach(this.#context(env));
  }

  readMmio(offset: number, width: AccessWidth): number {
    if (this.device === undefined) return this.#readEmptySlot(offset, width);
    if (offset >= VIRTIO_MMIO_CONFIG_OFFSET) {
      return this.#guarded(() => this.device!.readConfig(offset - VIRTIO_MMIO_CONFIG_OFFSET, width), 0);
    }
    if (width !== 4) return 0;
    const queue = this.#queues[this.#queueSelect];
    switch (offset) {
      case Register.MagicValue:
        return VIRTIO_MMIO_MAGIC_VALUE;
      case Register.Version:
        return VIRTIO_MMIO_VERSION;
      case Register.DeviceId:
        return this.device.deviceId;
      case Register.VendorId:
        return VIRTIO_MMIO_VENDOR_ID_QEMU;
      case Register.DeviceFeatures:
        return this.#deviceFeaturesSelect > 1
          ? 0
          : Number((this.offeredFeatures >> BigInt(32 * this.#deviceFeaturesSelect)) & 0xffff_ffffn);
      case Register.QueueSizeMax:
        return queue?.sizeMax ?? 0;
      case Register.QueueReady:
        return queue?.ready ? 1 : 0;
      case Register.InterruptStatus:
        return this.#interruptStatus;
      case Register.Status:
        return this.#status;
      case Register.SharedMemoryLengthLow:
      case Register.SharedMemoryLengthHigh:
        // §4.2.2: a region that does not exist has length -1; no device here has one.
        return 0xffff_ffff;
      case Register.SharedMemoryBaseLow:
      case Register.SharedMemoryBaseHigh:
        return 0; // as QEMU 7.2
      case Register.ConfigGeneration:
        return this.#configGeneration;
      default:
        // Write-only registers (QueueNum, the queue addresses, …) and holes read 0, as on QEMU 7.2.
        return 0;
    }
  }

  writeMmio(offset: number, width: AccessWidth, value: number): void {
    const device = this.device;
    if (device === undefined) return;
    if (offset >= VIRTIO_MMIO_CONFIG_OFFSET) {
      this.#guarded(
        () => device.writeConfig(offset - VIRTIO_MMIO_CONFIG_OFFSET, width, truncateToWidth(value, width)),
        undefined,
      );
      return;
    }
    if (width !== 4) return;
    const word = value >>> 0;
    const queue = this.#queues[this.#queueSelect];
    switch (offset) {
      case Register.DeviceFeaturesSelect:
        this.#deviceFeaturesSelect = word;
        return;
      case Register.DriverFeatures:
        // Features are settled once FEATURES_OK is set (§3.1.1); later writes do nothing.
        if (this.#driverFeaturesSelect <= 1 && !(this.#status & VirtioStatus.featuresOk)) {
          const shift = BigInt(32 * this.#driverFeaturesSelect);
          this.#driverFeatures = (this.#driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(word) << shift);
        }
        return;
      case Register.DriverFeaturesSelect:
        this.#driverFeaturesSelect = word;
        return;
      case Register.QueueSelect:
        this.#queueSelect = word;
        return;
      case Register.QueueSize:
        if (queue !== undefined && !queue.ready) queue.size = word;
        return;
      case Register.QueueReady:
        if (queue === undefined) return;
        if ((word & 1) === 0) queue.ready = false;
        else if (!queue.ready) this.#guarded(() => queue.makeReady(), undefined);
        return;
      case Register.QueueNotify:
        this.#notify(word);
        return;
      case Register.InterruptAcknowledge:
        this.#interruptStatus &= ~word;
        this.#driveLine();
        return;
      case Register.Status:
        this.#writeStatus(word & 0xff);
        return;
      case Register.SharedMemorySelect:
        this.#sharedMemorySelect = word;
        return;
      default: {
        const addressWord = QUEUE_ADDRESS_REGISTERS.get(offset);
        // The driver must not change a live queue's layout (§4.2.3.2); such writes do nothing.
        if (addressWord !== undefined && queue !== undefined && !queue.ready)
          queue.addressWords[addressWord] = word;
      }
    }
  }

  applyEvent(event: DeviceEventPayload): void {
    const device = this.device;
    if (device === undefined) return;
    this.#guarded(() => device.applyEvent(event), undefined);
  }

  reset(): void {
    this.#resetTransport();
    this.#configGeneration = 0;
    this.#failureReason = null;
  }

  whenReadyFor(event: DeviceEventPayload): Promise<void> | undefined {
    return this.device?.whenReadyFor?.(event);
  }

  hostWorkPendingSince(): number | undefined {
    return this.device?.hostWorkPendingSince?.();
  }

  onGoLive(): void {
    this.device?.onGoLive?.();
  }

  dispose(): void {
    this.device?.dispose?.();
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        status: this.#status,
        deviceFeaturesSelect: this.#deviceFeaturesSelect,
        driverFeaturesSelect: this.#driverFeaturesSelect,
        driverFeatures: bigIntToState(this.#driverFeatures),
        queueSelect: this.#queueSelect,
        interruptStatus: this.#interruptStatus,
        configGeneration: this.#configGeneration,
        sharedMemorySelect: this.#sharedMemorySelect,
        failureReason: this.#failureReason,
        queues: this.#queues.map((queue) => ({ ...queue.saveState() })),
        device: this.device === undefined ? null : { ...this.device.saveState() },
      },
    };
  }

  restoreState(section: StateSection): void {
    const fields = StateReader.open(section, this.kind, STATE_VERSION);
    const u32 = 0xffff_ffff;
    const status = fields.integer('status', 0xff);
    const deviceFeaturesSelect = fields.integer('deviceFeaturesSelect', u32);
    const driverFeaturesSelect = fields.integer('driverFeaturesSelect', u32);
    const driverFeatures = fields.uint64('driverFeatures');
    const queueSelect = fields.integer('queueSelect', u32);
    const interruptStatus = fields.integer('interruptStatus', 3);
    const configGeneration = fields.integer('configGeneration', u32);
    const sharedMemorySelect = fields.integer('sharedMemorySelect', u32);
    const failureReason =
      fields.raw('failureReason') === null ? null : fields.string('failureReason', FAILURE_REASON_LENGTH_MAX);
    const queues = fields.array('queues', this.#queues.length, (value, path, index) =>
      readQueueState(value, path, this.#queues[index]?.sizeMax ?? 0),
    );
    if (queues.length !== this.#queues.length) {
      throw new SnapshotError(
        `${this.kind}: state has ${queues.length} queues, the device ${this.#queues.length}`,
      );
    }
    const deviceSection = fields.raw('device') === null ? null : fields.section('device');
    if ((deviceSection === null) !== (this.device === undefined)) {
      throw new SnapshotError(`${this.kind}: state and slot disagree on whether a device is present`);
    }
    if (deviceSection !== null) this.device!.restoreState(deviceSection);
    this.#status = status;
    this.#deviceFeaturesSelect = deviceFeaturesSelect;
    this.#driverFeaturesSelect = driverFeaturesSelect;
    this.#driverFeatures = driverFeatures;
    this.#queueSelect = queueSelect;
    this.#interruptStatus = interruptStatus;
    this.#configGeneration = configGeneration;
    this.#sharedMemorySelect = sharedMemorySelect;
    this.#failureReason = failureReason;
    queues.forEach((state, index) => {
      this.#queues[index]!.restoreState(state);
    });
    this.#applyNegotiatedRingFeatures();
    this.#lineLevel = this.#interruptStatus !== 0;
    this.#env?.irq.set(this.#lineLevel);
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    return {
      name: nodeName('virtio_mmio', placement.base),
      properties: {
        interrupts: [placement.irq],
        'interrupt-parent': [this.#interruptParentPhandle],
        reg: socReg(placement.base, this.mmioSize),
        compatible: 'virtio,mmio',
      },
    };
  }

  /** QEMU answers the identification registers of an empty slot at any width (truncated), the rest 0. */
  #readEmptySlot(offset: number, width: AccessWidth): number {
    switch (offset) {
      case Register.MagicValue:
        return truncateToWidth(VIRTIO_MMIO_MAGIC_VALUE, width);
      case Register.Version:
        return truncateToWidth(VIRTIO_MMIO_VERSION, width);
      case Register.VendorId:
        return truncateToWidth(VIRTIO_MMIO_VENDOR_ID_QEMU, width);
      default:
        return 0;
    }
  }

  #context(env: DeviceEnv): VirtioDeviceContext {
    return {
      env,
      queues: this.#queues,
      negotiatedFeatures: () => this.negotiatedFeatures,
      isLive: () => this.#isLive(),
      usedBuffersPushed: (queue) => {
        if (queue.needsInterrupt()) this.#raise(VirtioInterrupt.usedBuffer);
      },
      configChanged: () => {
        this.#configGeneration = (this.#configGeneration + 1) >>> 0;
        this.#raise(VirtioInterrupt.configChange);
      },
      fail: (reason) => this.#fail(reason),
    };
  }

  #isLive(): boolean {
    return (
      (this.#status & (VirtioStatus.driverOk | VirtioStatus.deviceNeedsReset | VirtioStatus.failed)) ===
      VirtioStatus.driverOk
    );
  }

  #notify(queueIndex: number): void {
    const queue = this.#queues[queueIndex];
    if (!this.#isLive() || queue === undefined || !queue.ready) return;
    this.#guarded(() => this.device!.notifyQueue(queueIndex), undefined);
  }

  #writeStatus(written: number): void {
    const needsReset = this.#status & VirtioStatus.deviceNeedsReset;
    const current = this.#status & ~VirtioStatus.deviceNeedsReset;
    const requested = written & ~VirtioStatus.deviceNeedsReset;
    switch (classifyStatusWrite(current, written)) {
      case 'reset':
        this.#resetTransport();
        return;
      case 'unchanged':
        return;
      case 'refused':
        this.#fail(
          `status write 0x${written.toString(16)} over 0x${this.#status.toString(16)} is out of order`,
        );
        return;
      case 'advance':
        break;
    }
    const gained = requested & ~current;
    if (gained & VirtioStatus.featuresOk && !this.#featuresAcceptable()) {
      // §2.2.2: the device refuses FEATURES_OK; the driver sees it clear when it reads Status back.
      return;
    }
    this.#status = requested | needsReset;
    if (gained & VirtioStatus.featuresOk) this.#applyNegotiatedRingFeatures();
    if (gained & VirtioStatus.driverOk) this.#guarded(() => this.device!.activate(), undefined);
  }

  /** The driver may accept only offered features, and must accept VIRTIO_F_VERSION_1 (§6.1). */
  #featuresAcceptable(): boolean {
    const offered = this.offeredFeatures;
    return (
      (this.#driverFeatures & ~offered) === 0n &&
      (this.#driverFeatures & (1n << VirtioFeature.version1)) !== 0n
    );
  }

  #applyNegotiatedRingFeatures(): void {
    const features = this.negotiatedFeatures;
    for (const queue of this.#queues) {
      queue.indirectDescriptors = (features & (1n << VirtioFeature.indirectDescriptors)) !== 0n;
      queue.eventIndex = (features & (1n << VirtioFeature.eventIndex)) !== 0n;
    }
  }

  #resetTransport(): void {
    this.#status = 0;
    this.#deviceFeaturesSelect = 0;
    this.#driverFeaturesSelect = 0;
    this.#driverFeatures = 0n;
    this.#queueSelect = 0;
    this.#interruptStatus = 0;
    this.#sharedMemorySelect = 0;
    for (const queue of this.#queues) queue.reset();
    this.#guarded(() => this.device?.reset(), undefined);
    this.#driveLine();
  }

  /** §2.1.2: the device hit an error it cannot recover from; it waits for the driver to reset it. */
  #fail(reason: string): void {
    this.#failureReason = reason.slice(0, FAILURE_REASON_LENGTH_MAX);
    if (this.#status & VirtioStatus.deviceNeedsReset) return;
    this.#status |= VirtioStatus.deviceNeedsReset;
    this.#raise(VirtioInterrupt.configChange);
  }

  #raise(bits: number): void {
    this.#interruptStatus |= bits;
    this.#driveLine();
  }

  #driveLine(): void {
    const level = this.#interruptStatus !== 0;
    if (level === this.#lineLevel) return;
    this.#lineLevel = level;
    this.#env?.irq.set(level);
  }

  /**
   * Runs device or queue code on behalf of the guest. Anything it throws (a virtqueue rule broken,
   * guest memory out of range, a bug) becomes DEVICE_NEEDS_RESET: the host process carries on. A
   * divergence found by the machine's doors (a replay whose log disagrees) is not the guest's doing
   * and must stop the replay, so it goes through.
   */
  #guarded<T>(action: () => T, fallback: T): T {
    try {
      return action();
    } catch (error) {
      if (DivergenceError.is(error)) throw error;
      this.#fail(error instanceof Error ? error.message : String(error));
      return fallback;
    }
  }
}

/** Reads one saved queue; a ready queue must have a size the queue accepts. */
function readQueueState(value: PlainValue, path: string, sizeMax: number): VirtqueueState {
  const fields = StateReader.of(value, path);
  const addressWords = fields.array('addressWords', 6, (word, wordPath) => {
    if (typeof word !== 'number' || !Number.isInteger(word) || word < 0 || word > 0xffff_ffff) {
      throw new SnapshotError(`${wordPath}: not a 32-bit word`);
    }
    return word;
  });
  if (addressWords.length !== 6) throw new SnapshotError(`${path}.addressWords: not 6 words`);
  const size = fields.integer('size', 0xffff_ffff);
  const ready = fields.boolean('ready');
  if (ready && (size === 0 || size > sizeMax || (size & (size - 1)) !== 0)) {
    throw new SnapshotError(`${path}: a ready queue of size ${size}`);
  }
  return {
    size,
    ready,
    addressWords,
    nextAvailableIndex: fields.integer('nextAvailableIndex', 0xffff),
    usedIndex: fields.integer('usedIndex', 0xffff),
    signalledUsedIndex: fields.integerOrNull('signalledUsedIndex', 0xffff),
  };
}
