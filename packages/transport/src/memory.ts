import type { LogChannel } from '@ftvm/core';
import type { ByteStream } from './byte-stream.js';
import { StreamEvents } from './byte-stream.js';
import { type ChannelOptions, openChannel } from './channel.js';
import { type Scheduler, timerScheduler } from './host.js';

/** Which end of an in-process link: `a` or `b`. */
export type MemoryEnd = 'a' | 'b';

export interface MemoryLinkOptions {
  /** How long bytes take from one end to the other, in ms (default 0: the next turn). */
  readonly delayMs?: number;
  /** Runs the deliveries (default: the host's setTimeout). */
  readonly scheduler?: Scheduler;
}

/**
 * Two connected in-process {@link ByteStream}s, `a` and `b`, with faults to inject. Bytes are
 * delivered in order, asynchronously, `delayMs` after they were written.
 */
export interface MemoryLink {
  readonly a: ByteStream;
  readonly b: ByteStream;
  /** The delay of bytes written from now on, in ms. */
  delayMs: number;
  /**
   * Holds the bytes heading to an end (or to both) as a paused host would: they stay queued
   * (the sender's `bufferedBytes` counts them) until {@link resume}.
   */
  pause(to?: MemoryEnd): void;
  /** Delivers what was held, in order, and lets bytes through again. */
  resume(to?: MemoryEnd): void;
  /** Cuts the link: both ends see a connection error; bytes in flight are lost. */
  disconnect(): void;
  /** Flips a bit of the last byte of the next chunk an end writes: the receiver sees a bad checksum. */
  corruptNextWrite(from?: MemoryEnd): void;
}

type Delivery = { bytes: Uint8Array | undefined; ready: boolean; cancel: (() => void) | undefined };

/** One direction of the link. */
class Lane {
  readonly queue: Delivery[] = [];
  inFlightBytes = 0;
  held = false;
  private pumping = false;

  constructor(readonly receiver: StreamEvents) {}

  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.held && this.queue[0]?.ready) {
        const delivery = this.queue.shift() as Delivery;
        if (delivery.bytes === undefined) {
          this.receiver.end();
        } else {
          this.inFlightBytes -= delivery.bytes.length;
          this.receiver.data(delivery.bytes);
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  drop(): void {
    for (const delivery of this.queue) delivery.cancel?.();
    this.queue.length = 0;
    this.inFlightBytes = 0;
  }
}

class MemoryStream implements ByteStream {
  readonly events = new StreamEvents();
  ended = false;
  corruptNext = false;

  constructor(
    private readonly link: Link,
    private readonly outgoing: () => Lane,
  ) {}

  write(bytes: Uint8Array): void {
    if (this.ended || this.link.cut || bytes.length === 0) return;
    let chunk = bytes;
    if (this.corruptNext) {
      this.corruptNext = false;
      chunk = new Uint8Array(bytes);
      chunk[chunk.length - 1] = (chunk[chunk.length - 1] as number) ^ 0x01;
    }
    const lane = this.outgoing();
    lane.inFlightBytes += chunk.length;
    this.link.send(lane, chunk);
  }

  get bufferedBytes(): number {
    return this.outgoing().inFlightBytes;
  }

  onData(listener: (bytes: Uint8Array) => void): void {
    this.events.setData(listener);
  }

  onEnd(listener: () => void): void {
    this.events.setEnd(listener);
  }

  onError(listener: (error: Error) => void): void {
    this.events.setError(listener);
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.events.mute();
    if (!this.link.cut) this.link.send(this.outgoing(), undefined);
  }

  destroy(): void {
    if (this.ended && this.link.cut) return;
    this.ended = true;
    this.events.mute();
    this.link.reset(this);
  }
}

class Link implements MemoryLink {
  readonly a: MemoryStream;
  readonly b: MemoryStream;
  private readonly toA: Lane;
  private readonly toB: Lane;
  delayMs: number;
  cut = false;
  private readonly scheduler: Scheduler;

  constructor(options: MemoryLinkOptions) {
    this.delayMs = options.delayMs ?? 0;
    this.scheduler = options.scheduler ?? timerScheduler;
    this.a = new MemoryStream(this, () => this.toB);
    this.b = new MemoryStream(this, () => this.toA);
    this.toA = new Lane(this.a.events);
    this.toB = new Lane(this.b.events);
  }

  send(lane: Lane, bytes: Uint8Array | undefined): void {
    const delivery: Delivery = { bytes, ready: false, cancel: undefined };
    lane.queue.push(delivery);
    delivery.cancel = this.scheduler(this.delayMs, () => {
      delivery.cancel = undefined;
      delivery.ready = true;
      lane.pump();
    });
  }

  private lanes(to: MemoryEnd | undefined): Lane[] {
    return to === undefined ? [this.toA, this.toB] : [to === 'a' ? this.toA : this.toB];
  }

  pause(to?: MemoryEnd): void {
    for (const lane of this.lanes(to)) lane.held = true;
  }

  resume(to?: MemoryEnd): void {
    for (const lane of this.lanes(to)) {
      lane.held = false;
      this.scheduler(0, () => lane.pump());
    }
  }

  corruptNextWrite(from: MemoryEnd = 'a'): void {
    (from === 'a' ? this.a : this.b).corruptNext = true;
  }

  disconnect(): void {
    if (this.cut) return;
    this.cut = true;
    this.toA.drop();
    this.toB.drop();
    for (const end of [this.a, this.b]) {
      this.scheduler(0, () => end.events.error(new Error('the link was disconnected')));
    }
  }

  /** One end was destroyed: the other sees a reset, as a TCP peer would. */
  reset(from: MemoryStream): void {
    if (this.cut) return;
    this.cut = true;
    this.toA.drop();
    this.toB.drop();
    const other = from === this.a ? this.b : this.a;
    this.scheduler(0, () => other.events.error(new Error('the connection was reset by the peer')));
  }
}

/** Two connected in-process byte streams with fault injection. */
export function createMemoryStreamPair(options: MemoryLinkOptions = {}): MemoryLink {
  return new Link(options);
}

export interface MemoryChannelPairOptions extends MemoryLinkOptions {
  /** The options of end `a`. */
  readonly a: ChannelOptions;
  /** The options of end `b`. */
  readonly b: ChannelOptions;
}

export interface MemoryChannelPair {
  readonly a: LogChannel;
  readonly b: LogChannel;
  readonly link: MemoryLink;
}

/**
 * Opens a logging channel over a new in-process link. Rejects with the error of end `a` when
 * either end refuses or fails (then that of `b` when only `b` failed).
 */
export async function createMemoryChannelPair(options: MemoryChannelPairOptions): Promise<MemoryChannelPair> {
  const link = createMemoryStreamPair(options);
  const [a, b] = await Promise.allSettled([openChannel(link.a, options.a), openChannel(link.b, options.b)]);
  if (a.status === 'fulfilled' && b.status === 'fulfilled') return { a: a.value, b: b.value, link };
  if (a.status === 'fulfilled') a.value.close({ flush: false });
  if (b.status === 'fulfilled') b.value.close({ flush: false });
  throw a.status === 'rejected' ? a.reason : (b as PromiseRejectedResult).reason;
}
