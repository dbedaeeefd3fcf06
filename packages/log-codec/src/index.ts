export { crc32c } from './checksum.js';
export type { CompactEntry } from './entries.js';
export {
  checkNames,
  compactEntry,
  expandEntry,
  NAME_BYTES_MAX,
  NameTable,
  STATE_HASH_BYTES_MAX,
} from './entries.js';
export type { Frame } from './frame.js';
export {
  encodeFrame,
  FRAME_FORMAT_VERSION,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX,
  FrameDecoder,
  FrameType,
} from './frame.js';
export {
  concatBytes,
  DECODE_FRAME_ENTRIES_MAX,
  decodeEntries,
  decodeEntriesPayload,
  encodeEntries,
  FRAME_ENTRIES_MAX,
  LogDecoder,
  LogEncoder,
  messagePack,
} from './log-stream.js';
export type { ChannelControl } from './messages.js';
export {
  AUTH_MAC_BYTES,
  AUTH_NONCE_BYTES,
  CHANNEL_ERROR_REASONS,
  CONTROL_DETAIL_LENGTH_MAX,
  decodeAuthChallenge,
  decodeAuthResponse,
  decodeChannelControl,
  decodeHandshake,
  encodeAuthChallenge,
  encodeAuthResponse,
  encodeChannelControl,
  encodeHandshake,
  encodeMessage,
  GOODBYE_REASON_LENGTH_MAX,
  HANDSHAKE_FRAME_BYTES_MAX,
  HANDSHAKE_STRING_LENGTH_MAX,
  LOG_FRAME_BYTES_TARGET,
  MessageDecoder,
  MessageEncoder,
  PAGE_NUMBER_MAX,
  PLAIN_VALUE_DEPTH_MAX,
  TRANSFER_DISK_BYTES_MAX,
  TRANSFER_DISK_OFFSET_MAX,
  TRANSFER_DISK_SECTOR_BYTES,
  TRANSFER_PAGE_BYTES,
  TRANSFER_PAGES_PER_MESSAGE_MAX,
  TRANSFER_STATE_DEVICES_MAX,
} from './messages.js';
export type { IndexPoint, RecordFileContents, RecordHeader, RecordTrailer } from './record-file.js';
export {
  INDEX_INTERVAL_FRAMES,
  RECORD_DISKS_MAX,
  RECORD_FILE_FORMAT,
  RECORD_FILE_VERSION,
  RecordFileWriter,
  readRecordFile,
} from './record-file.js';
