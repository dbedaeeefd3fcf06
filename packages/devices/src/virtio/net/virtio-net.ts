import { type AccessWidth, type DeviceEventPayload, SnapshotError, type StateSection } from '@ftvm/core';
import { StateReader } from '../../state.js';
import { VIRTIO_QUEUE_SIZE_MAX, VirtioDeviceId } from '../constants.js';
import { VirtqueueError } from '../queue/virtqueue.js';
import { readConfigBytes } from '../transport/config-space.js';
import type { VirtioDevice, VirtioDeviceContext } from '../transport/virtio-device.js';

/**
 * virtio-net (virtio 1.2 §5.1) with a receive queue (0) and a transmit queue (1), no control
 * queue. Features: VIRTIO_NET_F_MAC (the configuration space holds the MAC, default
 * 52:54:00:12:34:56 as QEMU's user networking), VIRTIO_NET_F_STATUS (the link is always up) and
 * VIRTIO_F_VERSION_1, so every buffer starts with the 12-byte `virtio_net_hdr` (§5.1.6).
 *
 * Transmit: each chain's readable bytes, header stripped, leave through `env.output('frame', …)`
 * (held by the output rule on a primary, dropped on a backup). Frames longer than
 * {@link VIRTIO_NET_FRAME_BYTES_MAX} are dropped and counted.
 *
 * Receive (docs/architecture.md): a frame enters the guest only as an event at a recorded
 * instruction boundary. The host half, {@link VirtioNet.receive}, injects `{ type: 'frame', data }`;
 * applying it writes the frame into the next receive buffer with a zeroed header (num_buffers 1)
 * and raises the interrupt. With no receive buffer the frame waits in a device-side queue of at
 * most {@link VIRTIO_NET_PENDING_FRAMES_MAX} frames (beyond it: dropped and counted) and enters when
 * the driver adds buffers. A buffer too small for the frame drops the frame (counted) and stays
 * available, as QEMU does without mergeable buffers.
 *
 * State layout (section `virtio-net`, version 1): `pendingFrames` (byte arrays, oldest first) and
 * the counters of {@link VirtioNetStatistics} by name.
 */

/** Device feature bits (§5.1.3). */
export const VirtioNetFeature = {
  mac: 5n,
  /** The configuration space holds a link status (always up here). */
  status: 16n,
} as const;

/** `status` bit of the configuration space: the link is up. */
export const VIRTIO_NET_S_LINK_UP = 1;

/** The MAC address QEMU gives the first NIC: the guest's address on the ftvm network. */
export const VIRTIO_NET_DEFAULT_MAC = Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
/** `struct virtio_net_hdr` with VIRTIO_F_VERSION_1 (§5.1.6): 12 bytes. */
export const VIRTIO_NET_HEADER_BYTES = 12;
/** Largest Ethernet frame (without FCS) either way: 1500-byte payload + 14-byte header. */
export const VIRTIO_NET_FRAME_BYTES_MAX = 1514;
/** Most received frames that wait for receive buffers; more are dropped. */
export const VIRTIO_NET_PENDING_FRAMES_MAX = 64;
/** Size of each queue (QueueNumMax), as QEMU reports it. */
export const VIRTIO_NET_QUEUE_SIZE_MAX = VIRTIO_QUEUE_SIZE_MAX;
/** Event type of a received frame. */
export const NET_FRAME_RECEIVED = 'frame';
/** Output stream of transmitted frames. */
export const NET_FRAME_OUTPUT = 'frame';

const RECEIVE_QUEUE = 0;
const TRANSMIT_QUEUE = 1;
const STATE_VERSION = 1;
/** `mac` (6 bytes) and `status` (le16), as QEMU 7.2 exposes with these features. */
const CONFIG_SIZE_BYTES = 8;

/** What the device counted (guest-side state: the same on a primary and its backup). */
export interface VirtioNetStatistics {
  framesTransmitted: number;
  framesReceived: number;
  /** Transmitted frames longer than the limit, or empty. */
  transmitFramesDropped: number;
  /** Received frames longer than the limit (from a hostile log; the host half already drops them). */
  receiveOversizedFramesDropped: number;
  /** Received frames that met a full pending queue. */
  receiveQueueFullFramesDropped: number;
  /** Received frames that met a receive buffer too small for them. */
  receiveBufferTooSmallFramesDropped: number;
}

const STATISTIC_NAMES: readonly (keyof VirtioNetStatistics)[] = [
  'framesTransmitted',
  'framesReceived',
  'transmitFramesDropped',
  'receiveOversizedFramesDropped',
  'receiveQueueFullFramesDropped',
  'receiveBufferTooSmallFramesDropped',
];

/** Options of {@link VirtioNet}. */
export interface VirtioNetOptions {
  /** The MAC address in the configuration space (default 52:54:00:12:34:56). */
  readonly mac?: Uint8Array;
}

function zeroStatistics(): VirtioNetStatistics {
  return {
    framesTransmitted: 0,
    framesReceived: 0,
    transmitFramesDropped: 0,
    receiveOversizedFramesDropped: 0,
    receiveQueueFullFramesDropped: 0,
    receiveBufferTooSmallFramesDropped: 0,
  };
}

export class VirtioNet implements VirtioDevice {
  readonly kind = 'virtio-net';
  readonly deviceId = VirtioDeviceId.network;
  readonly deviceFeatures = (1n << VirtioNetFeature.mac) | (1n << VirtioNetFeature.status);
  readonly queueSizesMax = [VIRTIO_NET_QUEUE_SIZE_MAX, VIRTIO_NET_QUEUE_SIZE_MAX] as const;
  /** The MAC address the device reports. */
  readonly mac: Uint8Array;
  /** Frames the host half refused because they were too long (host-side, not saved). */
  hostOversizedFramesDropped = 0;

  readonly #config: Uint8Array;
  #context: VirtioDeviceContext | undefined;
  #pendingFrames: Uint8Array[] = [];
  #statistics = zeroStatistics();

  constructor(options: VirtioNetOptions = {}) {
    const mac = options.mac ?? VIRTIO_NET_DEFAULT_MAC;
    if (mac.length !== 6) throw new RangeError('a MAC address has 6 bytes');
    this.mac = mac.slice();
    this.#config = new Uint8Array(CONFIG_SIZE_BYTES);
    this.#config.set(this.mac, 0);
    this.#config[6] = VIRTIO_NET_S_LINK_UP;
  }

  /** A copy of the counters. */
  get statistics(): VirtioNetStatistics {
    return { ...this.#statistics };
  }

  /** How many received frames wait for receive buffers. */
  get pendingFrameCount(): number {
    return this.#pendingFrames.length;
  }

  /**
   * Host half: a frame from the network for the guest. It enters the guest as an event at the
   * next step boundary (logged on a primary). Frames over the limit are dropped here.
   */
  receive(frame: Uint8Array): void {
    const context = this.#context;
    if (context === undefined) return;
    if (frame.length === 0 || frame.length > VIRTIO_NET_FRAME_BYTES_MAX) {
      this.hostOversizedFramesDropped++;
      return;
    }
    context.env.inject({ type: NET_FRAME_RECEIVED, data: frame.slice() });
  }

  attach(context: VirtioDeviceContext): void {
    this.#context = context;
  }

  readConfig(offset: number, width: AccessWidth): number {
    return readConfigBytes(this.#config, offset, width);
  }

  writeConfig(): void {
    // The MAC is writable only with VIRTIO_NET_F_CTRL_MAC_ADDR-less legacy devices; not here (§5.1.4.1).
  }

  activate(): void {
    this.#deliverPending();
  }

  reset(): void {
    this.#pendingFrames = [];
  }

  notifyQueue(queueIndex: number): void {
    if (queueIndex === TRANSMIT_QUEUE) this.#transmit();
    else if (queueIndex === RECEIVE_QUEUE) this.#deliverPending();
  }

  applyEvent(event: DeviceEventPayload): void {
    if (event.type !== NET_FRAME_RECEIVED) return;
    const frame = event.data;
    if (!(frame instanceof Uint8Array)) return;
    if (frame.length === 0 || frame.length > VIRTIO_NET_FRAME_BYTES_MAX) {
      this.#statistics.receiveOversizedFramesDropped++;
      return;
    }
    if (this.#pendingFrames.length >= VIRTIO_NET_PENDING_FRAMES_MAX) {
      this.#statistics.receiveQueueFullFramesDropped++;
      return;
    }
    this.#pendingFrames.push(frame.slice());
    this.#deliverPending();
  }

  /**
   * A backup that became the primary tells the network where the guest's MAC lives now: a RARP
   * announcement (as QEMU sends after a migration, `qemu_announce_self`), broadcast from the
   * guest's address, so switches move the address to this port. An output like any frame.
   */
  onGoLive(): void {
    this.#context?.env.output(NET_FRAME_OUTPUT, reverseArpAnnouncement(this.mac));
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        pendingFrames: this.#pendingFrames.map((frame) => frame.slice()),
        ...this.#statistics,
      },
    };
  }

  restoreState(section: StateSection): void {
    const fields = StateReader.open(section, this.kind, STATE_VERSION);
    const pendingFrames = fields.array('pendingFrames', VIRTIO_NET_PENDING_FRAMES_MAX, (value, path) => {
      if (!(value instanceof Uint8Array) || value.length === 0 || value.length > VIRTIO_NET_FRAME_BYTES_MAX) {
        throw new SnapshotError(`${path}: not a frame`);
      }
      return value.slice();
    });
    const statistics = zeroStatistics();
    for (const name of STATISTIC_NAMES) statistics[name] = fields.integer(name, Number.MAX_SAFE_INTEGER);
    this.#pendingFrames = pendingFrames;
    this.#statistics = statistics;
  }

  /** Sends every frame the driver queued for transmission (§5.1.6.2). */
  #transmit(): void {
    const context = this.#requireContext();
    const queue = context.queues[TRANSMIT_QUEUE]!;
    let pushed = false;
    for (;;) {
      const chain = queue.popAvailable();
      if (chain === null) break;
      if (chain.readableBytes < VIRTIO_NET_HEADER_BYTES) {
        throw new VirtqueueError('virtio-net transmit buffer without its header');
      }
      const frameBytes = chain.readableBytes - VIRTIO_NET_HEADER_BYTES;
      if (frameBytes === 0 || frameBytes > VIRTIO_NET_FRAME_BYTES_MAX) {
        this.#statistics.transmitFramesDropped++;
      } else {
        const frame = queue.readReadable(chain, frameBytes, VIRTIO_NET_HEADER_BYTES);
        context.env.output(NET_FRAME_OUTPUT, frame);
        this.#statistics.framesTransmitted++;
      }
      queue.pushUsed(chain.headIndex, 0);
      pushed = true;
    }
    if (pushed) context.usedBuffersPushed(queue);
  }

  /** Moves waiting frames into receive buffers while there are both (§5.1.6.3, §5.1.6.4). */
  #deliverPending(): void {
    const context = this.#requireContext();
    if (!context.isLive()) return;
    const queue = context.queues[RECEIVE_QUEUE]!;
    if (!queue.ready) return;
    let pushed = false;
    while (this.#pendingFrames.length > 0) {
      const chain = queue.popAvailable();
      if (chain === null) break;
      if (chain.readable.length > 0) throw new VirtqueueError('virtio-net receive buffer is device-readable');
      const frame = this.#pendingFrames.shift()!;
      if (chain.writableBytes < VIRTIO_NET_HEADER_BYTES + frame.length) {
        // QEMU without mergeable buffers: the frame is dropped, the buffer stays for the next one.
        queue.undoPop();
        this.#statistics.receiveBufferTooSmallFramesDropped++;
        continue;
      }
      const packet = new Uint8Array(VIRTIO_NET_HEADER_BYTES + frame.length);
      packet[10] = 1; // num_buffers (le16): the frame fits in this one buffer
      packet.set(frame, VIRTIO_NET_HEADER_BYTES);
      queue.writeWritable(chain, packet);
      queue.pushUsed(chain.headIndex, packet.length);
      this.#statistics.framesReceived++;
      pushed = true;
    }
    if (pushed) context.usedBuffersPushed(queue);
  }

  #requireContext(): VirtioDeviceContext {
    if (this.#context === undefined) throw new VirtqueueError('virtio-net used before it was attached');
    return this.#context;
  }
}

/** Ethernet's shortest frame without its checksum: QEMU pads its announcements to it. */
const ANNOUNCEMENT_FRAME_BYTES = 60;

/**
 * A RARP "reverse request" (RFC 903) from `mac` about itself, broadcast: sender and target
 * hardware address `mac`, protocol addresses zero. It teaches switches, and asks nothing of anyone.
 */
export function reverseArpAnnouncement(mac: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ANNOUNCEMENT_FRAME_BYTES);
  const view = new DataView(frame.buffer);
  frame.fill(0xff, 0, 6); // broadcast
  frame.set(mac, 6);
  view.setUint16(12, 0x8035); // EtherType RARP
  view.setUint16(14, 1); // hardware: Ethernet
  view.setUint16(16, 0x0800); // protocol: IPv4
  frame[18] = 6;
  frame[19] = 4;
  view.setUint16(20, 3); // reverse request
  frame.set(mac, 22);
  frame.set(mac, 32);
  return frame;
}
