/**
 * What the FT drivers report as it happens (for logs, metrics and the demo's view). Names are
 * noun-verb, as everywhere in ftvm.
 */
export type FtEvent =
  /** No traffic from the peer for the failure timeout, or its channel closed: the arbiter is asked. */
  | { readonly type: 'peer-suspected'; readonly epoch: number; readonly role: 'primary' | 'backup' }
  /** This side won the arbiter: the epoch is now `epoch`. */
  | { readonly type: 'arbiter-won'; readonly epoch: number; readonly role: 'primary' | 'backup' }
  /** The other side holds `epoch`: this side halts. */
  | { readonly type: 'arbiter-lost'; readonly epoch: number; readonly role: 'primary' | 'backup' }
  /** The arbiter could not be reached; asked again after `arbiterRetryMs`. */
  | { readonly type: 'arbiter-unreachable'; readonly epoch: number; readonly role: 'primary' | 'backup' }
  /** The primary goes on alone: its backup failed. */
  | { readonly type: 'backup-dropped'; readonly epoch: number; readonly reason: string }
  /** The primary halted and emits nothing more. */
  | { readonly type: 'primary-halted'; readonly epoch: number; readonly reason: string }
  /** The backup halted (lost the arbiter, diverged, was stopped). */
  | { readonly type: 'backup-halted'; readonly epoch: number; readonly reason: string }
  /** The backup replayed the rest of its log and went live as the primary of `epoch`. */
  | {
      readonly type: 'backup-went-live';
      readonly epoch: number;
      /** The execution point where it took over. */
      readonly icount: number;
      /** From winning the arbiter to running live. */
      readonly goLiveMs: number;
    }
  | { readonly type: 'clone-started'; readonly epoch: number }
  | {
      readonly type: 'clone-finished';
      readonly epoch: number;
      readonly totalMs: number;
      readonly pauseMs: number;
      readonly rounds: number;
      readonly pagesSent: number;
      readonly diskBytesSent: number;
      readonly firstSeq: number;
    }
  | { readonly type: 'clone-failed'; readonly epoch: number; readonly reason: string };

export type FtEventType = FtEvent['type'];
