/**
 * @ftvm/net: the guest network. A virtual L2 learning switch, the user-mode gateway that forwards
 * host UDP ports into it (QEMU's `-netdev user,hostfwd=udp:...`), and the Ethernet, ARP, IPv4 and
 * UDP helpers they are built from. No `node:` imports here; the UDP sockets are in `@ftvm/net/node`.
 */
export type { Ipv4Address, MacAddress } from './addresses.js';
export {
  BROADCAST_MAC,
  formatIpv4Address,
  GATEWAY_IPV4,
  GATEWAY_MAC,
  GUEST_IPV4,
  GUEST_MAC,
  isGroupMacAddress,
  isMacAddress,
  macAddressBytes,
  parseIpv4Address,
  parseMacAddress,
  readIpv4Address,
  readMacAddress,
  USER_NETWORK_IPV4,
  USER_NETWORK_PREFIX_BITS,
  writeIpv4Address,
  writeMacAddress,
  ZERO_MAC,
} from './addresses.js';
export type { ArpFrameFields, ArpPacket } from './arp.js';
export {
  ARP_PACKET_BYTES,
  ArpOperation,
  announceFrame,
  buildArpFrame,
  parseArpPacket,
  reverseArpAnnounceFrame,
} from './arp.js';
export { internetChecksum } from './checksum.js';
export type { EthernetFrame, EthernetFrameFields } from './ethernet.js';
export {
  buildEthernetFrame,
  ETHERNET_FRAME_BYTES_MAX,
  ETHERNET_FRAME_BYTES_MIN,
  ETHERNET_HEADER_BYTES,
  ETHERNET_MTU_BYTES,
  EtherType,
  parseEthernetFrame,
} from './ethernet.js';
export type {
  ClientMapping,
  GatewayDrop,
  GatewayDropReason,
  GatewayStatistics,
  HostDatagram,
  HostDatagramSink,
  UdpEndpoint,
  UserGatewayOptions,
} from './gateway.js';
export {
  ARP_CACHE_ENTRIES_MAX,
  ARP_REQUESTS_MAX,
  ARP_RETRY_INTERVAL_MS,
  CLIENT_MAPPINGS_MAX,
  MAPPED_PORT_FIRST,
  MAPPED_PORT_LAST,
  MAPPING_IDLE_TIMEOUT_MS,
  PENDING_DATAGRAMS_MAX,
  UserGateway,
} from './gateway.js';
export type { HostForwardRule, UserNetdev } from './hostfwd.js';
export { formatHostForward, NetdevSpecError, parseHostForward, parseUserNetdev } from './hostfwd.js';
export type { Ipv4HeaderFields, Ipv4Packet, UdpDatagram, UdpFrame, UdpFrameFields } from './ipv4.js';
export {
  buildUdpFrame,
  DEFAULT_TIME_TO_LIVE,
  IPV4_HEADER_BYTES,
  IpProtocol,
  parseIpv4Packet,
  parseUdpDatagram,
  parseUdpFrame,
  UDP_HEADER_BYTES,
  UDP_PAYLOAD_BYTES_MAX,
  writeIpv4Header,
} from './ipv4.js';
export type { MalformedReason, ParseResult } from './parse-result.js';
export type {
  FrameSink,
  MacMove,
  SwitchDrop,
  SwitchDropReason,
  SwitchLink,
  SwitchPort,
  SwitchStatistics,
  VirtualSwitchOptions,
} from './switch.js';
export {
  MAC_AGING_MS,
  MAC_TABLE_ENTRIES_MAX,
  SWITCH_FRAME_BYTES_MAX,
  SWITCH_QUEUED_FRAMES_MAX,
  VirtualSwitch,
} from './switch.js';
