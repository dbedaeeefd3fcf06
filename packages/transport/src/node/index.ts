/** @ftvm/transport/node: logging channels over TCP and TLS sockets, and a proxy that can partition one. */
export { LinkProxy } from './link-proxy.js';
export type { SocketStreamOptions } from './socket-stream.js';
export { createSocketStream, SOCKET_LINGER_MS_DEFAULT } from './socket-stream.js';
export type { ChannelListener, ConnectOptions, ListenOptions } from './tcp.js';
export { connectTcp, listenTcp } from './tcp.js';
export type {
  Pem,
  TlsConnectOptions,
  TlsCredentials,
  TlsListenOptions,
  TlsPsk,
  TlsPskCredentials,
} from './tls.js';
export {
  connectTls,
  derivePskKey,
  listenTls,
  PSK_CIPHERS,
  pskClientTlsOptions,
  pskMismatch,
  pskServerTlsOptions,
  tlsError,
} from './tls.js';
