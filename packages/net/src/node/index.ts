/** @ftvm/net/node: the UDP sockets of the user-mode gateway. */
export type { BoundForward, UdpGatewayHostOptions } from './udp-gateway-host.js';
export { GATEWAY_TICK_INTERVAL_MS, HostForwardBindError, UdpGatewayHost } from './udp-gateway-host.js';
