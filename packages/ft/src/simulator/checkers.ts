import type { MachineOutput } from '@ftvm/machine';
import { describeRequest, formatResponse, type KvRequest } from './kv-client.js';

/**
 * The simulator's checkers. {@link ReleaseChecker} watches outputs as the primaries release them
 * (split brain, the output rule); {@link checkKvHistory} reads the clients' history once a run is
 * over (lost acknowledged writes, stale reads, INCR exactly once).
 */

const ms = (ns: number): string => `${(ns / 1e6).toFixed(3)} ms`;

/**
 * Safety of releases, observed from outside the FT roles:
 * - one epoch, one primary: the first host that releases an output in an epoch owns it; another
 *   host releasing in the same epoch is split brain;
 * - the output rule: an output leaves only once the backup's acknowledgement of its covering log
 *   position reached the primary (acks are seen on the simulated channel), unless the primary
 *   runs alone by right: it won its current epoch at the arbiter's store after its last backup
 *   was attached (or it is a backup that won and went live), or its backup said goodbye (a
 *   backup says goodbye only as it halts, and never goes live after).
 */
export class ReleaseChecker {
  readonly failures: string[] = [];
  /** Outputs released, by kind. */
  readonly releasedByKind = new Map<string, number>();
  readonly #ownerOfEpoch = new Map<number, string>();
  readonly #ackedSeq = new Map<string, number>();
  /** Host → the epoch it won at the store with no backup attached since. */
  readonly #alone = new Map<string, number>();
  /** Hosts whose backup said goodbye since the last one was attached. */
  readonly #backupGone = new Set<string>();
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** `host` attached a backup (from the start, or a clone finished): its outputs wait for acks again. */
  backupAttached(host: string): void {
    this.#alone.delete(host);
    this.#backupGone.delete(host);
  }

  /** The arbiter's store moved the epoch to `epoch`, owned by `host` (whether or not the answer arrived). */
  epochWon(host: string, epoch: number): void {
    this.#alone.set(host, epoch);
  }

  /**
   * `host`'s backup said goodbye (it halted and never goes live): the primary runs alone by right
   * in whatever epoch it holds, until a new backup is attached.
   */
  backupLeft(host: string): void {
    this.#backupGone.add(host);
  }

  /** An acknowledgement reached `host`'s primary. */
  ackDelivered(host: string, receivedSeq: number): void {
    if (receivedSeq > (this.#ackedSeq.get(host) ?? -1)) this.#ackedSeq.set(host, receivedSeq);
  }

  /** `host`'s primary, in `epoch`, released `output`. */
  outputReleased(host: string, epoch: number, output: MachineOutput): void {
    this.releasedByKind.set(output.kind, (this.releasedByKind.get(output.kind) ?? 0) + 1);
    const what = `${output.device}/${output.kind} output at icount ${output.icount} (covering seq ${output.coveringSeq})`;
    const owner = this.#ownerOfEpoch.get(epoch);
    if (owner === undefined) this.#ownerOfEpoch.set(epoch, host);
    else if (owner !== host) {
      this.failures.push(
        `split brain: ${host} released a ${what} in epoch ${epoch}, whose outputs ${owner} released already (at ${ms(this.#now())})`,
      );
    }
    const acked = this.#ackedSeq.get(host) ?? -1;
    if (output.coveringSeq <= acked) return;
    if (this.#alone.get(host) === epoch || this.#backupGone.has(host)) return;
    this.failures.push(
      `output rule: ${host} (epoch ${epoch}) released a ${what} at ${ms(this.#now())}, but its backup acknowledged only up to seq ${acked} and it had not won epoch ${epoch} alone`,
    );
  }
}

/** Options of {@link checkKvHistory}. */
export interface KvHistoryOptions {
  /** Every request was answered: INCRs must then have given exactly 1..n. */
  readonly complete: boolean;
}

/**
 * Checks a kv history (all clients' requests with virtual times). Registers (PUT/GET with unique
 * values) must not lose an acknowledged write or read one overwritten before the read began;
 * counters (INCR/GET) must count every INCR id exactly once. Returns what it found wrong.
 */
export function checkKvHistory(requests: readonly KvRequest[], options: KvHistoryOptions): string[] {
  const failures: string[] = [];
  for (const request of requests) {
    const response = request.response;
    if (response === undefined) continue;
    const wrong = () =>
      failures.push(`unexpected answer ${formatResponse(response)} to ${describeRequest(request)}`);
    if (response.status === 'ERR') wrong();
    else if (request.operation === 'PUT' && !(response.status === 'OK' && response.value === undefined))
      wrong();
    else if (
      request.operation === 'INCR' &&
      !(response.status === 'OK' && response.value !== undefined && /^-?\d+$/.test(response.value))
    )
      wrong();
    else if (request.operation === 'GET' && response.status === 'OK' && response.value === undefined) wrong();
  }
  const keys = new Set(requests.map((request) => request.key));
  for (const key of [...keys].sort()) {
    const ofKey = requests.filter((request) => request.key === key);
    if (ofKey.some((request) => request.operation === 'INCR')) checkCounter(key, ofKey, options, failures);
    else checkRegister(key, ofKey, failures);
  }
  return failures;
}

const answeredBefore = (request: KvRequest, timeNs: number): boolean =>
  request.respondedNs !== undefined && request.respondedNs < timeNs;

function checkRegister(key: string, requests: readonly KvRequest[], failures: string[]): void {
  const writes = requests.filter((request) => request.operation === 'PUT');
  const byValue = new Map(writes.map((write) => [write.value as string, write]));
  const acknowledged = writes.filter((write) => write.response?.status === 'OK');
  const reads = requests.filter(
    (request) =>
      request.operation === 'GET' &&
      (request.response?.status === 'OK' || request.response?.status === 'NOTFOUND'),
  );
  /** The write a read saw (undefined for NOTFOUND), or null when it names no write at all. */
  const seen = (read: KvRequest): KvRequest | undefined | null => {
    const response = read.response;
    if (response?.status !== 'OK') return undefined;
    return byValue.get(response.value as string) ?? null;
  };
  for (const read of reads) {
    const write = seen(read);
    const readAt = `${describeRequest(read)} (${ms(read.invokedNs)}..${ms(read.respondedNs as number)})`;
    if (write === null) {
      failures.push(`${key}: ${readAt} read ${formatResponse(read.response)}, a value nobody wrote`);
      continue;
    }
    if (write !== undefined && write.invokedNs > (read.respondedNs as number)) {
      failures.push(`${key}: ${readAt} read the value of ${describeRequest(write)}, sent only later`);
      continue;
    }
    // A write acknowledged before the read began that wholly follows the write the read saw (or
    // any, for NOTFOUND: nothing deletes) means the read missed an acknowledged write.
    for (const later of acknowledged) {
      if (later === write || !answeredBefore(later, read.invokedNs)) continue;
      if (write === undefined || answeredBefore(write, later.invokedNs)) {
        failures.push(
          `${key}: lost write: ${describeRequest(later)} was acknowledged at ${ms(later.respondedNs as number)}, but ${readAt} read ${write === undefined ? 'NOTFOUND' : `the older value of ${describeRequest(write)}`}`,
        );
        break;
      }
    }
  }
  // Reads in real-time order never go back to an older write.
  for (const first of reads) {
    const firstWrite = seen(first);
    if (firstWrite === null || firstWrite === undefined) continue;
    for (const second of reads) {
      if (second === first || !answeredBefore(first, second.invokedNs)) continue;
      const secondWrite = seen(second);
      if (secondWrite === null || secondWrite === firstWrite) continue;
      if (secondWrite === undefined || answeredBefore(secondWrite, firstWrite.invokedNs)) {
        failures.push(
          `${key}: stale read: ${describeRequest(first)} read ${formatResponse(first.response)} and the later ${describeRequest(second)} read ${formatResponse(second.response)}, which that write had replaced`,
        );
        return;
      }
    }
  }
}

function checkCounter(
  key: string,
  requests: readonly KvRequest[],
  options: KvHistoryOptions,
  failures: string[],
): void {
  const incrs = requests.filter((request) => request.operation === 'INCR');
  const answered = incrs.filter((request) => request.response?.status === 'OK');
  const countOf = (request: KvRequest): number =>
    Number(request.response?.status === 'OK' ? request.response.value : Number.NaN);
  const byValue = new Map<number, KvRequest>();
  for (const incr of answered) {
    const value = countOf(incr);
    const other = byValue.get(value);
    if (other !== undefined) {
      failures.push(
        `${key}: INCR not exactly once: ${describeRequest(other)} and ${describeRequest(incr)} both answered ${value}`,
      );
    } else byValue.set(value, incr);
    if (value < 1) failures.push(`${key}: ${describeRequest(incr)} answered ${value}`);
  }
  for (const first of answered) {
    for (const second of answered) {
      if (first !== second && answeredBefore(first, second.invokedNs) && countOf(second) <= countOf(first)) {
        failures.push(
          `${key}: ${describeRequest(second)} answered ${countOf(second)} after ${describeRequest(first)} had answered ${countOf(first)}: an INCR was lost`,
        );
        return;
      }
    }
  }
  const reads = requests.filter(
    (request) =>
      request.operation === 'GET' &&
      (request.response?.status === 'OK' || request.response?.status === 'NOTFOUND'),
  );
  for (const read of reads) {
    const value = read.response?.status === 'OK' ? Number(read.response.value) : 0;
    const before = answered.filter((incr) => answeredBefore(incr, read.invokedNs));
    const most = Math.max(0, ...before.map(countOf));
    if (value < most) {
      failures.push(
        `${key}: lost INCR: ${describeRequest(read)} read ${value}, but an INCR answered ${most} before it began`,
      );
    }
    const sent = incrs.filter((incr) => incr.invokedNs < (read.respondedNs as number)).length;
    if (value > sent) {
      failures.push(
        `${key}: INCR applied twice: ${describeRequest(read)} read ${value}, but only ${sent} INCR ids had been sent`,
      );
    }
  }
  if (options.complete && answered.length === incrs.length) {
    const values = answered.map(countOf).sort((a, b) => a - b);
    const expected = values.every((value, index) => value === index + 1);
    if (!expected) {
      failures.push(
        `${key}: INCR not exactly once: ${incrs.length} INCR ids answered ${values.join(',')} (expected 1..${incrs.length})`,
      );
    }
    const audit = reads.filter((read) => read.audit);
    for (const read of audit) {
      const value = read.response?.status === 'OK' ? Number(read.response.value) : 0;
      if (value !== incrs.length)
        failures.push(`${key}: the final read gave ${value} after ${incrs.length} INCRs, each answered once`);
    }
  }
}
