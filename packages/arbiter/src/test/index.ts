/** @ftvm/arbiter/test: Node-only helpers for tests that need an arbiter backend running. */
export type { EtcdServer, StartEtcdOptions } from './etcd-server.js';
export {
  ETCD_TEST_ARGS,
  etcdSkipReason,
  findEtcdBinary,
  freePorts,
  startEtcd,
  waitEtcdHealthy,
} from './etcd-server.js';
