/**
 * A reliable, ordered, bidirectional byte stream between two hosts: a TCP or TLS socket, a
 * `MessagePort`, an in-process pair. The logging channel ({@link openChannel}) runs its handshake
 * and frames over any of them, so every transport behaves the same.
 *
 * Events: any number of `data`, then at most one of `end` (the peer ended its side in order) or
 * `error` (the stream failed: reset, disconnected, timed out); nothing after that. Events that
 * happen before a listener is set wait for it, in order.
 */
export interface ByteStream {
  /**
   * Queues bytes for the peer. The stream takes the array (it may transfer or keep it): the caller
   * must not change it afterwards. Ignored once the stream is closed or destroyed.
   */
  write(bytes: Uint8Array): void;
  /** Bytes written and not yet handed over to the network (or to the peer). */
  readonly bufferedBytes: number;
  /** Sets the receiver of incoming bytes (one; a later call replaces it). */
  onData(listener: (bytes: Uint8Array) => void): void;
  /** Sets what to call when the peer ends its side in order, after its last bytes. */
  onEnd(listener: () => void): void;
  /** Sets what to call when the stream fails. */
  onError(listener: (error: Error) => void): void;
  /** Ends our side once the bytes queued are out; no event is reported locally after it. */
  close(): void;
  /** Tears the stream down at once, dropping queued bytes; the peer sees an error. */
  destroy(): void;
}

type StreamEvent =
  | { readonly kind: 'data'; readonly bytes: Uint8Array }
  | { readonly kind: 'end' }
  | { readonly kind: 'error'; readonly error: Error };

/**
 * The listener side of a {@link ByteStream} for implementations: holds events until their listener
 * is set, delivers them in order, and lets through at most one terminal event (end or error).
 */
export class StreamEvents {
  private dataListener: ((bytes: Uint8Array) => void) | undefined;
  private endListener: (() => void) | undefined;
  private errorListener: ((error: Error) => void) | undefined;
  private readonly pending: StreamEvent[] = [];
  private terminated = false;
  private muted = false;
  private flushing = false;

  /** True once an end or an error was reported (or queued), or the stream was muted. */
  get done(): boolean {
    return this.terminated || this.muted;
  }

  setData(listener: (bytes: Uint8Array) => void): void {
    this.dataListener = listener;
    this.flush();
  }

  setEnd(listener: () => void): void {
    this.endListener = listener;
    this.flush();
  }

  setError(listener: (error: Error) => void): void {
    this.errorListener = listener;
    this.flush();
  }

  data(bytes: Uint8Array): void {
    if (this.done || bytes.length === 0) return;
    this.emit({ kind: 'data', bytes });
  }

  end(): void {
    if (this.done) return;
    this.terminated = true;
    this.emit({ kind: 'end' });
  }

  error(error: Error): void {
    if (this.done) return;
    this.terminated = true;
    this.emit({ kind: 'error', error });
  }

  /** Reports nothing more (the local side closed or destroyed the stream). */
  mute(): void {
    this.muted = true;
    this.pending.length = 0;
  }

  private emit(event: StreamEvent): void {
    this.pending.push(event);
    this.flush();
  }

  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      this.deliver();
    } finally {
      this.flushing = false;
    }
  }

  private deliver(): void {
    while (this.pending.length > 0 && !this.muted) {
      const event = this.pending[0] as StreamEvent;
      if (event.kind === 'data') {
        if (!this.dataListener) return;
        this.pending.shift();
        this.dataListener(event.bytes);
      } else if (event.kind === 'end') {
        if (!this.endListener) return;
        this.pending.shift();
        this.endListener();
      } else {
        if (!this.errorListener) return;
        this.pending.shift();
        this.errorListener(event.error);
      }
    }
  }
}
