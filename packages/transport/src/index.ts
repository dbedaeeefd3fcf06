/**
 * @ftvm/transport: logging channels between a primary and a backup. One implementation of the
 * handshake, framing and `LogChannel` over any {@link ByteStream}; in-process and `MessagePort`
 * streams here, TCP and TLS in `@ftvm/transport/node`. Imports no `node:` module.
 */
export type { ByteStream } from './byte-stream.js';
export { StreamEvents } from './byte-stream.js';
export type { ChannelOptions } from './channel.js';
export { CLOSE_GOODBYE_REASON, checkPeer, HANDSHAKE_TIMEOUT_MS_DEFAULT, openChannel } from './channel.js';
export type { Scheduler } from './host.js';
export { timerScheduler } from './host.js';
export type {
  MemoryChannelPair,
  MemoryChannelPairOptions,
  MemoryEnd,
  MemoryLink,
  MemoryLinkOptions,
} from './memory.js';
export { createMemoryChannelPair, createMemoryStreamPair } from './memory.js';
export type { MessagePortLike, PortEvent } from './message-port.js';
export { createMessagePortStream } from './message-port.js';
