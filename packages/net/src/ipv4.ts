/**
 * IPv4 (RFC 791) headers without options on send, with options skipped on receive; no
 * fragmentation either way (fragments are refused), and UDP (RFC 768) on top.
 */
import { type Ipv4Address, type MacAddress, readIpv4Address, writeIpv4Address } from './addresses.js';
import { addToChecksum, foldChecksum, internetChecksum } from './checksum.js';
import { allocateEthernetFrame, ETHERNET_HEADER_BYTES, EtherType, parseEthernetFrame } from './ethernet.js';
import { malformed, type ParseResult, parsed } from './parse-result.js';

/** Bytes of an IPv4 header without options (what this package sends). */
export const IPV4_HEADER_BYTES = 20;
/** Bytes of a UDP header. */
export const UDP_HEADER_BYTES = 8;
/** The largest UDP payload that fits one 1500-byte-MTU frame unfragmented: 1500 − 20 − 8. */
export const UDP_PAYLOAD_BYTES_MAX = 1472;
/** The time to live of packets this package sends (slirp's too). */
export const DEFAULT_TIME_TO_LIVE = 64;

/** IP protocol numbers this package knows. */
export const IpProtocol = { icmp: 1, tcp: 6, udp: 17 } as const;

/** A parsed IPv4 packet; `payload` is a view bounded by the header's total length (no padding). */
export interface Ipv4Packet {
  source: Ipv4Address;
  destination: Ipv4Address;
  protocol: number;
  identification: number;
  timeToLive: number;
  headerBytes: number;
  payload: Uint8Array;
}

/**
 * Parses an IPv4 packet: checks version, header length, total length against the bytes present
 * (trailing Ethernet padding is cut off) and the header checksum; refuses fragments.
 */
export function parseIpv4Packet(bytes: Uint8Array): ParseResult<Ipv4Packet> {
  if (bytes.length < IPV4_HEADER_BYTES) {
    return malformed('truncated', `IPv4 packet of ${bytes.length} bytes, header needs ${IPV4_HEADER_BYTES}`);
  }
  const version = bytes[0]! >>> 4;
  const headerBytes = (bytes[0]! & 0x0f) * 4;
  if (version !== 4) return malformed('bad-header', `IP version ${version}`);
  if (headerBytes < IPV4_HEADER_BYTES) return malformed('bad-header', `IPv4 header length ${headerBytes}`);
  const totalBytes = (bytes[2]! << 8) | bytes[3]!;
  if (totalBytes < headerBytes) {
    return malformed(
      'bad-header',
      `IPv4 total length ${totalBytes} is less than its header's ${headerBytes}`,
    );
  }
  if (totalBytes > bytes.length) {
    return malformed('truncated', `IPv4 total length ${totalBytes}, only ${bytes.length} bytes present`);
  }
  if (internetChecksum(bytes, 0, headerBytes) !== 0) {
    return malformed('bad-checksum', 'IPv4 header checksum does not match');
  }
  const flagsAndOffset = (bytes[6]! << 8) | bytes[7]!;
  if ((flagsAndOffset & 0x2000) !== 0 || (flagsAndOffset & 0x1fff) !== 0) {
    return malformed('fragment', `IPv4 fragment (flags/offset 0x${flagsAndOffset.toString(16)})`);
  }
  return parsed({
    source: readIpv4Address(bytes, 12),
    destination: readIpv4Address(bytes, 16),
    protocol: bytes[9]!,
    identification: (bytes[4]! << 8) | bytes[5]!,
    timeToLive: bytes[8]!,
    headerBytes,
    payload: bytes.subarray(headerBytes, totalBytes),
  });
}

/** What {@link writeIpv4Header} writes. */
export interface Ipv4HeaderFields {
  source: Ipv4Address;
  destination: Ipv4Address;
  protocol: number;
  identification: number;
  timeToLive?: number;
}

/**
 * Writes a 20-byte IPv4 header (no options, no flags, as slirp sends) with its checksum at
 * `offset`, for a payload of `payloadBytes`.
 */
export function writeIpv4Header(
  target: Uint8Array,
  offset: number,
  fields: Ipv4HeaderFields,
  payloadBytes: number,
): void {
  const totalBytes = IPV4_HEADER_BYTES + payloadBytes;
  target[offset] = 0x45;
  target[offset + 1] = 0;
  target[offset + 2] = totalBytes >>> 8;
  target[offset + 3] = totalBytes & 0xff;
  target[offset + 4] = (fields.identification >>> 8) & 0xff;
  target[offset + 5] = fields.identification & 0xff;
  target[offset + 6] = 0;
  target[offset + 7] = 0;
  target[offset + 8] = fields.timeToLive ?? DEFAULT_TIME_TO_LIVE;
  target[offset + 9] = fields.protocol;
  target[offset + 10] = 0;
  target[offset + 11] = 0;
  writeIpv4Address(target, offset + 12, fields.source);
  writeIpv4Address(target, offset + 16, fields.destination);
  const checksum = internetChecksum(target, offset, offset + IPV4_HEADER_BYTES);
  target[offset + 10] = checksum >>> 8;
  target[offset + 11] = checksum & 0xff;
}

/** A parsed UDP datagram; `payload` is a view bounded by the UDP length field. */
export interface UdpDatagram {
  sourcePort: number;
  destinationPort: number;
  /** The checksum field as received (0: the sender did not compute one). */
  checksum: number;
  payload: Uint8Array;
}

/** The UDP checksum sum over the pseudo-header (RFC 768) and the datagram, not yet inverted. */
function udpChecksumSum(source: Ipv4Address, destination: Ipv4Address, datagram: Uint8Array): number {
  let sum =
    (source >>> 16) +
    (source & 0xffff) +
    (destination >>> 16) +
    (destination & 0xffff) +
    IpProtocol.udp +
    datagram.length;
  sum = addToChecksum(sum, datagram);
  return foldChecksum(sum);
}

/**
 * Parses a UDP datagram carried in an IPv4 packet from `source` to `destination`: checks the
 * length field and, when the checksum field is not zero, the checksum.
 */
export function parseUdpDatagram(
  bytes: Uint8Array,
  source: Ipv4Address,
  destination: Ipv4Address,
): ParseResult<UdpDatagram> {
  if (bytes.length < UDP_HEADER_BYTES) {
    return malformed('truncated', `UDP datagram of ${bytes.length} bytes, header needs ${UDP_HEADER_BYTES}`);
  }
  const length = (bytes[4]! << 8) | bytes[5]!;
  if (length < UDP_HEADER_BYTES) return malformed('bad-header', `UDP length ${length}`);
  if (length > bytes.length) {
    return malformed('truncated', `UDP length ${length}, only ${bytes.length} bytes present`);
  }
  const datagram = bytes.subarray(0, length);
  const checksum = (bytes[6]! << 8) | bytes[7]!;
  if (checksum !== 0 && udpChecksumSum(source, destination, datagram) !== 0xffff) {
    return malformed('bad-checksum', 'UDP checksum does not match');
  }
  return parsed({
    sourcePort: (bytes[0]! << 8) | bytes[1]!,
    destinationPort: (bytes[2]! << 8) | bytes[3]!,
    checksum,
    payload: datagram.subarray(UDP_HEADER_BYTES),
  });
}

/** The endpoints and payload of one UDP datagram in one Ethernet frame. */
export interface UdpFrameFields {
  destinationMac: MacAddress;
  sourceMac: MacAddress;
  source: Ipv4Address;
  destination: Ipv4Address;
  sourcePort: number;
  destinationPort: number;
  /** The IPv4 identification field. */
  identification: number;
  timeToLive?: number;
  payload: Uint8Array;
}

/**
 * Builds an Ethernet frame carrying one UDP/IPv4 datagram, IPv4 and UDP checksums computed (a UDP
 * checksum that comes out 0 is sent as 0xffff, RFC 768). The caller keeps the payload within
 * {@link UDP_PAYLOAD_BYTES_MAX}; a longer one would need fragmentation, which this package does
 * not do, so it throws a RangeError (a bug in the caller, never a guest's doing).
 */
export function buildUdpFrame(fields: UdpFrameFields): Uint8Array {
  const payloadBytes = fields.payload.length;
  if (payloadBytes > UDP_PAYLOAD_BYTES_MAX) {
    throw new RangeError(`UDP payload of ${payloadBytes} bytes exceeds ${UDP_PAYLOAD_BYTES_MAX}`);
  }
  const udpBytes = UDP_HEADER_BYTES + payloadBytes;
  const frame = allocateEthernetFrame(
    fields.destinationMac,
    fields.sourceMac,
    EtherType.ipv4,
    IPV4_HEADER_BYTES + udpBytes,
  );
  // The header's fields named one by one: a spread of `fields` (whose shape varies by caller) made
  // V8 copy it on a slow path for every frame, 5 % of the gateway thread's time under kv.
  const header: Ipv4HeaderFields = {
    source: fields.source,
    destination: fields.destination,
    protocol: IpProtocol.udp,
    identification: fields.identification,
    timeToLive: fields.timeToLive,
  };
  writeIpv4Header(frame, ETHERNET_HEADER_BYTES, header, udpBytes);
  const at = ETHERNET_HEADER_BYTES + IPV4_HEADER_BYTES;
  frame[at] = fields.sourcePort >>> 8;
  frame[at + 1] = fields.sourcePort & 0xff;
  frame[at + 2] = fields.destinationPort >>> 8;
  frame[at + 3] = fields.destinationPort & 0xff;
  frame[at + 4] = udpBytes >>> 8;
  frame[at + 5] = udpBytes & 0xff;
  frame.set(fields.payload, at + UDP_HEADER_BYTES);
  const checksum =
    ~udpChecksumSum(fields.source, fields.destination, frame.subarray(at, at + udpBytes)) & 0xffff;
  const sent = checksum === 0 ? 0xffff : checksum;
  frame[at + 6] = sent >>> 8;
  frame[at + 7] = sent & 0xff;
  return frame;
}

/** A UDP/IPv4 Ethernet frame taken apart. */
export interface UdpFrame {
  destinationMac: MacAddress;
  sourceMac: MacAddress;
  ip: Ipv4Packet;
  udp: UdpDatagram;
}

/** Parses a whole Ethernet frame that should carry UDP over IPv4. */
export function parseUdpFrame(frame: Uint8Array): ParseResult<UdpFrame> {
  const ethernet = parseEthernetFrame(frame);
  if (!ethernet.ok) return ethernet;
  if (ethernet.value.etherType !== EtherType.ipv4) {
    return malformed('unsupported', `EtherType 0x${ethernet.value.etherType.toString(16)} is not IPv4`);
  }
  const ip = parseIpv4Packet(ethernet.value.payload);
  if (!ip.ok) return ip;
  if (ip.value.protocol !== IpProtocol.udp) {
    return malformed('unsupported', `IP protocol ${ip.value.protocol} is not UDP`);
  }
  const udp = parseUdpDatagram(ip.value.payload, ip.value.source, ip.value.destination);
  if (!udp.ok) return udp;
  return parsed({
    destinationMac: ethernet.value.destination,
    sourceMac: ethernet.value.source,
    ip: ip.value,
    udp: udp.value,
  });
}
