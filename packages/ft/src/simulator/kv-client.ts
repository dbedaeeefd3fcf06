import type { UdpEndpoint } from '@ftvm/net';
import type { EventLoop } from './loop.js';
import type { SimNetwork } from './network.js';
import type { Prng } from './prng.js';

/**
 * The simulator's kv load: clients of kv.elf's UDP protocol (`<id> GET|PUT|INCR key [value]`,
 * answers `<id> OK [v]` / `<id> NOTFOUND` / `<id> ERR reason`), each with its own UDP endpoint on
 * the gateway's host side. A client has one request out at a time and resends the very same
 * datagram (same id) until it is answered — the server's per-client memory of its last 32 answers
 * makes that exactly once. Every request goes into the history the checkers read.
 */

export type KvOperation = 'GET' | 'PUT' | 'INCR';

export type KvResponse =
  | { readonly status: 'OK'; readonly value: string | undefined }
  | { readonly status: 'NOTFOUND' }
  | { readonly status: 'ERR'; readonly reason: string };

/** One request of the history; times are virtual ns. */
export interface KvRequest {
  readonly client: string;
  readonly id: number;
  readonly operation: KvOperation;
  readonly key: string;
  /** PUT's value: unique in a run, so a read names the write it saw. */
  readonly value?: string;
  /** When it was first sent. */
  readonly invokedNs: number;
  /** When the first answer came back (undefined: never answered). */
  respondedNs?: number;
  response?: KvResponse;
  /** Datagrams sent for it (1 + retries). */
  attempts: number;
  /** A read of the final audit, after the load ended. */
  readonly audit?: boolean;
}

/** Keys of the load: registers take PUT and GET, counters INCR and GET. */
export const REGISTER_KEYS = ['k0', 'k1', 'k2', 'k3'] as const;
export const COUNTER_KEYS = ['c0', 'c1'] as const;

export interface KvClientOptions {
  readonly name: string;
  readonly endpoint: UdpEndpoint;
  /** Resend an unanswered request after this long, ns. */
  readonly retryNs: number;
  /** Mean pause between an answer and the next request, ns. */
  readonly thinkNs: number;
}

export class KvClient {
  readonly name: string;
  readonly endpoint: UdpEndpoint;
  /** This client's requests, in the order it made them. */
  readonly requests: KvRequest[] = [];
  /** Answers that contradict an earlier answer to the same id (an id applied twice). */
  readonly anomalies: string[] = [];
  readonly #loop: EventLoop;
  readonly #rng: Prng;
  readonly #network: SimNetwork;
  readonly #options: KvClientOptions;
  readonly #byId = new Map<number, KvRequest>();
  #nextId = 1;
  #outstanding: { request: KvRequest; payload: Uint8Array; timer: { cancelled: boolean } } | undefined;
  /** True while the client makes new requests of its own. */
  #generating = false;
  #queue: { operation: KvOperation; key: string; audit: boolean }[] = [];
  #onIdle: (() => void) | undefined;

  constructor(loop: EventLoop, rng: Prng, network: SimNetwork, options: KvClientOptions) {
    this.#loop = loop;
    this.#rng = rng;
    this.#network = network;
    this.#options = options;
    this.name = options.name;
    this.endpoint = options.endpoint;
    network.addClient(options.endpoint, (payload) => this.#received(payload));
  }

  /** Starts making requests of its own (a random mix) until {@link stopGenerating}. */
  startGenerating(): void {
    this.#generating = true;
    if (this.#outstanding === undefined) this.#next();
  }

  stopGenerating(): void {
    this.#generating = false;
  }

  /** Queues a GET of each key (the final audit); `onIdle` when all were answered. */
  audit(keys: readonly string[], onIdle: () => void): void {
    for (const key of keys) this.#queue.push({ operation: 'GET', key, audit: true });
    this.#onIdle = onIdle;
    if (this.#outstanding === undefined) this.#next();
  }

  /** The request still waiting for its answer, if any. */
  get outstanding(): KvRequest | undefined {
    return this.#outstanding?.request;
  }

  #next(): void {
    const queued = this.#queue.shift();
    if (queued !== undefined) {
      this.#issue(queued.operation, queued.key, queued.audit);
      return;
    }
    if (!this.#generating) {
      const onIdle = this.#onIdle;
      this.#onIdle = undefined;
      onIdle?.();
      return;
    }
    const operation = this.#rng.weighted<KvOperation>([
      ['PUT', 4],
      ['GET', 3],
      ['INCR', 3],
    ]);
    const key =
      operation === 'INCR'
        ? this.#rng.pick(COUNTER_KEYS)
        : operation === 'PUT'
          ? this.#rng.pick(REGISTER_KEYS)
          : this.#rng.pick([...REGISTER_KEYS, ...COUNTER_KEYS]);
    this.#issue(operation, key, false);
  }

  #issue(operation: KvOperation, key: string, audit: boolean): void {
    const id = this.#nextId++;
    const value = operation === 'PUT' ? `${this.name}.${id}` : undefined;
    const request: KvRequest = {
      client: this.name,
      id,
      operation,
      key,
      ...(value === undefined ? {} : { value }),
      invokedNs: this.#loop.now,
      attempts: 0,
      ...(audit ? { audit } : {}),
    };
    this.requests.push(request);
    this.#byId.set(id, request);
    const text = value === undefined ? `${id} ${operation} ${key}` : `${id} ${operation} ${key} ${value}`;
    this.#outstanding = { request, payload: new TextEncoder().encode(text), timer: { cancelled: true } };
    this.#send();
  }

  #send(): void {
    const outstanding = this.#outstanding;
    if (outstanding === undefined) return;
    outstanding.request.attempts++;
    this.#network.sendFromClient(this.endpoint, outstanding.payload);
    outstanding.timer = this.#loop.after(this.#options.retryNs, () => {
      if (this.#outstanding === outstanding) this.#send();
    });
  }

  #received(payload: Uint8Array): void {
    const text = new TextDecoder().decode(payload).replace(/\r?\n$/, '');
    const parsed = parseResponse(text);
    if (parsed === undefined) {
      this.anomalies.push(`${this.name}: an answer that does not parse: ${JSON.stringify(text)}`);
      return;
    }
    const request = this.#byId.get(parsed.id);
    if (request === undefined) {
      this.anomalies.push(`${this.name}: an answer to id ${parsed.id}, which was never sent`);
      return;
    }
    if (request.response !== undefined) {
      // A late copy (a resend answered twice): the server must give the remembered answer.
      if (!sameResponse(request.response, parsed.response)) {
        this.anomalies.push(
          `${this.name}: id ${parsed.id} (${describeRequest(request)}) answered ${formatResponse(request.response)} and later ${formatResponse(parsed.response)}: applied twice`,
        );
      }
      return;
    }
    request.response = parsed.response;
    request.respondedNs = this.#loop.now;
    const outstanding = this.#outstanding;
    if (outstanding?.request === request) {
      outstanding.timer.cancelled = true;
      this.#outstanding = undefined;
      const think =
        this.#queue.length > 0 || !this.#generating ? 0 : this.#rng.exponential(this.#options.thinkNs);
      this.#loop.after(think, () => {
        if (this.#outstanding === undefined) this.#next();
      });
    }
  }
}

export function parseResponse(text: string): { id: number; response: KvResponse } | undefined {
  const match = /^(\d+) (OK|NOTFOUND|ERR)(?: (.*))?$/.exec(text);
  if (match === null) return undefined;
  const id = Number(match[1]);
  const status = match[2] as 'OK' | 'NOTFOUND' | 'ERR';
  const rest = match[3];
  if (status === 'NOTFOUND') return rest === undefined ? { id, response: { status } } : undefined;
  if (status === 'ERR') return { id, response: { status, reason: rest ?? '' } };
  return { id, response: { status, value: rest } };
}

function sameResponse(a: KvResponse, b: KvResponse): boolean {
  return formatResponse(a) === formatResponse(b);
}

export function formatResponse(response: KvResponse | undefined): string {
  if (response === undefined) return '(no answer)';
  if (response.status === 'OK') return response.value === undefined ? 'OK' : `OK ${response.value}`;
  if (response.status === 'ERR') return `ERR ${response.reason}`;
  return 'NOTFOUND';
}

export function describeRequest(request: KvRequest): string {
  return request.value === undefined
    ? `${request.client}#${request.id} ${request.operation} ${request.key}`
    : `${request.client}#${request.id} ${request.operation} ${request.key} ${request.value}`;
}
