/**
 * A virtual L2 learning switch: the guest network's wiring between the VMs' NICs and the gateway.
 *
 * It learns which port each source MAC address sits behind, sends a frame for a known unicast
 * address out of that one port, and floods broadcast, multicast and unknown destinations to every
 * port but the one it came in on. When a MAC address shows up on another port it moves there: that
 * is how the network finds a new primary, whose first frame (an announcement, see `announceFrame`)
 * carries the guest's MAC from its own port.
 *
 * Deterministic: no timers, no clock of its own. Ports are served in the order they were attached;
 * the MAC table evicts the entry learned longest ago when full; entries age out only when
 * {@link VirtualSwitch.tick} is called with a time.
 *
 * Frames a port sends while the switch is already forwarding (a port that answers synchronously
 * from `deliver`) are queued and forwarded in order once the current frame is done, so a chatty
 * pair of ports cannot recurse without bound.
 */
import { ConfigError } from '@ftvm/core';
import { macAddressBytes, macAddressKey, parseMacAddress, readMacAddress } from './addresses.js';
import { ETHERNET_HEADER_BYTES } from './ethernet.js';

/** How many MAC addresses the switch remembers by default. */
export const MAC_TABLE_ENTRIES_MAX = 1024;
/** How long a learned address is kept without traffic from it, by default (Linux bridges' 300 s). */
export const MAC_AGING_MS = 300_000;
/** The longest frame the switch forwards by default: 1514 bytes plus a VLAN tag. */
export const SWITCH_FRAME_BYTES_MAX = 1518;
/** How many frames sent from inside a `deliver` call may wait for the one being forwarded. */
export const SWITCH_QUEUED_FRAMES_MAX = 256;

/** One end of a link into the switch: where the switch delivers frames. */
export interface SwitchPort {
  /**
   * Takes a frame out of the switch. The frame may be shared with other ports (a flood): treat it
   * as read-only. A port that throws has the error reported as a drop; other ports still get theirs.
   */
  deliver(frame: Uint8Array): void;
}

/** Where a frame can be sent: a switch link, a NIC, a gateway's input. */
export interface FrameSink {
  /**
   * Takes a frame. The frame passes to the receiver: the sender must not change it afterwards (it
   * may be queued, or delivered to several ports, without a copy).
   */
  send(frame: Uint8Array): void;
}

/** The handle {@link VirtualSwitch.attach} returns: send frames into the switch from this port. */
export interface SwitchLink extends FrameSink {
  /** The port's number, unique for the switch's lifetime, in order of attachment from 1. */
  readonly portNumber: number;
  /**
   * Sends a frame into the switch as if it arrived on this port; frames after detach are dropped.
   * The frame passes to the switch: do not change it afterwards.
   */
  send(frame: Uint8Array): void;
  /** Takes the port off the switch and forgets the addresses learned on it. */
  detach(): void;
}

/** Why the switch did not forward a frame (or a copy of one). */
export type SwitchDropReason =
  /** Shorter than an Ethernet header. */
  | 'truncated'
  /** Longer than the switch's frame limit. */
  | 'oversized'
  /** A group (multicast) address as source: no real NIC sends that. */
  | 'group-source'
  /** The destination sits behind the port the frame came in on. */
  | 'same-port'
  /** Sent from a detached port. */
  | 'detached-port'
  /** Too many frames sent from inside `deliver` calls. */
  | 'queue-full'
  /** A port's `deliver` threw. */
  | 'port-error';

/** A frame the switch dropped, reported through {@link VirtualSwitchOptions.onDrop}. */
export interface SwitchDrop {
  reason: SwitchDropReason;
  /** The port it came in on (or, for `port-error`, the port whose `deliver` threw). */
  portNumber: number;
  detail: string;
  /** For `port-error`: what the port threw. */
  error?: unknown;
}

/** A change of where an address sits, reported through {@link VirtualSwitchOptions.onMacMoved}. */
export interface MacMove {
  mac: string;
  fromPortNumber: number;
  toPortNumber: number;
}

export interface VirtualSwitchOptions {
  /** How many MAC addresses to remember; the oldest learned is evicted. Default {@link MAC_TABLE_ENTRIES_MAX}. */
  macTableEntriesMax?: number;
  /** Forget an address not heard from for this long, counted in `tick` time. Default {@link MAC_AGING_MS}. */
  macAgingMs?: number;
  /** Default {@link SWITCH_FRAME_BYTES_MAX}. */
  frameBytesMax?: number;
  /** Default {@link SWITCH_QUEUED_FRAMES_MAX}. */
  queuedFramesMax?: number;
  /** Told of every dropped frame. Must not throw. */
  onDrop?: (drop: SwitchDrop) => void;
  /** Told when an address moves to another port (a new primary took over the guest's MAC). */
  onMacMoved?: (move: MacMove) => void;
}

/** Counters, for tests and the live view. */
export interface SwitchStatistics {
  /** Frames sent into the switch. */
  framesReceived: number;
  /** Frames sent out of exactly one port (known destination). */
  framesForwarded: number;
  /** Frames sent out of every other port. */
  framesFlooded: number;
  /** Drops by reason. */
  drops: Record<SwitchDropReason, number>;
  /** Addresses that moved to another port. */
  macMoves: number;
  /** Addresses evicted because the table was full. */
  macEvictions: number;
  /** Addresses aged out by `tick`. */
  macExpirations: number;
}

interface MacEntry {
  portNumber: number;
  learnedAtMs: number;
}

interface AttachedPort {
  readonly port: SwitchPort;
  readonly portNumber: number;
}

/** The L2 learning switch; see the file comment. */
export class VirtualSwitch {
  readonly #macTableEntriesMax: number;
  readonly #macAgingMs: number;
  readonly #frameBytesMax: number;
  readonly #queuedFramesMax: number;
  readonly #onDrop: ((drop: SwitchDrop) => void) | undefined;
  readonly #onMacMoved: ((move: MacMove) => void) | undefined;
  /** Attached ports in order of attachment. */
  readonly #ports: AttachedPort[] = [];
  /** MAC (as a 48-bit number) to entry; Map order is learning order, so the first is the oldest. */
  readonly #macTable = new Map<number, MacEntry>();
  readonly #queue: { portNumber: number; frame: Uint8Array }[] = [];
  #forwarding = false;
  #nextPortNumber = 1;
  #nowMs = 0;
  readonly #statistics: SwitchStatistics = {
    framesReceived: 0,
    framesForwarded: 0,
    framesFlooded: 0,
    drops: {
      truncated: 0,
      oversized: 0,
      'group-source': 0,
      'same-port': 0,
      'detached-port': 0,
      'queue-full': 0,
      'port-error': 0,
    },
    macMoves: 0,
    macEvictions: 0,
    macExpirations: 0,
  };

  constructor(options: VirtualSwitchOptions = {}) {
    this.#macTableEntriesMax = positiveInteger(
      options.macTableEntriesMax ?? MAC_TABLE_ENTRIES_MAX,
      'macTableEntriesMax',
    );
    this.#macAgingMs = options.macAgingMs ?? MAC_AGING_MS;
    this.#frameBytesMax = positiveInteger(options.frameBytesMax ?? SWITCH_FRAME_BYTES_MAX, 'frameBytesMax');
    this.#queuedFramesMax = positiveInteger(
      options.queuedFramesMax ?? SWITCH_QUEUED_FRAMES_MAX,
      'queuedFramesMax',
    );
    this.#onDrop = options.onDrop;
    this.#onMacMoved = options.onMacMoved;
  }

  /** Attaches a port; frames for it arrive through its `deliver`, frames from it go in through the link. */
  attach(port: SwitchPort): SwitchLink {
    const attached: AttachedPort = { port, portNumber: this.#nextPortNumber++ };
    this.#ports.push(attached);
    let detached = false;
    return {
      portNumber: attached.portNumber,
      send: (frame) => {
        if (detached) {
          this.#statistics.framesReceived++;
          this.#drop('detached-port', attached.portNumber, 'frame sent on a detached port');
          return;
        }
        this.#receive(attached.portNumber, frame);
      },
      detach: () => {
        if (detached) return;
        detached = true;
        this.#ports.splice(this.#ports.indexOf(attached), 1);
        for (const [key, entry] of this.#macTable) {
          if (entry.portNumber === attached.portNumber) this.#macTable.delete(key);
        }
        // Frames it queued before detaching are still its own sends: forwarded as usual.
      },
    };
  }

  /**
   * Advances the switch's notion of time (any monotonic milliseconds: a tick count, a clock) and
   * forgets addresses not heard from for `macAgingMs`. Time never goes back: an earlier time is ignored.
   */
  tick(nowMs: number): void {
    if (nowMs > this.#nowMs) this.#nowMs = nowMs;
    for (const [key, entry] of this.#macTable) {
      // Map order is refresh order, so entries are sorted by learnedAtMs: stop at the first fresh one.
      if (this.#nowMs - entry.learnedAtMs < this.#macAgingMs) break;
      this.#macTable.delete(key);
      this.#statistics.macExpirations++;
    }
  }

  /** The port an address was learned on, if known. `mac` is `aa:bb:cc:dd:ee:ff`. */
  portOf(mac: string): number | undefined {
    const canonical = parseMacAddress(mac);
    if (canonical === undefined) return undefined;
    return this.#macTable.get(macAddressKey(macAddressBytes(canonical), 0))?.portNumber;
  }

  /** How many addresses the table holds. */
  get macTableSize(): number {
    return this.#macTable.size;
  }

  /** A copy of the counters. */
  get statistics(): SwitchStatistics {
    return { ...this.#statistics, drops: { ...this.#statistics.drops } };
  }

  #receive(portNumber: number, frame: Uint8Array): void {
    if (this.#forwarding) {
      if (this.#queue.length >= this.#queuedFramesMax) {
        this.#statistics.framesReceived++;
        this.#drop('queue-full', portNumber, `${this.#queue.length} frames already queued`);
        return;
      }
      this.#queue.push({ portNumber, frame });
      return;
    }
    this.#forwarding = true;
    try {
      this.#forward(portNumber, frame);
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
        this.#forward(next.portNumber, next.frame);
      }
    } finally {
      this.#forwarding = false;
    }
  }

  #forward(ingressPortNumber: number, frame: Uint8Array): void {
    this.#statistics.framesReceived++;
    if (frame.length < ETHERNET_HEADER_BYTES) {
      this.#drop('truncated', ingressPortNumber, `frame of ${frame.length} bytes`);
      return;
    }
    if (frame.length > this.#frameBytesMax) {
      this.#drop(
        'oversized',
        ingressPortNumber,
        `frame of ${frame.length} bytes, limit ${this.#frameBytesMax}`,
      );
      return;
    }
    if ((frame[6]! & 1) !== 0) {
      this.#drop('group-source', ingressPortNumber, `source ${readMacAddress(frame, 6)} is a group address`);
      return;
    }
    this.#learn(macAddressKey(frame, 6), frame, ingressPortNumber);

    const destinationIsGroup = (frame[0]! & 1) !== 0;
    const known = destinationIsGroup ? undefined : this.#macTable.get(macAddressKey(frame, 0));
    if (known !== undefined) {
      if (known.portNumber === ingressPortNumber) {
        this.#drop(
          'same-port',
          ingressPortNumber,
          `destination ${readMacAddress(frame, 0)} is behind the ingress port`,
        );
        return;
      }
      const egress = this.#ports.find((attached) => attached.portNumber === known.portNumber);
      if (egress !== undefined) {
        this.#statistics.framesForwarded++;
        this.#deliver(egress, frame);
        return;
      }
    }
    this.#statistics.framesFlooded++;
    // A copy of the list: a port may attach or detach from inside deliver.
    for (const attached of [...this.#ports]) {
      if (attached.portNumber !== ingressPortNumber) this.#deliver(attached, frame);
    }
  }

  #learn(key: number, frame: Uint8Array, portNumber: number): void {
    const entry = this.#macTable.get(key);
    if (entry !== undefined) {
      // Delete and insert again so Map order stays the order of last refresh.
      this.#macTable.delete(key);
      if (entry.portNumber !== portNumber) {
        this.#statistics.macMoves++;
        this.#onMacMoved?.({
          mac: readMacAddress(frame, 6),
          fromPortNumber: entry.portNumber,
          toPortNumber: portNumber,
        });
      }
    } else if (this.#macTable.size >= this.#macTableEntriesMax) {
      const oldest = this.#macTable.keys().next().value;
      if (oldest !== undefined) this.#macTable.delete(oldest);
      this.#statistics.macEvictions++;
    }
    this.#macTable.set(key, { portNumber, learnedAtMs: this.#nowMs });
  }

  #deliver(attached: AttachedPort, frame: Uint8Array): void {
    try {
      attached.port.deliver(frame);
    } catch (error) {
      this.#drop('port-error', attached.portNumber, `port ${attached.portNumber} threw from deliver`, error);
    }
  }

  #drop(reason: SwitchDropReason, portNumber: number, detail: string, error?: unknown): void {
    this.#statistics.drops[reason]++;
    if (this.#onDrop === undefined) return;
    const drop: SwitchDrop = { reason, portNumber, detail };
    if (error !== undefined) drop.error = error;
    this.#onDrop(drop);
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new ConfigError(`switch option ${name} must be a positive integer, got ${value}`);
  return value;
}
