import type { Arbiter, ArbiterResult } from '@ftvm/core';
import type { FtEvent } from './events.js';

/**
 * A test-and-set answer is `host`'s win when it says so, or when it names `host` as the owner of
 * the epoch after `fromEpoch`: its earlier test-and-set moved the epoch and the answer was lost,
 * so asking again finds its own name there.
 */
export function isOwnWin(result: ArbiterResult, host: string | undefined, fromEpoch: number): boolean {
  if (result.won) return true;
  return host !== undefined && result.record.owner === host && result.record.epoch === fromEpoch + 1;
}

/**
 * Asks the arbiter, for a role that suspects its peer, to move the VM's epoch from `fromEpoch` to
 * the next with `host` as owner, and reports it as events. `answer` gets the result, or undefined
 * when the arbiter could not be reached (the role must not act as if it had won).
 */
export function requestNextEpoch(
  request: {
    readonly arbiter: Arbiter;
    readonly vmId: string;
    readonly host: string;
    readonly role: 'primary' | 'backup';
    readonly emit: (event: FtEvent) => void;
  },
  fromEpoch: number,
  answer: (result: ArbiterResult | undefined) => void,
): void {
  const { arbiter, vmId, host, role, emit } = request;
  emit({ type: 'peer-suspected', epoch: fromEpoch, role });
  arbiter.testAndSet(vmId, fromEpoch, host).then(
    (result) => {
      const won = isOwnWin(result, host, fromEpoch);
      emit({ type: won ? 'arbiter-won' : 'arbiter-lost', epoch: result.record.epoch, role });
      answer(result);
    },
    () => {
      emit({ type: 'arbiter-unreachable', epoch: fromEpoch, role });
      answer(undefined);
    },
  );
}
