/** A kv client over a UDP socket of its own: retries with the same id, records everything it sees. */
import { createSocket, type Socket } from 'node:dgram';
import { ConfigError, HostIoError } from '@ftvm/core';
import { History, type KvOperation } from '../history.js';
import { encodeRequest, formatResponse, type KvOpName, type KvResponse, parseResponse } from '../protocol.js';
import { seededRandom } from '../random.js';

/** Where the kv service listens (for ftvm: the host side of a `hostfwd`). */
export interface KvTarget {
  host: string;
  port: number;
}

export interface KvClientOptions {
  target: KvTarget;
  /** The client's name in the history; default `udp:<local port>`. */
  name?: string;
  /** The history to record into (shared by the clients of a load); default a new one. */
  history?: History;
  /** Milliseconds on a monotonic clock shared by every client of the history; default `performance.now()`. */
  clock?: () => number;
  /** How long to wait for an answer before sending the request again; default 250 ms. */
  timeoutMs?: number;
  /** How many times to send a request again (same id) before giving up on it; default 4. */
  retries?: number;
  /** The first request id (then +1 per request, wrapping at 2^32); default: drawn from the time. */
  firstId?: number;
  /** The local address to bind; default 127.0.0.1 for a loopback target, else 0.0.0.0. */
  bindAddress?: string;
}

interface Pending {
  operation: KvOperation;
  text: string;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve(operation: KvOperation): void;
}

/** How many finished ids a client remembers to spot a later, different answer. */
const FINISHED_MEMORY = 4096;

/**
 * A kv client on its own UDP socket (so the server sees it as one client, with its own exactly-once
 * memory). `request` sends, waits `timeoutMs` for the answer with the same id, sends the same
 * datagram again up to `retries` times, and resolves with the operation record: with a `response`,
 * or indeterminate. Every received datagram goes into the history, answered or not.
 */
export class KvClient {
  readonly name: string;
  readonly history: History;
  private readonly pending = new Map<number, Pending>();
  private readonly finished = new Map<number, string | undefined>();
  private nextId: number;
  private closed = false;
  private strayAnswers = 0;
  private contradictionCount = 0;
  private lastSocketError: Error | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly options: Required<Pick<KvClientOptions, 'target' | 'clock' | 'timeoutMs' | 'retries'>>,
    name: string | undefined,
    history: History,
    firstId: number,
  ) {
    this.name = name ?? `udp:${socket.address().port}`;
    this.history = history;
    this.nextId = firstId >>> 0;
    socket.on('message', (message) => this.onDatagram(message.toString('latin1')));
    socket.on('error', (error) => {
      this.lastSocketError = error;
    });
  }

  /** Opens a client: binds a fresh UDP socket. */
  static async open(options: KvClientOptions): Promise<KvClient> {
    const { target } = options;
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535)
      throw new ConfigError(`kv: bad target port ${target.port}`);
    const timeoutMs = options.timeoutMs ?? 250;
    const retries = options.retries ?? 4;
    if (!(timeoutMs > 0)) throw new ConfigError(`kv: timeoutMs must be positive, not ${timeoutMs}`);
    if (!Number.isInteger(retries) || retries < 0) throw new ConfigError(`kv: bad retries ${retries}`);
    const clock = options.clock ?? (() => performance.now());
    const loopback = target.host === 'localhost' || target.host.startsWith('127.');
    const bindAddress = options.bindAddress ?? (loopback ? '127.0.0.1' : '0.0.0.0');
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (error) =>
        reject(new HostIoError(`kv: cannot bind a UDP socket on ${bindAddress}`, { cause: error })),
      );
      socket.bind(0, bindAddress, () => resolve());
    });
    socket.removeAllListeners('error');
    const firstId = options.firstId ?? seededRandom(Date.now() ^ socket.address().port).uint32();
    return new KvClient(
      socket,
      { target, clock, timeoutMs, retries },
      options.name,
      options.history ?? new History(),
      firstId,
    );
  }

  /** The local UDP port: the server's name for this client. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** The id the next request will carry. */
  get nextRequestId(): number {
    return this.nextId;
  }

  /** Requests in flight. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Well-formed answers to ids that were not outstanding (late duplicates of retries, mostly). */
  get strays(): number {
    return this.strayAnswers;
  }

  /** Answers to ids already answered that say something else (also recorded in the history). */
  get contradictions(): number {
    return this.contradictionCount;
  }

  /** The last error the socket reported (they do not stop the client: requests time out). */
  get socketError(): Error | undefined {
    return this.lastSocketError;
  }

  /**
   * Sends one request and resolves with its operation record once answered, or indeterminate (no
   * `response`) after `retries` resends without an answer. Throws a ConfigError for an invalid
   * request (bad key or value) and when the client is closed.
   */
  async request(op: KvOpName, key: string, value?: string): Promise<KvOperation> {
    if (this.closed) throw new ConfigError('kv: the client is closed');
    const id = this.nextId;
    const request = value === undefined ? { id, op, key } : { id, op, key, value };
    const text = encodeRequest(request);
    this.nextId = (this.nextId + 1) >>> 0;
    const operation = this.history.invoke(this.name, request, this.options.clock());
    return new Promise<KvOperation>((resolve) => {
      const pending: Pending = { operation, text, timer: undefined, resolve };
      this.pending.set(id, pending);
      this.attempt(id, pending);
    });
  }

  async get(key: string): Promise<KvResponse | undefined> {
    return (await this.request('GET', key)).response;
  }

  async put(key: string, value: string): Promise<KvResponse | undefined> {
    return (await this.request('PUT', key, value)).response;
  }

  async del(key: string): Promise<KvResponse | undefined> {
    return (await this.request('DEL', key)).response;
  }

  async incr(key: string): Promise<KvResponse | undefined> {
    return (await this.request('INCR', key)).response;
  }

  /** Closes the socket; requests still in flight resolve indeterminate. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, pending] of this.pending) this.giveUp(id, pending);
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private attempt(id: number, pending: Pending): void {
    if (this.closed || (pending.operation.attempts ?? 0) > this.options.retries) {
      this.giveUp(id, pending);
      return;
    }
    pending.operation.attempts = (pending.operation.attempts ?? 0) + 1;
    this.socket.send(pending.text, this.options.target.port, this.options.target.host, (error) => {
      if (error) this.lastSocketError = error;
    });
    pending.timer = setTimeout(() => this.attempt(id, pending), this.options.timeoutMs);
  }

  private giveUp(id: number, pending: Pending): void {
    clearTimeout(pending.timer);
    this.pending.delete(id);
    this.remember(id, undefined);
    pending.resolve(pending.operation);
  }

  private remember(id: number, answer: string | undefined): void {
    this.finished.set(id, answer);
    if (this.finished.size > FINISHED_MEMORY) this.finished.delete(this.finished.keys().next().value!);
  }

  private onDatagram(text: string): void {
    const atMs = this.options.clock();
    this.history.receive(this.name, text, atMs);
    const parsed = parseResponse(text);
    if (!parsed.ok) return; // recorded; the checker reports it
    const { id } = parsed.value;
    const canonical = formatResponse(parsed.value);
    const pending = this.pending.get(id);
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      this.pending.delete(id);
      this.history.complete(pending.operation, parsed.value, atMs);
      this.remember(id, canonical);
      pending.resolve(pending.operation);
      return;
    }
    this.strayAnswers++;
    if (!this.finished.has(id)) return;
    const earlier = this.finished.get(id);
    if (earlier === undefined) this.finished.set(id, canonical);
    else if (earlier !== canonical) this.contradictionCount++;
  }
}
