import type { FtConfig } from './config.js';

/**
 * Failure detection as both roles do it (§2.3): when the peer was last heard, the startup grace
 * until it has been heard once, a host's own pauses, and the pacing of requests to the arbiter.
 */
export class PeerWatch {
  readonly #config: FtConfig;
  #lastHeardMs: number;
  /** The last input of any kind (a tick, a message): a long gap is this host's own pause. */
  #lastActivityMs: number;
  /** The peer was heard since the channel opened (until then the startup grace applies). */
  #heardPeer = false;
  #arbiterInFlight = false;
  #arbiterRetryAtMs = 0;

  constructor(config: FtConfig, nowMs: number) {
    this.#config = config;
    this.#lastHeardMs = nowMs;
    this.#lastActivityMs = nowMs;
  }

  /**
   * Called first by every input. True when the gap since the last one is longer than half the
   * failure timeout: this host was not running (a paused process or VM; drivers tick far more
   * often), so the silence it would see is its own, and the peer gets a fresh timeout.
   */
  noticePause(nowMs: number): boolean {
    const gapMs = nowMs - this.#lastActivityMs;
    this.#lastActivityMs = Math.max(this.#lastActivityMs, nowMs);
    if (gapMs <= this.#config.failureTimeoutMs / 2) return false;
    this.#lastHeardMs = Math.max(this.#lastHeardMs, nowMs);
    return true;
  }

  /** Something arrived from the peer. */
  heard(nowMs: number): void {
    this.#lastHeardMs = nowMs;
    this.#heardPeer = true;
  }

  /** A new peer (a backup attached): a fresh timeout, and the startup grace until it is heard. */
  restart(nowMs: number): void {
    this.#lastHeardMs = nowMs;
    this.#heardPeer = false;
  }

  /** The peer has been silent longer than allowed: the failure timeout, or the startup grace. */
  isSilent(nowMs: number): boolean {
    const allowedMs = this.#heardPeer
      ? this.#config.failureTimeoutMs
      : Math.max(this.#config.failureTimeoutMs, this.#config.startupGraceMs);
    return nowMs - this.#lastHeardMs > allowedMs;
  }

  /** The peer is suspected now: true when a request to the arbiter should go out at once. */
  suspectedNow(nowMs: number): boolean {
    this.#arbiterRetryAtMs = nowMs;
    return this.arbiterRequestDue(nowMs);
  }

  /** True (and counted as sent) when no request is in flight and the retry time has come. */
  arbiterRequestDue(nowMs: number): boolean {
    if (this.#arbiterInFlight || nowMs < this.#arbiterRetryAtMs) return false;
    this.#arbiterInFlight = true;
    return true;
  }

  /** The arbiter answered, or (`reached` false) could not be reached: ask again after a while. */
  arbiterAnswered(reached: boolean, nowMs: number): void {
    this.#arbiterInFlight = false;
    if (!reached) this.#arbiterRetryAtMs = nowMs + this.#config.arbiterRetryMs;
  }
}
