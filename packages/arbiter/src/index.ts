/**
 * @ftvm/arbiter: the test-and-set arbiter that keeps a primary and its backup from both going on
 * alone (split brain). This entry has the in-memory arbiter and the argument checks, and runs
 * anywhere; the shared-file and etcd arbiters are Node-only, in `@ftvm/arbiter/node`.
 */
export type { Arbiter, ArbiterRecord, ArbiterResult } from '@ftvm/core';
export type { ArbiterSchedule, MemoryArbiterOptions } from './memory-arbiter.js';
export { MemoryArbiter, MemoryArbiterStore } from './memory-arbiter.js';
export {
  assertValidEpoch,
  assertValidFromEpoch,
  assertValidOwner,
  assertValidTestAndSet,
  assertValidVmId,
  isValidOwner,
} from './validate.js';
