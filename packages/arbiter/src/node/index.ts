/** @ftvm/arbiter/node: the arbiters that need Node, on a shared directory and on etcd. */
export type { EtcdArbiterOptions, KeepAliveOptions, OwnerAliveHandle } from './etcd-arbiter.js';
export {
  ETCD_ARBITER_CALL_TIMEOUT_MS,
  ETCD_ARBITER_LEASE_TTL_SECONDS,
  ETCD_ARBITER_PREFIX,
  EtcdArbiter,
} from './etcd-arbiter.js';
export type { FileArbiterOptions } from './file-arbiter.js';
export { FILE_ARBITER_INCOMPLETE_READ_TIMEOUT_MS, FileArbiter } from './file-arbiter.js';
