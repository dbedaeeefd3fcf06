/**
 * The arbiter (docs/architecture.md; the paper's §2.3 test-and-set
 * on shared storage): for each VM an epoch and its owner, moved forward only by an atomic
 * test-and-set. When the primary and the backup lose sight of each other, each asks to move the
 * epoch from `e` to `e + 1` with itself as owner: exactly one wins and goes on (the backup goes
 * live, or the primary goes on alone); the other halts and emits nothing more.
 *
 * A VM the arbiter has never seen is at epoch 0 with no owner.
 */

/** A VM's epoch and who owns it. */
export interface ArbiterRecord {
  readonly epoch: number;
  /** The host that won this epoch; empty at epoch 0. */
  readonly owner: string;
}

/** The answer to a test-and-set. */
export interface ArbiterResult {
  /** True when this call moved the epoch (the caller owns the new one). */
  readonly won: boolean;
  /** The VM's record after the call: the new one when won, the one that stood in the way when not. */
  readonly record: ArbiterRecord;
}

export interface Arbiter {
  /**
   * Atomically: when the VM's epoch is `fromEpoch`, set it to `fromEpoch + 1` owned by `owner` and
   * answer `won: true`; otherwise change nothing and answer `won: false` with the record that is
   * there. Rejects with `ArbiterUnavailableError` when the arbiter cannot be reached or cannot
   * tell: a caller must then not act as if it had won.
   */
  testAndSet(vmId: string, fromEpoch: number, owner: string): Promise<ArbiterResult>;
  /** The VM's current record (epoch 0, owner '' when unknown). Rejects as `testAndSet` does. */
  read(vmId: string): Promise<ArbiterRecord>;
  /** Releases connections and files. */
  close?(): Promise<void>;
}
