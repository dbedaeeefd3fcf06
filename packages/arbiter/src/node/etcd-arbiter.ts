/**
 * An arbiter in etcd (through the `etcd3` client).
 *
 * Keys, under a prefix (default `ftvm`):
 * - `<prefix>/vms/<vmId>/epoch`: the VM's record as JSON `{"epoch":n,"owner":"..."}`; absent at
 *   epoch 0.
 * - `<prefix>/vms/<vmId>/owner-alive`: JSON `{"epoch":n,"owner":"..."}` bound to a lease that the
 *   owner keeps alive ({@link EtcdArbiter.keepAlive}); it vanishes when the owner stops renewing it
 *   (it died, or lost its way to etcd) for the lease's TTL.
 *
 * The test-and-set from `e` to `e + 1` is one etcd transaction: if the epoch key's value is exactly
 * the bytes of the record at `e` (or, for `e` = 0, the key's create revision is 0: it does not
 * exist), put the new record; else get the key. etcd applies transactions one at a time, so of all
 * the clients that try, exactly one finds its comparison true. Comparing the whole value is safe
 * from ABA: epochs only grow, so a record's bytes never come back. Learning those bytes takes a
 * linearizable read first; when the record is not at `e` the call loses without a transaction.
 *
 * Every call has a deadline (`callTimeoutMs`, default 2 s): when etcd cannot be reached, does not
 * answer in time, or holds something that is not a record, the call rejects with
 * `ArbiterUnavailableError`. The client does not retry a call on its own (a retried transaction
 * could have been applied the first time), so an `ArbiterUnavailableError` from `testAndSet` can
 * hide a move that did happen: `read` tells, later, if the record is `fromEpoch + 1` with your owner.
 */
import {
  type Arbiter,
  type ArbiterRecord,
  type ArbiterResult,
  ArbiterUnavailableError,
  ConfigError,
} from '@ftvm/core';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop } from 'cockatiel';
import { Etcd3, type IOptions, isRecoverableError, type Lease } from 'etcd3';
import { assertValidOwner, assertValidTestAndSet, assertValidVmId, isValidOwner } from '../validate.js';

/** The default deadline of each call to etcd. */
export const ETCD_ARBITER_CALL_TIMEOUT_MS = 2_000;
/** The default TTL of an owner's liveness lease. */
export const ETCD_ARBITER_LEASE_TTL_SECONDS = 5;
/** The default key prefix. */
export const ETCD_ARBITER_PREFIX = 'ftvm';

export interface EtcdArbiterOptions {
  /** etcd client URLs, such as `http://10.0.0.5:2379` or `https://etcd-1:2379`. */
  hosts: string | readonly string[];
  /** Key prefix, without a trailing `/`; default {@link ETCD_ARBITER_PREFIX}. */
  prefix?: string;
  /** Deadline of each call, in milliseconds; default {@link ETCD_ARBITER_CALL_TIMEOUT_MS}. */
  callTimeoutMs?: number;
  /** TTL of the liveness lease, in whole seconds (≥ 1); default {@link ETCD_ARBITER_LEASE_TTL_SECONDS}. */
  leaseTtlSeconds?: number;
  /** TLS: passed to `etcd3` as is (a CA, and a client certificate and key for mutual TLS). */
  credentials?: IOptions['credentials'];
  /** etcd user and password: passed to `etcd3` as is. */
  auth?: IOptions['auth'];
  /** gRPC channel options: passed to `etcd3` as is. */
  grpcOptions?: IOptions['grpcOptions'];
}

export interface KeepAliveOptions {
  /**
   * Told when the lease is lost without `stop` or `revoke`: etcd expired or revoked it, or could
   * not be reached for longer than the TTL. The liveness key is then gone.
   */
  onLost?: (error: ArbiterUnavailableError) => void;
}

/** An owner's liveness claim, kept alive until stopped. */
export interface OwnerAliveHandle {
  readonly vmId: string;
  readonly owner: string;
  /** The epoch the owner held when it made the claim. */
  readonly epoch: number;
  /** True until `stop`, `revoke`, or the lease is lost. */
  readonly alive: boolean;
  /**
   * Stops renewing the lease: the claim vanishes from etcd within the TTL, as when the owner dies.
   */
  stop(): void;
  /** Withdraws the claim at once (revokes the lease). Rejects with `ArbiterUnavailableError`. */
  revoke(): Promise<void>;
}

const UNKNOWN: ArbiterRecord = Object.freeze({ epoch: 0, owner: '' });

/** The test-and-set arbiter in etcd; see the file's header for the keys and the transaction. */
export class EtcdArbiter implements Arbiter {
  readonly prefix: string;
  readonly callTimeoutMs: number;
  readonly leaseTtlSeconds: number;
  readonly #client: Etcd3;
  readonly #hosts: string;
  readonly #handles = new Set<{ release(): void }>();
  #closed = false;

  constructor(options: EtcdArbiterOptions) {
    const hosts = typeof options?.hosts === 'string' ? [options.hosts] : [...(options?.hosts ?? [])];
    if (hosts.length === 0 || hosts.some((host) => typeof host !== 'string' || host.length === 0)) {
      throw new ConfigError('EtcdArbiter needs at least one etcd host URL');
    }
    const prefix = options.prefix ?? ETCD_ARBITER_PREFIX;
    if (typeof prefix !== 'string' || prefix.length === 0 || prefix.endsWith('/')) {
      throw new ConfigError(`invalid etcd key prefix ${JSON.stringify(prefix)}: non-empty, no trailing /`);
    }
    const callTimeoutMs = options.callTimeoutMs ?? ETCD_ARBITER_CALL_TIMEOUT_MS;
    if (!Number.isFinite(callTimeoutMs) || callTimeoutMs <= 0) {
      throw new ConfigError(`callTimeoutMs must be a positive number, not ${callTimeoutMs}`);
    }
    const leaseTtlSeconds = options.leaseTtlSeconds ?? ETCD_ARBITER_LEASE_TTL_SECONDS;
    if (!Number.isSafeInteger(leaseTtlSeconds) || leaseTtlSeconds < 1) {
      throw new ConfigError(`leaseTtlSeconds must be a whole number of seconds ≥ 1, not ${leaseTtlSeconds}`);
    }
    this.prefix = prefix;
    this.callTimeoutMs = callTimeoutMs;
    this.leaseTtlSeconds = leaseTtlSeconds;
    this.#hosts = hosts.join(', ');
    this.#client = new Etcd3({
      hosts,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.auth ? { auth: options.auth } : {}),
      ...(options.grpcOptions ? { grpcOptions: options.grpcOptions } : {}),
      dialTimeout: callTimeoutMs,
      // Every unary call gets the deadline; streams (lease keep-alives) do not.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
      faultHandling: {
        // No retries of a call: a transaction whose answer was lost may have been applied.
        global: noop,
        // A host that failed three times in a row is skipped for a while, so that with several
        // hosts the calls go to the others.
        host: () =>
          circuitBreaker(handleWhen(isRecoverableError), {
            halfOpenAfter: callTimeoutMs,
            breaker: new ConsecutiveBreaker(3),
          }),
      },
    });
  }

  async testAndSet(vmId: string, fromEpoch: number, owner: string): Promise<ArbiterResult> {
    assertValidTestAndSet(vmId, fromEpoch, owner);
    const key = this.#epochKey(vmId);
    const next: ArbiterRecord = { epoch: fromEpoch + 1, owner };
    return this.#call(`testAndSet(${vmId}, ${fromEpoch})`, async () => {
      let current = await this.#client.get(key).buffer();
      // Each failed comparison shows a newer record, so this ends on the second pass at the latest.
      for (let attempt = 0; attempt < 3; attempt++) {
        const record = this.#parseRecord(key, current);
        if (record.epoch !== fromEpoch) return { won: false, record };
        const comparison =
          current === null
            ? this.#client.if(key, 'Create', '==', 0)
            : this.#client.if(key, 'Value', '==', current);
        const response = await comparison
          .then(this.#client.put(key).value(JSON.stringify(next)))
          .else(this.#client.get(key))
          .commit();
        if (response.succeeded) return { won: true, record: next };
        current = response.responses[0]?.response_range?.kvs?.[0]?.value ?? null;
      }
      throw new ArbiterUnavailableError(`etcd arbiter: the record at ${key} changed under every attempt`);
    });
  }

  async read(vmId: string): Promise<ArbiterRecord> {
    assertValidVmId(vmId);
    const key = this.#epochKey(vmId);
    return this.#call(`read(${vmId})`, async () =>
      this.#parseRecord(key, await this.#client.get(key).buffer()),
    );
  }

  /**
   * Claims, under a lease of `leaseTtlSeconds`, that `owner` (which must own the VM's current
   * epoch) is alive, and keeps the lease renewed until the handle is stopped. The claim is written
   * in a transaction that checks the record, so an owner that has just lost the VM cannot cover the
   * new owner's claim. Rejects with `ConfigError` when `owner` does not own the VM, and with
   * `ArbiterUnavailableError` when etcd cannot be reached.
   */
  async keepAlive(vmId: string, owner: string, options: KeepAliveOptions = {}): Promise<OwnerAliveHandle> {
    assertValidVmId(vmId);
    assertValidOwner(owner);
    const epochKey = this.#epochKey(vmId);
    const aliveKey = this.#aliveKey(vmId);
    let lease: Lease | undefined;
    let alive = true;
    const release = () => {
      alive = false;
      this.#handles.delete(tracker);
      lease?.release();
    };
    const tracker = { release };
    try {
      const epoch = await this.#call(`keepAlive(${vmId})`, async () => {
        // Before the lease: a caller that does not own the VM gets its ConfigError without one.
        let current = await this.#client.get(epochKey).buffer();
        for (let attempt = 0; attempt < 3; attempt++) {
          const record = this.#parseRecord(epochKey, current);
          if (current === null || record.owner !== owner) {
            throw new ConfigError(
              `${owner} does not own VM ${vmId}: ${record.epoch === 0 ? 'nobody has claimed it' : `epoch ${record.epoch} is owned by ${record.owner}`}`,
            );
          }
          if (!lease) {
            lease = this.#client.lease(this.leaseTtlSeconds);
            lease.on('lost', (error) => {
              if (!alive) return;
              release();
              options.onLost?.(
                new ArbiterUnavailableError(`etcd arbiter: lost the liveness lease of ${owner} on ${vmId}`, {
                  cause: error,
                }),
              );
            });
            await lease.grant();
          }
          const claim = JSON.stringify({ epoch: record.epoch, owner });
          const response = await this.#client
            .if(epochKey, 'Value', '==', current)
            .then(lease.put(aliveKey).value(claim))
            .else(this.#client.get(epochKey))
            .commit();
          if (response.succeeded) return record.epoch;
          current = response.responses[0]?.response_range?.kvs?.[0]?.value ?? null;
        }
        throw new ArbiterUnavailableError(
          `etcd arbiter: the record at ${epochKey} changed under every attempt`,
        );
      });
      if (this.#closed) throw new ArbiterUnavailableError('etcd arbiter: closed during keepAlive');
      this.#handles.add(tracker);
      const client = this;
      return {
        vmId,
        owner,
        epoch,
        get alive() {
          return alive;
        },
        stop: release,
        async revoke() {
          alive = false;
          client.#handles.delete(tracker);
          const revoking = lease?.revoke();
          if (revoking) await client.#call(`revoke the liveness lease of ${vmId}`, () => revoking);
        },
      };
    } catch (error) {
      alive = false;
      lease?.revoke().catch(() => {}); // best effort: left alone, it expires within its TTL anyway
      throw error;
    }
  }

  /**
   * True when the VM's current owner has a live claim ({@link keepAlive}) for its current epoch.
   * False at epoch 0, when the claim expired, or when it is an older owner's or epoch's. Reads both
   * keys at one revision.
   */
  async isOwnerAlive(vmId: string): Promise<boolean> {
    assertValidVmId(vmId);
    const epochKey = this.#epochKey(vmId);
    const aliveKey = this.#aliveKey(vmId);
    return this.#call(`isOwnerAlive(${vmId})`, async () => {
      const values = await this.#client.getAll().prefix(`${this.prefix}/vms/${vmId}/`).buffers();
      const record = this.#parseRecord(epochKey, values[epochKey] ?? null);
      const claim = values[aliveKey];
      if (record.epoch === 0 || claim === undefined) return false;
      const alive = parseJson(claim.toString('utf8'));
      return alive?.epoch === record.epoch && alive.owner === record.owner;
    });
  }

  /**
   * Stops renewing every liveness lease of this client (their claims expire within the TTL) and
   * closes the connections. Later calls reject with `ArbiterUnavailableError`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const handle of [...this.#handles]) handle.release();
    this.#client.close();
  }

  #epochKey(vmId: string): string {
    return `${this.prefix}/vms/${vmId}/epoch`;
  }

  #aliveKey(vmId: string): string {
    return `${this.prefix}/vms/${vmId}/owner-alive`;
  }

  #parseRecord(key: string, value: Buffer | null): ArbiterRecord {
    if (value === null) return UNKNOWN;
    const record = parseJson(value.toString('utf8'));
    if (!record || record.epoch < 1) {
      throw new ArbiterUnavailableError(`etcd arbiter: ${key} does not hold an epoch record`);
    }
    return record;
  }

  /** Runs one call under the deadline; anything but a ConfigError becomes ArbiterUnavailableError. */
  async #call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ArbiterUnavailableError(`etcd arbiter: ${what} on a closed client`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ArbiterUnavailableError(
              `etcd arbiter: no answer to ${what} within ${this.callTimeoutMs} ms from ${this.#hosts}`,
            ),
          ),
        this.callTimeoutMs,
      );
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (error) {
      if (ArbiterUnavailableError.is(error) || ConfigError.is(error)) throw error;
      const detail = error instanceof Error ? error.message : String(error);
      throw new ArbiterUnavailableError(`etcd arbiter: ${what} failed at ${this.#hosts}: ${detail}`, {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `{epoch, owner}` from JSON, or undefined when it is not one. */
function parseJson(text: string): ArbiterRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { epoch, owner } = value as { epoch?: unknown; owner?: unknown };
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0 || !isValidOwner(owner)) {
    return undefined;
  }
  return { epoch, owner };
}
