import type { ChannelErrorReason, FtMessage, Handshake, LogChannel } from '@ftvm/core';
import { ChannelError, ConfigError, LogFormatError } from '@ftvm/core';
import {
  CHANNEL_ERROR_REASONS,
  CONTROL_DETAIL_LENGTH_MAX,
  concatBytes,
  decodeAuthChallenge,
  decodeAuthResponse,
  decodeChannelControl,
  decodeHandshake,
  encodeAuthChallenge,
  encodeAuthResponse,
  encodeChannelControl,
  encodeHandshake,
  FRAME_HEADER_BYTES,
  type Frame,
  FrameDecoder,
  FrameType,
  HANDSHAKE_FRAME_BYTES_MAX,
  MessageDecoder,
  MessageEncoder,
} from '@ftvm/log-codec';
import { authAnswer, constantTimeEqual, keyBytes, randomNonce } from './auth.js';
import type { ByteStream } from './byte-stream.js';
import { type Scheduler, timerScheduler } from './host.js';

/** How long a handshake may take by default before the channel gives up ('connection'). */
export const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5000;
/** The reason a channel's close() gives in the goodbye it sends. */
export const CLOSE_GOODBYE_REASON = 'closed';

/** What one side of a logging channel says and accepts. */
export interface ChannelOptions {
  /** What this side says first: its VM, epoch, role, protocol version and host name. */
  readonly handshake: Handshake;
  /**
   * Decides on the peer's handshake once it is authenticated: a reason refuses the peer, undefined
   * accepts it. Default: {@link checkPeer} (same VM, an epoch not older than ours).
   */
  readonly verifyPeer?: (peer: Handshake) => ChannelErrorReason | undefined;
  /**
   * A key both sides share (bytes, or a string taken as UTF-8): each side proves it holds it by
   * answering the other's random challenge. Both sides must have one, or neither.
   */
  readonly preSharedKey?: Uint8Array | string;
  /** How long the handshake may take, in ms (default {@link HANDSHAKE_TIMEOUT_MS_DEFAULT}). */
  readonly handshakeTimeoutMs?: number;
  /** The timer of the handshake timeout (default: the host's setTimeout). */
  readonly scheduler?: Scheduler;
}

/**
 * The default check of a peer: refuses another VM ('wrong-vm') and an epoch older than ours
 * ('stale-epoch').
 */
export function checkPeer(local: Handshake, peer: Handshake): ChannelErrorReason | undefined {
  if (peer.vmId !== local.vmId) return 'wrong-vm';
  if (peer.epoch < local.epoch) return 'stale-epoch';
  return undefined;
}

function describeRefusal(reason: ChannelErrorReason, local: Handshake, peer: Handshake): string {
  switch (reason) {
    case 'wrong-vm':
      return `the peer replicates VM "${peer.vmId}", this side "${local.vmId}"`;
    case 'stale-epoch':
      return `the peer's epoch ${peer.epoch} does not match this side's ${local.epoch}`;
    default:
      return `the peer ${peer.role} on "${peer.host}" was refused (${reason})`;
  }
}

/**
 * Opens a logging channel over a byte stream: runs the handshake (both sides at once), then
 * carries protocol messages as checksummed frames. Resolves with the open channel, or rejects
 * with a {@link ChannelError} saying why the peer was refused or the connection failed (and closes
 * the stream); nothing the peer sent before is delivered. A local handshake or key that cannot be
 * used is a `ConfigError`.
 *
 * The handshake: each side sends its {@link Handshake} (and, with a pre-shared key, a random
 * challenge, then its answer to the peer's challenge); checks the peer's protocol version, its
 * answer, then `verifyPeer`; and sends its verdict. The channel opens when both verdicts accept. A
 * side that refuses tells the other why, so both report the same reason.
 */
export function openChannel(stream: ByteStream, options: ChannelOptions): Promise<LogChannel> {
  let ownFrame: Uint8Array;
  let key: Uint8Array | undefined;
  try {
    ownFrame = encodeHandshake(options.handshake);
    if (options.preSharedKey !== undefined) {
      key = keyBytes(options.preSharedKey);
      if (!(key instanceof Uint8Array) || key.length === 0)
        throw new TypeError('the pre-shared key is empty');
    }
    const timeout = options.handshakeTimeoutMs;
    if (timeout !== undefined && !(timeout > 0)) throw new TypeError('handshakeTimeoutMs must be positive');
  } catch (error) {
    stream.destroy();
    return Promise.reject(
      new ConfigError(`cannot open a logging channel: ${(error as Error).message}`, { cause: error }),
    );
  }
  return new StreamChannel(stream, options).start(ownFrame, key);
}

type State = 'handshake' | 'open' | 'closed';

interface Waiter {
  resolve(frame: Frame): void;
  reject(error: ChannelError): void;
}

/** The one implementation of {@link LogChannel}, over any {@link ByteStream}. */
class StreamChannel implements LogChannel {
  private state: State = 'handshake';
  private readonly frames = new FrameDecoder();
  private readonly decoder = new MessageDecoder();
  private readonly encoder = new MessageEncoder();
  private peerHandshake: Handshake | undefined;

  // The handshake: frames received and not yet taken, a step waiting for one, why it failed.
  private readonly handshakeFrames: Frame[] = [];
  private waiter: Waiter | undefined;
  private failure: ChannelError | undefined;
  private peerVerdictReceived = false;
  /** The end or failure of the stream that came after the peer's verdict, before the channel opened. */
  private deferredStreamEvent: (() => void) | undefined;
  private cancelTimeout: (() => void) | undefined;

  // Delivery: messages received and not yet handed to the listener; the close to report.
  private readonly inbox: FtMessage[] = [];
  private inboxHead = 0;
  private messageListener: ((message: FtMessage) => void) | undefined;
  private closeListener: ((error: Error | undefined) => void) | undefined;
  private closeError: Error | undefined;
  private closeReported = false;
  private draining = false;
  private drainScheduled = false;

  constructor(
    private readonly stream: ByteStream,
    private readonly options: ChannelOptions,
  ) {
    stream.onData((bytes) => this.receive(bytes));
    stream.onEnd(() => this.streamEnded());
    stream.onError((error) => this.streamFailed(error));
  }

  // --- LogChannel ------------------------------------------------------------------------------

  get peer(): Handshake {
    return this.peerHandshake as Handshake;
  }

  get bufferedBytes(): number {
    return this.stream.bufferedBytes;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  send(message: FtMessage): void {
    if (this.state !== 'open') return;
    const bytes = this.encoder.encode(message);
    if (bytes.length > 0) this.stream.write(bytes);
    if (message.type === 'goodbye') {
      this.stream.close();
      this.finish(undefined);
    }
  }

  onMessage(listener: (message: FtMessage) => void): void {
    this.messageListener = listener;
    this.scheduleDrain();
  }

  onClose(listener: (error: Error | undefined) => void): void {
    this.closeListener = listener;
    this.scheduleDrain();
  }

  close(options?: { flush?: boolean }): void {
    if (this.state !== 'open') return;
    if (options?.flush === false) {
      this.stream.destroy();
    } else {
      this.stream.write(this.encoder.encode({ type: 'goodbye', reason: CLOSE_GOODBYE_REASON }));
      this.stream.close();
    }
    // Messages received and not yet delivered are dropped: this side is done.
    this.inbox.length = 0;
    this.inboxHead = 0;
    this.finish(undefined);
  }

  // --- The handshake ---------------------------------------------------------------------------

  async start(ownFrame: Uint8Array, key: Uint8Array | undefined): Promise<LogChannel> {
    const timeoutMs = this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT;
    const scheduler = this.options.scheduler ?? timerScheduler;
    this.cancelTimeout = scheduler(timeoutMs, () => {
      this.handshakeFailed(
        new ChannelError('connection', `no handshake from the peer within ${timeoutMs} ms`),
      );
      this.stream.destroy();
    });
    try {
      this.peerHandshake = await this.handshake(ownFrame, key);
      this.alive();
    } catch (error) {
      const failure = ChannelError.is(error)
        ? error
        : new ChannelError('protocol', `the handshake failed: ${(error as Error).message}`, { cause: error });
      this.handshakeFailed(failure);
      // A no-op when the stream was already closed (after a refusal, sent in order) or destroyed.
      this.stream.close();
      throw this.failure;
    } finally {
      this.cancelTimeout?.();
      this.cancelTimeout = undefined;
    }
    this.state = 'open';
    // Frames the peer sent right after its verdict, then how its stream ended if it already did.
    for (const frame of this.handshakeFrames.splice(0)) {
      if (this.state !== 'open') break;
      this.handleFrame(frame);
    }
    const deferred = this.deferredStreamEvent;
    this.deferredStreamEvent = undefined;
    deferred?.();
    return this;
  }

  private async handshake(ownFrame: Uint8Array, key: Uint8Array | undefined): Promise<Handshake> {
    const local = this.options.handshake;
    const ownNonce = key ? randomNonce() : undefined;
    this.write(ownNonce ? concatBytes([ownFrame, encodeAuthChallenge(ownNonce)]) : ownFrame);

    const peerFrame = this.expect(await this.nextFrame(), FrameType.handshake, 'a handshake', key);
    const peer = this.decodeOrRefuse(() => decodeHandshake(peerFrame), 'handshake');
    if (peer.protocolVersion !== local.protocolVersion) {
      throw this.refuse(
        'version',
        `the peer speaks protocol version ${peer.protocolVersion}, this side ${local.protocolVersion}`,
      );
    }

    if (key && ownNonce) {
      const ownPayload = ownFrame.subarray(FRAME_HEADER_BYTES);
      if (constantTimeEqual(ownPayload, peerFrame.payload)) {
        throw this.refuse('authentication', "the peer presented this side's own handshake");
      }
      const challenge = this.expect(await this.nextFrame(), FrameType.authChallenge, 'a challenge', key);
      const peerNonce = this.decodeOrRefuse(() => decodeAuthChallenge(challenge), 'challenge');
      if (constantTimeEqual(peerNonce, ownNonce)) {
        throw this.refuse('authentication', "the peer sent back this side's own challenge");
      }
      const answer = await authAnswer(key, ownPayload, peerFrame.payload, peerNonce, ownNonce);
      this.alive();
      this.write(encodeAuthResponse(answer));
      const response = this.expect(await this.nextFrame(), FrameType.authResponse, 'an answer', key);
      const mac = this.decodeOrRefuse(() => decodeAuthResponse(response), 'answer');
      const expected = await authAnswer(key, peerFrame.payload, ownPayload, ownNonce, peerNonce);
      this.alive();
      if (!constantTimeEqual(mac, expected)) {
        throw this.refuse('authentication', 'the peer does not hold the pre-shared key');
      }
    }

    let verdict: ChannelErrorReason | undefined;
    try {
      verdict = this.options.verifyPeer ? this.options.verifyPeer(peer) : checkPeer(local, peer);
    } catch (error) {
      throw this.refuse('protocol', `verifyPeer failed: ${(error as Error).message}`, error);
    }
    if (verdict !== undefined) {
      if (!CHANNEL_ERROR_REASONS.includes(verdict)) {
        throw this.refuse('protocol', `verifyPeer gave an unknown reason ${String(verdict)}`);
      }
      throw this.refuse(verdict, describeRefusal(verdict, local, peer));
    }
    this.write(encodeChannelControl({ kind: 'accept' }));
    this.expect(await this.nextFrame(), FrameType.channelControl, 'a verdict', key);
    return peer;
  }

  /** Throws if the handshake failed meanwhile (a timeout, the connection). */
  private alive(): void {
    if (this.failure) throw this.failure;
  }

  private write(bytes: Uint8Array): void {
    this.alive();
    this.stream.write(bytes);
  }

  /** The next frame of the handshake. */
  private nextFrame(): Promise<Frame> {
    if (this.failure) return Promise.reject(this.failure);
    const frame = this.handshakeFrames.shift();
    if (frame) return Promise.resolve(frame);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * Checks that a handshake frame is the one expected. A refusal from the peer ends the handshake
   * with its reason; a peer that skips authentication, or demands it from a side without a key,
   * is an authentication failure; anything else out of place is a protocol error.
   */
  private expect(frame: Frame, type: number, what: string, key: Uint8Array | undefined): Frame {
    if (frame.type === FrameType.channelControl) {
      const control = this.decodeOrRefuse(() => decodeChannelControl(frame), 'verdict');
      if (control.kind === 'refuse') {
        throw new ChannelError(control.reason, `refused by the peer: ${control.detail}`);
      }
      if (type === FrameType.channelControl) return frame;
      if (key)
        throw this.refuse('authentication', 'the peer did not authenticate (it has no pre-shared key?)');
    }
    if (frame.type === FrameType.authChallenge && !key) {
      throw this.refuse('authentication', 'the peer requires a pre-shared key and this side has none');
    }
    if (frame.type !== type) {
      throw this.refuse('protocol', `expected ${what}, received a frame of type ${frame.type}`);
    }
    return frame;
  }

  private decodeOrRefuse<T>(decode: () => T, what: string): T {
    try {
      return decode();
    } catch (error) {
      throw this.refuse('protocol', `malformed ${what}: ${(error as Error).message}`, error);
    }
  }

  /** Tells the peer why it is refused, ends the stream, and returns the error to throw. */
  private refuse(reason: ChannelErrorReason, detail: string, cause?: unknown): ChannelError {
    const error = new ChannelError(reason, detail, cause === undefined ? undefined : { cause });
    if (!this.failure) {
      this.stream.write(
        encodeChannelControl({ kind: 'refuse', reason, detail: detail.slice(0, CONTROL_DETAIL_LENGTH_MAX) }),
      );
      this.stream.close();
      this.handshakeFailed(error);
    }
    return error;
  }

  private handshakeFailed(error: ChannelError): void {
    if (this.failure) return;
    this.failure = error;
    this.state = 'closed';
    this.handshakeFrames.length = 0;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  // --- Receiving -------------------------------------------------------------------------------

  private receive(bytes: Uint8Array): void {
    if (this.state === 'closed') return;
    let frames: Frame[];
    try {
      frames = this.frames.push(bytes);
    } catch (error) {
      this.protocolError(error);
      return;
    }
    for (const frame of frames) {
      // (Handling a frame may close the channel.)
      if ((this.state as State) === 'closed') return;
      if (this.state === 'open') {
        this.handleFrame(frame);
        continue;
      }
      // The handshake: frames before the peer's verdict are small.
      if (!this.peerVerdictReceived && frame.length > HANDSHAKE_FRAME_BYTES_MAX) {
        this.refuse('protocol', `a handshake frame of ${frame.length} bytes is too large`);
        return;
      }
      if (frame.type === FrameType.channelControl) this.peerVerdictReceived = true;
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = undefined;
        waiter.resolve(frame);
      } else {
        this.handshakeFrames.push(frame);
      }
    }
    if (this.state === 'handshake' && !this.peerVerdictReceived) {
      if (this.frames.pendingBytes > HANDSHAKE_FRAME_BYTES_MAX) {
        this.refuse('protocol', 'the peer sent an oversized handshake');
      }
    }
  }

  private handleFrame(frame: Frame): void {
    if (frame.type === FrameType.channelControl) {
      let refusal: ChannelError;
      try {
        const control = decodeChannelControl(frame);
        if (control.kind !== 'refuse')
          throw new LogFormatError('malformed-entry', 'a verdict after the handshake');
        refusal = new ChannelError(control.reason, `the peer closed the channel: ${control.detail}`);
      } catch (error) {
        this.protocolError(error);
        return;
      }
      this.stream.close();
      this.finish(refusal);
      return;
    }
    let message: FtMessage;
    try {
      message = this.decoder.decodeFrame(frame);
    } catch (error) {
      this.protocolError(error);
      return;
    }
    this.inbox.push(message);
    if (message.type === 'goodbye') {
      // The peer closes on purpose: after this message, an orderly close.
      this.stream.close();
      this.finish(undefined);
    } else {
      this.drain();
    }
  }

  /** A corrupt, malformed or misplaced frame: tell the peer, close, report 'protocol'. */
  private protocolError(cause: unknown): void {
    const detail = `corrupt or malformed frame from the peer: ${(cause as Error).message}`;
    if (this.state === 'handshake') {
      this.refuse('protocol', detail, cause);
      return;
    }
    if (this.state !== 'open') return;
    this.stream.write(
      encodeChannelControl({
        kind: 'refuse',
        reason: 'protocol',
        detail: detail.slice(0, CONTROL_DETAIL_LENGTH_MAX),
      }),
    );
    this.stream.close();
    this.finish(new ChannelError('protocol', detail, { cause }));
  }

  private streamEnded(): void {
    if (this.state === 'handshake' && this.peerVerdictReceived) {
      this.deferredStreamEvent = () => this.streamEnded();
      return;
    }
    if (this.state === 'handshake') {
      this.handshakeFailed(
        new ChannelError('connection', 'the peer closed the connection during the handshake'),
      );
      this.stream.close();
      return;
    }
    if (this.state !== 'open') return;
    this.stream.close();
    const truncated = this.frames.pendingBytes > 0 ? ' in the middle of a frame' : '';
    this.finish(
      new ChannelError('connection', `the peer closed the connection without a goodbye${truncated}`),
    );
  }

  private streamFailed(error: Error): void {
    const failure = ChannelError.is(error)
      ? error
      : new ChannelError('connection', `the connection failed: ${error.message}`, { cause: error });
    if (this.state === 'handshake' && this.peerVerdictReceived) {
      this.deferredStreamEvent = () => this.streamFailed(error);
      return;
    }
    if (this.state === 'handshake') {
      this.handshakeFailed(failure);
      this.stream.destroy();
      return;
    }
    if (this.state !== 'open') return;
    this.stream.destroy();
    this.finish(failure);
  }

  // --- Delivery --------------------------------------------------------------------------------

  private finish(error: Error | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Hands queued messages to the listener in order, then reports the close once. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.inboxHead < this.inbox.length && this.messageListener && !this.closeReported) {
        const message = this.inbox[this.inboxHead] as FtMessage;
        this.inbox[this.inboxHead++] = undefined as never;
        try {
          this.messageListener(message);
        } catch (error) {
          // A listener that throws closes the channel: what follows could not be trusted.
          this.listenerFailed(error);
        }
      }
      if (this.inboxHead === this.inbox.length) {
        this.inbox.length = 0;
        this.inboxHead = 0;
      }
    } finally {
      this.draining = false;
    }
    if (this.state !== 'closed' || this.closeReported || !this.closeListener || this.failure) return;
    if (this.inbox.length > 0 && this.messageListener) return;
    this.closeReported = true;
    this.inbox.length = 0;
    this.inboxHead = 0;
    const listener = this.closeListener;
    const error = this.closeError;
    queueMicrotask(() => listener(error));
  }

  private listenerFailed(error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    if (this.state === 'open') {
      this.stream.destroy();
      this.finish(failure);
    }
    this.inbox.length = 0;
    this.inboxHead = 0;
  }
}
