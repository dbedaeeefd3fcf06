/**
 * MAC and IPv4 addresses, and the addresses of QEMU's user network that ftvm copies so that one
 * guest image works on both.
 *
 * A MAC address is written as six lowercase hex pairs joined by colons (`52:54:00:12:34:56`); an
 * IPv4 address inside packets is a uint32 (network order read as a big-endian number), and in
 * configuration a dotted quad string.
 */

/** A MAC address in canonical form: six lowercase hex pairs joined by colons. */
export type MacAddress = string;

/** An IPv4 address as an unsigned 32-bit number (`10.0.2.15` is `0x0a00020f`). */
export type Ipv4Address = number;

/** The broadcast MAC address. */
export const BROADCAST_MAC: MacAddress = 'ff:ff:ff:ff:ff:ff';
/** The all-zero MAC address (an ARP request's unknown target). */
export const ZERO_MAC: MacAddress = '00:00:00:00:00:00';

/** The guest's MAC address (QEMU's default NIC address). */
export const GUEST_MAC: MacAddress = '52:54:00:12:34:56';
/** The gateway's MAC address: slirp answers with `52:55` followed by the asked IPv4 address. */
export const GATEWAY_MAC: MacAddress = '52:55:0a:00:02:02';
/** The guest's IPv4 address (slirp's first DHCP address). */
export const GUEST_IPV4 = '10.0.2.15';
/** The gateway's IPv4 address. */
export const GATEWAY_IPV4 = '10.0.2.2';
/** The user network's address and prefix length: 10.0.2.0/24. */
export const USER_NETWORK_IPV4 = '10.0.2.0';
export const USER_NETWORK_PREFIX_BITS = 24;

const macPattern = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const ipv4Pattern = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** True for `aa:bb:cc:dd:ee:ff` (either case). */
export function isMacAddress(text: string): boolean {
  return macPattern.test(text);
}

/**
 * The canonical (lowercase) form of a MAC address written as six hex pairs joined by colons, or
 * `undefined` when the text is not one.
 */
export function parseMacAddress(text: string): MacAddress | undefined {
  return isMacAddress(text) ? text.toLowerCase() : undefined;
}

/** The six bytes of a MAC address. The address must be canonical or at least well-formed. */
export function macAddressBytes(mac: MacAddress): Uint8Array {
  const bytes = new Uint8Array(6);
  writeMacAddress(bytes, 0, mac);
  return bytes;
}

/** Writes a MAC address's six bytes at `offset`. */
export function writeMacAddress(target: Uint8Array, offset: number, mac: MacAddress): void {
  for (let index = 0; index < 6; index++) {
    target[offset + index] =
      (hexDigit(mac.charCodeAt(index * 3)) << 4) | hexDigit(mac.charCodeAt(index * 3 + 1));
  }
}

/** The value of one hex digit's character code (0 for anything else; callers pass checked text). */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return 0;
}

const hexPairs = Array.from({ length: 256 }, (_, value) => value.toString(16).padStart(2, '0'));

/** Reads a MAC address from six bytes at `offset` (the caller has checked the bounds). */
export function readMacAddress(source: Uint8Array, offset: number): MacAddress {
  return `${hexPairs[source[offset]!]}:${hexPairs[source[offset + 1]!]}:${hexPairs[source[offset + 2]!]}:${hexPairs[source[offset + 3]!]}:${hexPairs[source[offset + 4]!]}:${hexPairs[source[offset + 5]!]}`;
}

/** A MAC address as a 48-bit number, for use as a map key without making a string. */
export function macAddressKey(source: Uint8Array, offset: number): number {
  return (
    source[offset]! * 2 ** 40 +
    source[offset + 1]! * 2 ** 32 +
    ((source[offset + 2]! << 24) >>> 0) +
    ((source[offset + 3]! << 16) | (source[offset + 4]! << 8) | source[offset + 5]!)
  );
}

/** True when the address is a group (multicast or broadcast) address: the first octet's low bit. */
export function isGroupMacAddress(mac: MacAddress): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

/** The IPv4 address written as a dotted quad, or `undefined` when the text is not one. */
export function parseIpv4Address(text: string): Ipv4Address | undefined {
  const match = ipv4Pattern.exec(text);
  if (!match) return undefined;
  let value = 0;
  for (let index = 1; index <= 4; index++) {
    const part = Number(match[index]);
    if (part > 255) return undefined;
    value = value * 256 + part;
  }
  return value;
}

/** The dotted quad form of an IPv4 address. */
export function formatIpv4Address(address: Ipv4Address): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/** Reads a big-endian IPv4 address at `offset` (the caller has checked the bounds). */
export function readIpv4Address(source: Uint8Array, offset: number): Ipv4Address {
  return (
    ((source[offset]! << 24) |
      (source[offset + 1]! << 16) |
      (source[offset + 2]! << 8) |
      source[offset + 3]!) >>>
    0
  );
}

/** Writes a big-endian IPv4 address at `offset`. */
export function writeIpv4Address(target: Uint8Array, offset: number, address: Ipv4Address): void {
  target[offset] = address >>> 24;
  target[offset + 1] = (address >>> 16) & 0xff;
  target[offset + 2] = (address >>> 8) & 0xff;
  target[offset + 3] = address & 0xff;
}

/** Parses a dotted quad that the code itself spells (a constant); throws on a typo in the source. */
export function ipv4Constant(text: string): Ipv4Address {
  const address = parseIpv4Address(text);
  if (address === undefined) throw new TypeError(`not an IPv4 address: ${text}`);
  return address;
}
