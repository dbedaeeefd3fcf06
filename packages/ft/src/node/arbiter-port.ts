import type { MessagePort } from 'node:worker_threads';
import type { Arbiter, ArbiterRecord, ArbiterResult } from '@ftvm/core';
import { ArbiterUnavailableError } from '@ftvm/core';

/**
 * An arbiter that lives in one thread, used from others over a `MessagePort`: the in-process
 * deployment's arbiter (hosts are worker threads; the arbiter is the main thread's). Requests carry
 * an id; a port that closes fails every call in flight with `ArbiterUnavailableError`.
 */
type ArbiterCall =
  | { readonly call: 'testAndSet'; readonly vmId: string; readonly fromEpoch: number; readonly owner: string }
  | { readonly call: 'read'; readonly vmId: string };
type ArbiterRequest = ArbiterCall & { readonly id: number };

type ArbiterReply =
  | { readonly id: number; readonly ok: true; readonly value: ArbiterResult | ArbiterRecord }
  | { readonly id: number; readonly ok: false; readonly message: string };

/** Answers requests from `port` with `arbiter` (in the thread that owns it). */
export function serveArbiter(arbiter: Arbiter, port: MessagePort): void {
  port.on('message', (request: ArbiterRequest) => {
    const answer =
      request.call === 'testAndSet'
        ? arbiter.testAndSet(request.vmId, request.fromEpoch, request.owner)
        : arbiter.read(request.vmId);
    answer.then(
      (value) => port.postMessage({ id: request.id, ok: true, value } satisfies ArbiterReply),
      (error: unknown) =>
        port.postMessage({
          id: request.id,
          ok: false,
          message: (error as Error).message,
        } satisfies ArbiterReply),
    );
  });
}

/** The client half of {@link serveArbiter}. */
export class PortArbiter implements Arbiter {
  readonly #port: MessagePort;
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  #nextId = 1;
  #closed = false;

  constructor(port: MessagePort) {
    this.#port = port;
    port.on('message', (reply: ArbiterReply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(new ArbiterUnavailableError(reply.message));
    });
    port.on('close', () => this.#failAll());
  }

  testAndSet(vmId: string, fromEpoch: number, owner: string): Promise<ArbiterResult> {
    return this.#call({ call: 'testAndSet', vmId, fromEpoch, owner }) as Promise<ArbiterResult>;
  }

  read(vmId: string): Promise<ArbiterRecord> {
    return this.#call({ call: 'read', vmId }) as Promise<ArbiterRecord>;
  }

  async close(): Promise<void> {
    this.#port.close();
    this.#failAll();
  }

  #call(request: ArbiterCall): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ArbiterUnavailableError('the arbiter port is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#port.postMessage({ ...request, id });
    });
  }

  #failAll(): void {
    this.#closed = true;
    for (const pending of this.#pending.values())
      pending.reject(new ArbiterUnavailableError('the arbiter port closed'));
    this.#pending.clear();
  }
}
