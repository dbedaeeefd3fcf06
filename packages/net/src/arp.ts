/**
 * ARP (RFC 826) for Ethernet and IPv4, and the announcement frames a new primary sends on go-live.
 */
import {
  BROADCAST_MAC,
  type Ipv4Address,
  type MacAddress,
  readIpv4Address,
  readMacAddress,
  writeIpv4Address,
  writeMacAddress,
  ZERO_MAC,
} from './addresses.js';
import { allocateEthernetFrame, ETHERNET_HEADER_BYTES, EtherType } from './ethernet.js';
import { malformed, type ParseResult, parsed } from './parse-result.js';

/** Bytes of an ARP packet for Ethernet and IPv4. */
export const ARP_PACKET_BYTES = 28;

/** ARP operation codes (RARP's are 3 and 4, RFC 903). */
export const ArpOperation = {
  request: 1,
  reply: 2,
  reverseRequest: 3,
  reverseReply: 4,
} as const;

/** A parsed ARP packet for Ethernet hardware and IPv4. */
export interface ArpPacket {
  operation: number;
  senderMac: MacAddress;
  senderAddress: Ipv4Address;
  targetMac: MacAddress;
  targetAddress: Ipv4Address;
}

/** Parses an ARP (or RARP) packet; refuses other hardware or protocol types. */
export function parseArpPacket(packet: Uint8Array): ParseResult<ArpPacket> {
  if (packet.length < ARP_PACKET_BYTES) {
    return malformed('truncated', `ARP packet of ${packet.length} bytes, ${ARP_PACKET_BYTES} needed`);
  }
  const hardwareType = (packet[0]! << 8) | packet[1]!;
  const protocolType = (packet[2]! << 8) | packet[3]!;
  if (hardwareType !== 1 || protocolType !== EtherType.ipv4 || packet[4] !== 6 || packet[5] !== 4) {
    return malformed(
      'unsupported',
      `ARP for hardware type ${hardwareType}, protocol 0x${protocolType.toString(16)}, address lengths ${packet[4]}/${packet[5]}`,
    );
  }
  return parsed({
    operation: (packet[6]! << 8) | packet[7]!,
    senderMac: readMacAddress(packet, 8),
    senderAddress: readIpv4Address(packet, 14),
    targetMac: readMacAddress(packet, 18),
    targetAddress: readIpv4Address(packet, 24),
  });
}

/** What {@link buildArpFrame} needs: the Ethernet addresses and the ARP packet. */
export interface ArpFrameFields extends ArpPacket {
  /** Ethernet destination. */
  destination: MacAddress;
  /** Ethernet source. */
  source: MacAddress;
  /** ARP (default) or RARP. */
  etherType?: number;
  /** Pad to this many bytes (default 60, the Ethernet minimum). */
  frameBytesMin?: number;
}

/** Builds an Ethernet frame carrying one ARP packet. */
export function buildArpFrame(fields: ArpFrameFields): Uint8Array {
  const frame = allocateEthernetFrame(
    fields.destination,
    fields.source,
    fields.etherType ?? EtherType.arp,
    ARP_PACKET_BYTES,
    fields.frameBytesMin,
  );
  const at = ETHERNET_HEADER_BYTES;
  frame.set([0, 1, EtherType.ipv4 >>> 8, EtherType.ipv4 & 0xff, 6, 4], at);
  frame[at + 6] = fields.operation >>> 8;
  frame[at + 7] = fields.operation & 0xff;
  writeMacAddress(frame, at + 8, fields.senderMac);
  writeIpv4Address(frame, at + 14, fields.senderAddress);
  writeMacAddress(frame, at + 18, fields.targetMac);
  writeIpv4Address(frame, at + 24, fields.targetAddress);
  return frame;
}

/**
 * A gratuitous ARP request (`who-has ip tell ip`, broadcast) from `mac`: what a new primary sends
 * on go-live so that the switch relearns the port behind `mac` and every ARP cache (the gateway's
 * among them) maps `address` to `mac`.
 */
export function announceFrame(mac: MacAddress, address: Ipv4Address): Uint8Array {
  return buildArpFrame({
    destination: BROADCAST_MAC,
    source: mac,
    operation: ArpOperation.request,
    senderMac: mac,
    senderAddress: address,
    targetMac: ZERO_MAC,
    targetAddress: address,
  });
}

/**
 * The RARP announcement QEMU sends after migration (`qemu_announce_self`): broadcast, reverse
 * request, sender and target hardware address `mac`, addresses zero. Teaches switches only.
 */
export function reverseArpAnnounceFrame(mac: MacAddress): Uint8Array {
  return buildArpFrame({
    destination: BROADCAST_MAC,
    source: mac,
    etherType: EtherType.rarp,
    operation: ArpOperation.reverseRequest,
    senderMac: mac,
    senderAddress: 0,
    targetMac: mac,
    targetAddress: 0,
  });
}
