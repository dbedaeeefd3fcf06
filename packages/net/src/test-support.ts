/**
 * Test doubles shared by this package's tests: known frames captured from QEMU 7.2's user
 * networking, and a fake guest that answers ARP and echoes UDP.
 */
import { GUEST_IPV4, GUEST_MAC, type MacAddress, parseIpv4Address } from './addresses.js';
import { ArpOperation, buildArpFrame, parseArpPacket } from './arp.js';
import { EtherType, parseEthernetFrame } from './ethernet.js';
import { buildUdpFrame, parseUdpFrame } from './ipv4.js';
import type { FrameSink, SwitchPort } from './switch.js';

/** Hex to bytes. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  return Uint8Array.from({ length: clean.length / 2 }, (_, index) =>
    Number.parseInt(clean.slice(index * 2, index * 2 + 2), 16),
  );
}

/** Bytes padded with zeros to `length`. */
export function padded(bytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(Math.max(length, bytes.length));
  out.set(bytes);
  return out;
}

/**
 * Frames seen on QEMU 7.2 (`-netdev user,hostfwd=udp:127.0.0.1:15555-:5555` joined by a hub to a
 * `-netdev socket` where a script played the guest), for client 127.0.0.1:45868 sending "hello0".
 */
export const qemuFrames = {
  /** slirp asks who has 10.0.2.15 (42 bytes; the hub pads it to 60 on the way to the guest). */
  arpRequestForGuest: hex(
    'ffffffffffff52550a0002020806000108000604000152550a0002020a0002020000000000000a00020f',
  ),
  /** The script's ARP reply as the guest (42 bytes, unpadded). */
  guestArpReply: hex('52550a000202525400123456080600010800060400025254001234560a00020f52550a0002020a000202'),
  /** slirp's UDP frame to the guest: 10.0.2.2:45868 -> 10.0.2.15:5555, "hello0" (48 bytes, padded to 60). */
  udpToGuest: hex(
    '52540012345652550a00020208004500002200000000401162bb0a0002020a00020fb32c15b3000edadf68656c6c6f30',
  ),
  /** The script's echo, checksums its own, accepted by slirp: 10.0.2.15:5555 -> 10.0.2.2:45868 "echo:hello0". */
  guestEcho: hex(
    '52550a00020252540012345608004500002712344000401110820a00020f0a00020215b3b32c001314c16563686f3a68656c6c6f30',
  ),
  /** slirp's answer to the guest's `who-has 10.0.2.2`: 64 bytes, zero padded. */
  arpReplyToGuest: padded(
    hex('52540012345652550a0002020806000108000604000252550a0002020a0002025254001234560a00020f'),
    64,
  ),
  /** The guest's `who-has 10.0.2.2 tell 10.0.2.15` that got that answer (42 bytes). */
  guestArpRequest: hex(
    'ffffffffffff52540012345608060001080006040001525400123456 0a00020f 000000000000 0a000202',
  ),
};

/**
 * A fake guest NIC: answers ARP for its address, echoes every UDP datagram to it with `prefix`
 * prepended, and records what it saw. Connect its `link` after attaching it.
 */
export class EchoGuest implements SwitchPort {
  link: FrameSink | undefined;
  readonly received: Uint8Array[] = [];
  readonly echoed: string[] = [];
  readonly #mac: MacAddress;
  readonly #address: number;
  readonly #prefix: string;

  constructor(options: { mac?: MacAddress; address?: string; prefix?: string } = {}) {
    this.#mac = options.mac ?? GUEST_MAC;
    this.#address = parseIpv4Address(options.address ?? GUEST_IPV4)!;
    this.#prefix = options.prefix ?? 'echo:';
  }

  deliver(frame: Uint8Array): void {
    this.received.push(frame.slice());
    const ethernet = parseEthernetFrame(frame);
    if (!ethernet.ok) return;
    if (ethernet.value.etherType === EtherType.arp) {
      const arp = parseArpPacket(ethernet.value.payload);
      if (
        arp.ok &&
        arp.value.operation === ArpOperation.request &&
        arp.value.targetAddress === this.#address
      ) {
        this.link?.send(
          buildArpFrame({
            destination: arp.value.senderMac,
            source: this.#mac,
            operation: ArpOperation.reply,
            senderMac: this.#mac,
            senderAddress: this.#address,
            targetMac: arp.value.senderMac,
            targetAddress: arp.value.senderAddress,
          }),
        );
      }
      return;
    }
    const udp = parseUdpFrame(frame);
    if (!udp.ok || udp.value.ip.destination !== this.#address) return;
    const text = new TextDecoder().decode(udp.value.udp.payload);
    this.echoed.push(text);
    this.link?.send(
      buildUdpFrame({
        destinationMac: udp.value.sourceMac,
        sourceMac: this.#mac,
        source: this.#address,
        destination: udp.value.ip.source,
        sourcePort: udp.value.udp.destinationPort,
        destinationPort: udp.value.udp.sourcePort,
        identification: 0,
        payload: new TextEncoder().encode(`${this.#prefix}${text}`),
      }),
    );
  }
}
