/**
 * @ftvm/kv-client: the kv guest service's wire protocol, a history of client operations, and an
 * independent checker of such histories (lost acknowledged writes, exactly-once INCR, duplicated
 * or wrong answers). No `node:` imports here; the UDP client and the load are in `@ftvm/kv-client/node`.
 */
export type {
  IncrAnomaly,
  IncrAnomalyKind,
  LostWrite,
  ResponseAnomaly,
  ResponseAnomalyKind,
  Verdict,
} from './check.js';
export { checkHistory, formatVerdict } from './check.js';
export type { HistoryData, KvOperation, ReceivedDatagram } from './history.js';
export { cloneHistory, History, historyFromTexts } from './history.js';
export type { LatencySummary } from './latency.js';
export { percentile, summarizeLatencies } from './latency.js';
export type { KvOpName, KvRequest, KvResponse, KvResponseStatus, ParseResponseResult } from './protocol.js';
export {
  answerMismatch,
  encodeRequest,
  formatResponse,
  isIntegerText,
  isValidId,
  isValidKey,
  isValidValue,
  KV_ID_MAX,
  KV_KEY_BYTES_MAX,
  KV_OPS,
  KV_PORT,
  KV_VALUE_BYTES_MAX,
  parseResponse,
  sameResponse,
} from './protocol.js';
export type { SeededRandom } from './random.js';
export { seededRandom } from './random.js';
export { KvReferenceServer, KvReferenceStore } from './reference.js';
