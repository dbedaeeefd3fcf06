/**
 * Test doubles shared by this package's tests: known frames captured from QEMU 7.2's user
 * networking, and fake guests that answer ARP and then echo UDP or serve kv requests.
 */
import { formatIpv4Address, GUEST_IPV4, GUEST_MAC, type MacAddress, parseIpv4Address } from './addresses.js';
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
 * A fake guest NIC: answers ARP for its address, answers every UDP datagram to it through
 * `respond`, and records what it saw. Connect its `link` after attaching it.
 */
abstract class FakeGuest implements SwitchPort {
  link: FrameSink | undefined;
  readonly received: Uint8Array[] = [];
  readonly #mac: MacAddress;
  readonly #address: number;

  constructor(options: { mac?: MacAddress; address?: string } = {}) {
    this.#mac = options.mac ?? GUEST_MAC;
    this.#address = parseIpv4Address(options.address ?? GUEST_IPV4)!;
  }

  /** The answer to a datagram from `source`:`sourcePort`, or undefined for none. */
  protected abstract respond(text: string, source: number, sourcePort: number): string | undefined;

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
    const answer = this.respond(text, udp.value.ip.source, udp.value.udp.sourcePort);
    if (answer === undefined) return;
    this.link?.send(
      buildUdpFrame({
        destinationMac: udp.value.sourceMac,
        sourceMac: this.#mac,
        source: this.#address,
        destination: udp.value.ip.source,
        sourcePort: udp.value.udp.destinationPort,
        destinationPort: udp.value.udp.sourcePort,
        identification: 0,
        payload: new TextEncoder().encode(answer),
      }),
    );
  }
}

/** A fake guest that echoes every UDP datagram with `prefix` prepended. */
export class EchoGuest extends FakeGuest {
  readonly echoed: string[] = [];
  readonly #prefix: string;

  constructor(options: { mac?: MacAddress; address?: string; prefix?: string } = {}) {
    super(options);
    this.#prefix = options.prefix ?? 'echo:';
  }

  protected respond(text: string): string {
    this.echoed.push(text);
    return `${this.#prefix}${text}`;
  }
}

/**
 * A fake kv service with kv.elf's exactly-once rule: for each client, named by the source address
 * and port the guest sees, it remembers the answers to the client's last 32 request ids and answers
 * a repeated id from memory without applying it again. `<id> GET|PUT|INCR <key> [<value>]` only.
 * `applied` lists the requests it executed, as `<address>:<port> <request>`.
 */
export class KvGuest extends FakeGuest {
  readonly applied: string[] = [];
  readonly store = new Map<string, string>();
  readonly #answers = new Map<string, { id: string; answer: string }[]>();

  protected respond(text: string, source: number, sourcePort: number): string | undefined {
    const [id, operation, key, value] = text.split(' ');
    if (id === undefined || !/^\d+$/.test(id)) return undefined;
    const client = `${formatIpv4Address(source)}:${sourcePort}`;
    const remembered = this.#answers.get(client) ?? [];
    this.#answers.set(client, remembered);
    const known = remembered.find((entry) => entry.id === id);
    if (known !== undefined) return known.answer;
    this.applied.push(`${client} ${text}`);
    let answer: string;
    if (operation === 'GET' && key !== undefined) {
      const stored = this.store.get(key);
      answer = stored === undefined ? `${id} NOTFOUND` : `${id} OK ${stored}`;
    } else if (operation === 'PUT' && key !== undefined && value !== undefined) {
      this.store.set(key, value);
      answer = `${id} OK`;
    } else if (operation === 'INCR' && key !== undefined) {
      const next = String(Number(this.store.get(key) ?? '0') + 1);
      this.store.set(key, next);
      answer = `${id} OK ${next}`;
    } else {
      answer = `${id} ERR unknown operation`;
    }
    remembered.push({ id, answer });
    if (remembered.length > 32) remembered.shift();
    return answer;
  }
}
