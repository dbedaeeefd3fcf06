import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer, request, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { ExitStatus, FtvmError } from '@ftvm/core';
import type { z } from 'zod';
import { clientTlsOptions, explainTlsFailure, isPsk, peerName, serverTlsOptions } from './auth.js';
import type { Credentials } from './certs.js';

/**
 * The control API's transport: JSON over HTTPS with mutual TLS against the cluster CA (or TLS-PSK
 * with the cluster's pre-shared key, `auth.ts`). A peer without a certificate from the CA (without
 * the key) is refused in the TLS handshake, before any of its bytes is parsed as HTTP; a handler
 * sees the peer's name (its certificate's common name, or its PSK identity) and says which names
 * may call it.
 */

/** An API error with its HTTP status and a stable code (`not-found`, `invalid`, `forbidden` …). */
export class ApiError extends FtvmError {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message, 'FTVM_ERROR', status >= 500 ? ExitStatus.ioError : ExitStatus.dataError);
  }
}

/** What a route handler gets. */
export interface ApiRequest {
  readonly method: string;
  readonly path: string;
  /** The path's parameters (`:name` segments). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The caller's name: its certificate's common name, or its PSK identity. */
  readonly peer: string;
  /** The body, parsed as JSON (undefined when empty). */
  readonly body: unknown;
}

export type ApiReply = {
  readonly status?: number;
  readonly json?: unknown;
  readonly html?: string;
  readonly text?: string;
};

export interface Route {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** `/v1/vms/:name` style. */
  readonly path: string;
  /** Common names allowed to call it; `*` for any holder of a cluster certificate. */
  readonly peers: readonly string[] | '*';
  readonly handle: (request: ApiRequest) => Promise<ApiReply> | ApiReply;
}

const BODY_BYTES_MAX = 96 * 1024 * 1024;

/** Parses `body` with `schema`; a failure is a 400 whose message names the field. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : '(body)';
  throw new ApiError(400, 'invalid', `${field}: ${issue?.message ?? 'invalid'}`);
}

/** Starts an HTTPS API on `host:port` with `routes`. */
export async function serveApi(
  credentials: Credentials,
  address: { host: string; port: number },
  routes: readonly Route[],
): Promise<Listening<Server>> {
  const compiled = routes.map((route) => ({ route, pattern: compile(route.path) }));
  const server = createServer(serverTlsOptions(credentials), (req, res) => {
    void dispatch(compiled, req, res);
  });
  server.on('tlsClientError', () => {});
  server.keepAliveTimeout = 30_000;
  return listening(server, address);
}

/** A started HTTP(S) server: where it listens and how to stop it. */
export interface Listening<S> {
  readonly server: S;
  readonly port: number;
  /** Closes the server and every connection it holds. */
  close(): Promise<void>;
}

/** Starts `server` on `host:port` (port 0: any free port). */
export async function listening<S extends HttpServer>(
  server: S,
  address: { host: string; port: number },
): Promise<Listening<S>> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address();
  return {
    server,
    port: typeof bound === 'object' && bound ? bound.port : address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function dispatch(
  routes: readonly { route: Route; pattern: RegExp }[],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'https://ftvm');
    let params: Record<string, string> | undefined;
    let found: Route | undefined;
    let pathMatched = false;
    for (const { route, pattern } of routes) {
      const match = pattern.exec(url.pathname);
      if (!match) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      found = route;
      params = { ...(match.groups ?? {}) };
      break;
    }
    if (!found) {
      throw pathMatched
        ? new ApiError(405, 'method-not-allowed', `${req.method} is not allowed on ${url.pathname}`)
        : new ApiError(404, 'not-found', `no such resource: ${url.pathname}`);
    }
    const peer = peerName(req.socket as TLSSocket);
    if (found.peers !== '*' && !found.peers.includes(peer)) {
      throw new ApiError(
        403,
        'forbidden',
        `${peer || 'this peer'} may not call ${req.method} ${url.pathname}`,
      );
    }
    const body = await readJson(req);
    const reply = await found.handle({
      method: req.method ?? 'GET',
      path: url.pathname,
      params: params ?? {},
      query: url.searchParams,
      peer,
      body,
    });
    send(res, reply);
  } catch (error) {
    if (error instanceof ApiError) {
      send(res, { status: error.status, json: { error: { code: error.reason, message: error.message } } });
    } else {
      const message = error instanceof Error ? error.message : String(error);
      send(res, { status: 500, json: { error: { code: 'internal', message } } });
    }
  }
}

function send(res: ServerResponse, reply: ApiReply): void {
  if (res.headersSent) return;
  const status = reply.status ?? 200;
  if (reply.html !== undefined) {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(reply.html);
  } else if (reply.text !== undefined) {
    res.writeHead(status, { 'content-type': 'text/plain; version=0.0.4' }).end(reply.text);
  } else {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(reply.json ?? {}));
  }
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > BODY_BYTES_MAX) {
        reject(new ApiError(413, 'too-large', `a request body over ${BODY_BYTES_MAX} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size === 0) return resolve(undefined);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new ApiError(400, 'invalid', 'the body is not JSON'));
      }
    });
  });
}

function compile(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? `(?<${segment.slice(1)}>[^/]+)` : escapeRegExp(segment)))
    .join('/');
  return new RegExp(`^${source}$`);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A client of one component's API, presenting `credentials`. */
export class ApiClient {
  readonly #agent: Agent;
  readonly #host: string;
  readonly #port: number;
  readonly #timeoutMs: number;
  readonly #credentials: Credentials;

  constructor(credentials: Credentials, address: string, options: { timeoutMs?: number } = {}) {
    const { host, port } = splitAddress(address);
    this.#host = host;
    this.#port = port;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#credentials = credentials;
    this.#agent = new Agent({
      ...clientTlsOptions(credentials, host),
      keepAlive: true,
      maxSockets: 8,
      // A resumed PSK session would not name this side to the server again: full handshakes.
      ...(isPsk(credentials) ? { maxCachedSessions: 0 } : {}),
    });
  }

  get address(): string {
    return `${this.#host}:${this.#port}`;
  }

  /** Calls `method path` with `body`; resolves with the JSON answer, rejects with ApiError. */
  call<T = unknown>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          host: this.#host,
          port: this.#port,
          method,
          path,
          agent: this.#agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (error) => reject(this.#unavailable(error)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            const status = res.statusCode ?? 500;
            if (status >= 200 && status < 300) return resolve((json ?? text) as T);
            const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
            reject(new ApiError(status, error?.code ?? 'http', error?.message ?? `HTTP ${status}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (error) => reject(this.#unavailable(error)));
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  #unavailable(error: Error): ApiError {
    return new ApiError(
      503,
      'unavailable',
      `${this.address}: ${explainTlsFailure(this.#credentials, error.message)}`,
    );
  }
}

/** `HOST:PORT` → parts (IPv6 in brackets). */
export function splitAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[3]);
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new ApiError(400, 'invalid', `invalid address ${JSON.stringify(address)}: HOST:PORT`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
}
