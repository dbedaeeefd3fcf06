/** @ftvm/kv-client/node: the UDP kv client and the load generator (they use `node:dgram`). */
export type { KvClientOptions, KvTarget } from './client.js';
export { KvClient } from './client.js';
export type { KvLoad, KvLoadCounters, KvLoadMix, KvLoadOptions, KvLoadResult } from './load.js';
export { DEFAULT_KV_LOAD_MIX, runKvLoad, startKvLoad } from './load.js';
