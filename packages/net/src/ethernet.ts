/**
 * Ethernet II frames as the guest's NIC sends and receives them: destination MAC, source MAC,
 * EtherType, payload; no preamble, no FCS, no virtio header.
 */
import { type MacAddress, readMacAddress, writeMacAddress } from './addresses.js';
import { malformed, type ParseResult, parsed } from './parse-result.js';

/** Bytes of the Ethernet II header (two MACs and the EtherType). */
export const ETHERNET_HEADER_BYTES = 14;
/** The shortest frame on the wire without its FCS; shorter frames are padded with zeros. */
export const ETHERNET_FRAME_BYTES_MIN = 60;
/** The longest untagged frame for a 1500-byte MTU, without FCS. */
export const ETHERNET_FRAME_BYTES_MAX = 1514;
/** The MTU of the user network, as slirp's default. */
export const ETHERNET_MTU_BYTES = 1500;

/** EtherTypes this package knows. */
export const EtherType = {
  ipv4: 0x0800,
  arp: 0x0806,
  /** Reverse ARP: what QEMU sends to announce a migrated NIC. */
  rarp: 0x8035,
  vlan: 0x8100,
  ipv6: 0x86dd,
} as const;

/** A parsed Ethernet II frame; `payload` is a view into the frame (padding included). */
export interface EthernetFrame {
  destination: MacAddress;
  source: MacAddress;
  etherType: number;
  payload: Uint8Array;
}

/** Parses an Ethernet II frame; refuses frames shorter than the header. */
export function parseEthernetFrame(frame: Uint8Array): ParseResult<EthernetFrame> {
  if (frame.length < ETHERNET_HEADER_BYTES) {
    return malformed('truncated', `frame of ${frame.length} bytes is shorter than the Ethernet header`);
  }
  return parsed({
    destination: readMacAddress(frame, 0),
    source: readMacAddress(frame, 6),
    etherType: (frame[12]! << 8) | frame[13]!,
    payload: frame.subarray(ETHERNET_HEADER_BYTES),
  });
}

/** What {@link buildEthernetFrame} needs. */
export interface EthernetFrameFields {
  destination: MacAddress;
  source: MacAddress;
  etherType: number;
  payload: Uint8Array;
  /** Pad the frame with zeros up to this length (default {@link ETHERNET_FRAME_BYTES_MIN}). */
  frameBytesMin?: number;
}

/** Builds an Ethernet II frame, padded with zeros to the minimum frame length. */
export function buildEthernetFrame(fields: EthernetFrameFields): Uint8Array {
  const frame = allocateEthernetFrame(
    fields.destination,
    fields.source,
    fields.etherType,
    fields.payload.length,
    fields.frameBytesMin,
  );
  frame.set(fields.payload, ETHERNET_HEADER_BYTES);
  return frame;
}

/**
 * A zeroed frame with its Ethernet header written and room for `payloadBytes` after it, padded to
 * `frameBytesMin`. Builders of inner packets write straight into it, so a frame is one allocation.
 */
export function allocateEthernetFrame(
  destination: MacAddress,
  source: MacAddress,
  etherType: number,
  payloadBytes: number,
  frameBytesMin = ETHERNET_FRAME_BYTES_MIN,
): Uint8Array {
  const frame = new Uint8Array(Math.max(ETHERNET_HEADER_BYTES + payloadBytes, frameBytesMin));
  writeMacAddress(frame, 0, destination);
  writeMacAddress(frame, 6, source);
  frame[12] = etherType >>> 8;
  frame[13] = etherType & 0xff;
  return frame;
}
