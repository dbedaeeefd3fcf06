import type { FtMessage, Handshake, LogChannel } from '@ftvm/core';
import { FT_PROTOCOL_VERSION } from '@ftvm/core';
import { entrySizeBytes } from '../entry-size.js';
import type { EventLoop, SimHost } from './loop.js';
import type { Prng } from './prng.js';

/**
 * A simulated logging channel between two hosts, with the transport's semantics (the
 * channel: ordered, whole messages; a closed channel is reported once; `close()` sends a goodbye
 * first unless `flush: false`; a corrupt frame closes the channel with an error on the receiver,
 * which refuses it to the sender) and a network underneath that the simulator disturbs:
 *
 * - every message takes a seeded latency plus its bytes at the link's bandwidth, in order;
 * - `partition()` holds everything in flight and sent meanwhile until `heal()` (TCP retransmits:
 *   nothing is lost, it comes late);
 * - `cut()` drops the connection: what was in flight is lost, both ends close with an error;
 * - `spike()` adds latency for a while; `corruptNext()` damages the next message one way.
 */

export type LinkSide = 'a' | 'b';

/** What the simulator's checkers see of a link. */
export interface LinkObserver {
  /** A message was handed to the receiving end's listener. */
  delivered(link: SimLink, to: LinkSide, message: FtMessage): void;
}

export interface SimLinkOptions {
  readonly name: string;
  readonly vmId: string;
  readonly epoch: number;
  /** The host of end `a` (the primary's) and of end `b` (the backup's). */
  readonly hostA: SimHost;
  readonly hostB: SimHost;
  /** One-way latency bounds, ns. */
  readonly latencyNs: readonly [number, number];
  /** Transmission time per byte, ns (8 is 1 Gbit/s). */
  readonly nsPerByte: number;
  readonly observer?: LinkObserver;
}

interface Direction {
  /** When the sender's interface is free again. */
  busyUntilNs: number;
  /** Arrival time of the last message, so none overtakes another. */
  lastArrivalNs: number;
  /** Bytes being transmitted, by the time their transmission ends. */
  transmitting: { endNs: number; bytes: number }[];
  /** What arrived during a partition (and after it, until those are delivered), in order. */
  held: Arrival[];
  flushScheduled: boolean;
  corruptNext: boolean;
}

/** What reaches an end: a message (maybe damaged), or the end of the stream. */
type Arrival =
  | { readonly kind: 'message'; readonly message: FtMessage; readonly corrupt: boolean }
  | { readonly kind: 'close'; readonly error: Error | undefined };

export class SimLink {
  readonly name: string;
  readonly a: SimChannelEnd;
  readonly b: SimChannelEnd;
  readonly #loop: EventLoop;
  readonly #rng: Prng;
  readonly #options: SimLinkOptions;
  readonly #directions: Record<LinkSide, Direction>;
  /** Bumped by a cut: deliveries of an older generation are lost. */
  #generation = 0;
  #cut = false;
  #partitioned = false;
  #spikeNs = 0;
  #spikeUntilNs = 0;

  constructor(loop: EventLoop, rng: Prng, options: SimLinkOptions) {
    this.#loop = loop;
    this.#rng = rng;
    this.#options = options;
    this.name = options.name;
    const direction = (): Direction => ({
      busyUntilNs: 0,
      lastArrivalNs: 0,
      transmitting: [],
      held: [],
      flushScheduled: false,
      corruptNext: false,
    });
    this.#directions = { a: direction(), b: direction() };
    const handshake = (role: 'primary' | 'backup', host: SimHost): Handshake => ({
      vmId: options.vmId,
      epoch: options.epoch,
      role,
      protocolVersion: FT_PROTOCOL_VERSION,
      host: host.name,
    });
    this.a = new SimChannelEnd(this, 'a', options.hostA, handshake('backup', options.hostB));
    this.b = new SimChannelEnd(this, 'b', options.hostB, handshake('primary', options.hostA));
  }

  get isCut(): boolean {
    return this.#cut;
  }

  get isPartitioned(): boolean {
    return this.#partitioned;
  }

  end(side: LinkSide): SimChannelEnd {
    return side === 'a' ? this.a : this.b;
  }

  // ---- faults ----

  /** The connection drops: messages in flight are lost, both ends close with an error. */
  cut(reason: string): void {
    if (this.#cut) return;
    this.#cut = true;
    this.#generation++;
    for (const side of ['a', 'b'] as const) {
      const end = this.end(side);
      this.#directions[side].held = [];
      end.host.after(this.#latency(), () => end.finish(new Error(`connection reset: ${reason}`)));
    }
  }

  /** Nothing gets through either way until {@link heal}; nothing is lost either. */
  partition(): void {
    this.#partitioned = true;
  }

  heal(): void {
    if (!this.#partitioned) return;
    this.#partitioned = false;
    if (this.#cut) return;
    for (const from of ['a', 'b'] as const) this.#scheduleFlush(from);
  }

  /** Adds `extraNs` to every message sent in the next `durationNs`. */
  spike(extraNs: number, durationNs: number): void {
    this.#spikeNs = extraNs;
    this.#spikeUntilNs = this.#loop.now + durationNs;
  }

  /** The next message sent from `from` arrives damaged. */
  corruptNext(from: LinkSide): void {
    this.#directions[from].corruptNext = true;
  }

  // ---- for the ends ----

  bufferedBytes(from: LinkSide): number {
    const direction = this.#directions[from];
    const now = this.#loop.now;
    while (direction.transmitting.length > 0 && (direction.transmitting[0] as { endNs: number }).endNs <= now)
      direction.transmitting.shift();
    let bytes = 0;
    for (const item of direction.transmitting) bytes += item.bytes;
    return bytes;
  }

  transmit(from: LinkSide, message: FtMessage): void {
    if (this.#cut) return;
    const direction = this.#directions[from];
    const bytes = messageBytes(message);
    const start = Math.max(this.#loop.now, direction.busyUntilNs);
    direction.busyUntilNs = start + bytes * this.#options.nsPerByte;
    direction.transmitting.push({ endNs: direction.busyUntilNs, bytes });
    const corrupt = direction.corruptNext;
    direction.corruptNext = false;
    this.#schedule(from, { kind: 'message', message, corrupt }, direction.busyUntilNs - this.#loop.now);
  }

  /** An orderly or abortive end of the stream, after what is in flight (from `from`'s side). */
  transmitClose(from: LinkSide, error: Error | undefined): void {
    if (this.#cut) return;
    this.#schedule(from, { kind: 'close', error }, 0);
  }

  #schedule(from: LinkSide, arrival: Arrival, transmitNs: number): void {
    const direction = this.#directions[from];
    const spike = this.#loop.now < this.#spikeUntilNs ? this.#spikeNs : 0;
    const atNs = Math.max(this.#loop.now + transmitNs + this.#latency() + spike, direction.lastArrivalNs);
    direction.lastArrivalNs = atNs;
    const to = this.end(other(from));
    const generation = this.#generation;
    this.#loop.at(
      atNs,
      () => {
        if (generation !== this.#generation) return;
        if (this.#partitioned || direction.held.length > 0) {
          // Behind a partition, or behind what it held: keep the order.
          direction.held.push(arrival);
          this.#scheduleFlush(from);
          return;
        }
        this.#arrive(to, arrival);
      },
      to.host,
    );
  }

  /** After a partition heals, what it held arrives, in order (TCP retransmits it). */
  #scheduleFlush(from: LinkSide): void {
    const direction = this.#directions[from];
    if (this.#partitioned || this.#cut || direction.flushScheduled || direction.held.length === 0) return;
    direction.flushScheduled = true;
    const to = this.end(other(from));
    const generation = this.#generation;
    to.host.after(this.#latency(), () => {
      direction.flushScheduled = false;
      if (generation !== this.#generation) return;
      if (this.#partitioned) return;
      for (const arrival of direction.held.splice(0)) this.#arrive(to, arrival);
    });
  }

  #arrive(to: SimChannelEnd, arrival: Arrival): void {
    if (arrival.kind === 'close') to.finish(arrival.error);
    else to.receive(arrival.message, arrival.corrupt);
  }

  #latency(): number {
    const [low, high] = this.#options.latencyNs;
    return Math.round(this.#rng.between(low, high));
  }

  delivered(to: LinkSide, message: FtMessage): void {
    this.#options.observer?.delivered(this, to, message);
  }
}

/** One end of a {@link SimLink}: a `LogChannel`. */
export class SimChannelEnd implements LogChannel {
  readonly peer: Handshake;
  readonly host: SimHost;
  readonly #link: SimLink;
  readonly #side: LinkSide;
  #closed = false;
  #closeError: Error | undefined;
  #closeReported = false;
  #onMessage: ((message: FtMessage) => void) | undefined;
  #onClose: ((error: Error | undefined) => void) | undefined;

  constructor(link: SimLink, side: LinkSide, host: SimHost, peer: Handshake) {
    this.#link = link;
    this.#side = side;
    this.host = host;
    this.peer = peer;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get bufferedBytes(): number {
    return this.#closed ? 0 : this.#link.bufferedBytes(this.#side);
  }

  send(message: FtMessage): void {
    if (this.#closed) return;
    this.#link.transmit(this.#side, message);
    if (message.type === 'goodbye') this.finish(undefined);
  }

  onMessage(listener: (message: FtMessage) => void): void {
    this.#onMessage = listener;
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.#onClose = listener;
    if (this.#closed) this.#reportClose();
  }

  close(options?: { flush?: boolean }): void {
    if (this.#closed) return;
    if (options?.flush === false) {
      this.#link.transmitClose(this.#side, new Error('connection reset by the peer'));
    } else {
      this.#link.transmit(this.#side, { type: 'goodbye', reason: 'the channel was closed' });
    }
    this.finish(undefined);
  }

  /** A message arrived (from the link). */
  receive(message: FtMessage, corrupt: boolean): void {
    if (this.#closed) return;
    if (corrupt) {
      // The transport's checksum fails: it refuses the peer and closes with an error.
      this.#link.transmitClose(
        this.#side,
        new Error('the peer closed the channel: corrupt or malformed frame from the peer: checksum mismatch'),
      );
      this.finish(
        new Error(`corrupt or malformed frame from the peer: checksum mismatch (a ${message.type})`),
      );
      return;
    }
    this.#link.delivered(this.#side, message);
    this.#onMessage?.(message);
    if (message.type === 'goodbye') this.finish(undefined);
  }

  /** The channel is closed: reported once, on a microtask, as the transport does. */
  finish(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    this.#reportClose();
  }

  #reportClose(): void {
    queueMicrotask(() => {
      if (this.#closeReported || this.#onClose === undefined) return;
      this.#closeReported = true;
      this.#onClose(this.#closeError);
    });
  }
}

function other(side: LinkSide): LinkSide {
  return side === 'a' ? 'b' : 'a';
}

/** About the bytes a message takes on the wire. */
export function messageBytes(message: FtMessage): number {
  switch (message.type) {
    case 'log': {
      let bytes = 16;
      for (const entry of message.entries) bytes += entrySizeBytes(entry);
      return bytes;
    }
    case 'transfer-pages':
      return 16 + message.pages.length + message.pageNumbers.length * 4;
    case 'transfer-disk':
      return 24 + message.data.length;
    case 'transfer-state':
      return 16 * 1024;
    case 'goodbye':
      return 16 + message.reason.length;
    default:
      return 32;
  }
}
