/**
 * The user-mode gateway: the model of what QEMU's user networking (slirp) does for ftvm's guest
 * network, reduced to what the kv service needs. It is a switch port at 10.0.2.2 that
 *
 * - answers ARP for the gateway address with the gateway MAC (52:55:0a:00:02:02, as slirp);
 * - learns guests' MAC addresses from their ARP and IPv4 frames;
 * - forwards host UDP ports to guest ports (`hostfwd=udp::5555-:5555`): a datagram from host client
 *   C on a forwarded port becomes a UDP/IPv4 frame from 10.0.2.2:P to the guest, where P is a port
 *   the gateway keeps for C (C's own port when free, as slirp shows it); the guest's reply to
 *   10.0.2.2:P goes back to C;
 * - ARP-resolves a guest whose MAC it does not know yet, holding a bounded number of datagrams.
 *
 * A gateway port is the guest's only name for a host client: kv.elf keeps each client's last
 * answers by (10.0.2.2, port), so a port handed to another client while the guest may still hold
 * answers for the one before would show the newcomer the other's answers and replay the other's
 * retries. Hence the port rule (README, "Which port a client gets"): a port a client gave up is
 * quarantined for that client alone for `portQuarantineMs`, stays its preferred port afterwards,
 * and reaches a different client only through the dynamic range, the port free longest first; a
 * client for whom no port qualifies is refused (`no-free-port`).
 *
 * No sockets, no clock, no timers: the host side calls {@link UserGateway.receiveFromHost} and
 * receives through a {@link HostDatagramSink}; time moves only through {@link UserGateway.tick}.
 * Nothing the guest or a host client sends makes it throw: malformed input is counted, reported
 * through `onDrop`, and dropped.
 */
import { ConfigError } from '@ftvm/core';
import {
  BROADCAST_MAC,
  formatIpv4Address,
  GATEWAY_IPV4,
  GATEWAY_MAC,
  GUEST_IPV4,
  type Ipv4Address,
  isGroupMacAddress,
  type MacAddress,
  parseIpv4Address,
  parseMacAddress,
  USER_NETWORK_PREFIX_BITS,
  writeMacAddress,
  ZERO_MAC,
} from './addresses.js';
import { ArpOperation, type ArpPacket, buildArpFrame, parseArpPacket } from './arp.js';
import { EtherType, parseEthernetFrame } from './ethernet.js';
import { formatHostForward, type HostForwardRule, parseUserNetdev } from './hostfwd.js';
import {
  buildUdpFrame,
  IpProtocol,
  parseIpv4Packet,
  parseUdpDatagram,
  UDP_PAYLOAD_BYTES_MAX,
} from './ipv4.js';
import type { MalformedReason } from './parse-result.js';
import type { FrameSink, SwitchPort } from './switch.js';

/** How many host clients may hold a gateway port at once, by default; the least recently used is evicted. */
export const CLIENT_MAPPINGS_MAX = 1024;
/** How long a client's port is kept without traffic either way, by default (slirp's UDP expiry, 240 s). */
export const MAPPING_IDLE_TIMEOUT_MS = 240_000;
/** How many host datagrams may wait for ARP resolution of their guest, by default, over all guests. */
export const PENDING_DATAGRAMS_MAX = 64;
/** How long to wait for an ARP reply before asking again, by default. */
export const ARP_RETRY_INTERVAL_MS = 1000;
/** How many ARP requests to send for one guest before dropping what waits for it, by default. */
export const ARP_REQUESTS_MAX = 3;
/** How many guest addresses the gateway's ARP cache holds; the oldest learned is evicted. */
export const ARP_CACHE_ENTRIES_MAX = 256;
/** The gateway ports handed out when a client's own port is taken: the IANA dynamic range. */
export const MAPPED_PORT_FIRST = 49152;
export const MAPPED_PORT_LAST = 65535;
/** slirp pads its ARP replies to 64 bytes; ftvm sends the same bytes. */
const ARP_REPLY_FRAME_BYTES = 64;

/** A host UDP endpoint: an address as the host's socket API spells it, and a port. */
export interface UdpEndpoint {
  address: string;
  port: number;
}

/** A datagram for a host client, sent out of the forwarded host port of rule `ruleIndex`. */
export interface HostDatagram {
  ruleIndex: number;
  client: UdpEndpoint;
  payload: Uint8Array;
}

/** Where the gateway sends datagrams for host clients (the UDP sockets, or a test's array). */
export interface HostDatagramSink {
  sendToHost(datagram: HostDatagram): void;
}

/** Why the gateway dropped a frame or a host datagram. */
export type GatewayDropReason =
  /** A frame, IPv4 packet, ARP packet or UDP datagram that does not parse. */
  | 'malformed'
  /** An IPv4 or UDP checksum mismatch. */
  | 'bad-checksum'
  /** An IPv4 fragment: the gateway does not reassemble. */
  | 'fragment'
  /** Not ARP, not UDP over IPv4 (IPv6, ICMP, TCP...). */
  | 'unsupported-protocol'
  /** An IPv4 packet for an address other than the gateway's: the gateway routes nowhere. */
  | 'not-routed'
  /** A guest datagram to a gateway port no host client holds (or from another guest endpoint). */
  | 'no-mapping'
  /** A host datagram larger than {@link UDP_PAYLOAD_BYTES_MAX} (no fragmentation). */
  | 'oversized'
  /** `receiveFromHost` with a rule index that does not exist. */
  | 'unknown-rule'
  /** `receiveFromHost` with a client endpoint that is not one. */
  | 'bad-client'
  /** Too many host datagrams already waiting for ARP. */
  | 'pending-queue-full'
  /** The guest never answered ARP. */
  | 'arp-unresolved'
  /** No link or host sink connected yet. */
  | 'not-connected'
  /** A new host client when every port it may have is held or quarantined: it is refused. */
  | 'no-free-port'
  /** The link or host sink threw. */
  | 'sink-error';

/** A dropped frame or datagram, reported through {@link UserGatewayOptions.onDrop}. */
export interface GatewayDrop {
  reason: GatewayDropReason;
  /** Where it came from. */
  from: 'network' | 'host';
  detail: string;
  error?: unknown;
}

export interface UserGatewayOptions {
  /** The UDP forwards, as parsed by `parseUserNetdev` / `parseHostForward`. */
  forwards: readonly HostForwardRule[];
  /** Default 10.0.2.15: where rules without a guest address forward to. */
  guestAddress?: string;
  /** Default 10.0.2.2. The network is its /24. */
  gatewayAddress?: string;
  /** Default 52:55:0a:00:02:02. */
  gatewayMac?: string;
  clientMappingsMax?: number;
  mappingIdleTimeoutMs?: number;
  /**
   * How long a port a client gave up is kept for that client alone before it may go back to the
   * dynamic range; default and minimum `mappingIdleTimeoutMs`.
   */
  portQuarantineMs?: number;
  pendingDatagramsMax?: number;
  arpRetryIntervalMs?: number;
  arpRequestsMax?: number;
  /** Told of every dropped frame or datagram. Must not throw. */
  onDrop?: (drop: GatewayDrop) => void;
}

/** Counters, for tests and the live view. */
export interface GatewayStatistics {
  framesFromNetwork: number;
  framesToNetwork: number;
  datagramsFromHost: number;
  datagramsToHost: number;
  arpRequestsSent: number;
  arpRepliesSent: number;
  /** Frames not addressed to the gateway (seen because the switch flooded them): ignored, not drops. */
  framesIgnored: number;
  drops: Record<GatewayDropReason, number>;
}

/** One host client's hold on a gateway port. */
export interface ClientMapping {
  ruleIndex: number;
  client: UdpEndpoint;
  /** The gateway's UDP port the guest sees as the datagrams' source and replies to. */
  gatewayPort: number;
  guestAddress: Ipv4Address;
  guestPort: number;
  lastUsedMs: number;
}

interface PendingResolution {
  /** Frames built with a zero destination MAC, filled in on resolution. */
  frames: Uint8Array[];
  arpRequestsSent: number;
  lastRequestAtMs: number;
}

const dropReasons: readonly GatewayDropReason[] = [
  'malformed',
  'bad-checksum',
  'fragment',
  'unsupported-protocol',
  'not-routed',
  'no-mapping',
  'oversized',
  'unknown-rule',
  'bad-client',
  'pending-queue-full',
  'arp-unresolved',
  'not-connected',
  'no-free-port',
  'sink-error',
];

/** The gateway model; see the file comment. */
export class UserGateway implements SwitchPort {
  /** The forwards, in the order given; `ruleIndex` everywhere indexes this. */
  readonly forwards: readonly HostForwardRule[];
  readonly gatewayMac: MacAddress;
  readonly gatewayAddress: Ipv4Address;
  readonly guestAddress: Ipv4Address;
  readonly #networkAddress: Ipv4Address;
  readonly #networkMask: number;
  readonly #ruleGuestAddresses: Ipv4Address[];
  readonly #clientMappingsMax: number;
  readonly #mappingIdleTimeoutMs: number;
  readonly #portQuarantineMs: number;
  readonly #pendingDatagramsMax: number;
  readonly #arpRetryIntervalMs: number;
  readonly #arpRequestsMax: number;
  readonly #onDrop: ((drop: GatewayDrop) => void) | undefined;
  #link: FrameSink | undefined;
  #hostSink: HostDatagramSink | undefined;
  #nowMs = 0;
  #identification = 0;
  /** Guest address to MAC; Map order is learning order. */
  readonly #arpCache = new Map<Ipv4Address, MacAddress>();
  readonly #pending = new Map<Ipv4Address, PendingResolution>();
  #pendingCount = 0;
  /** Client key to mapping; Map order is last-use order, so the first is the least recently used. */
  readonly #mappingsByClient = new Map<string, ClientMapping>();
  readonly #mappingsByPort = new Map<number, ClientMapping>();
  /** Ports given up, to when; Map order is release order. Only the last holder may have one back. */
  readonly #quarantinedPorts = new Map<number, number>();
  /**
   * Every port given up and not handed to another client since, to the client key that last held
   * it, and back. Bounded by the port space (65535); a port leaves when another client gets it.
   */
  readonly #lastHolderOfPort = new Map<number, string>();
  readonly #previousPortOfClient = new Map<string, number>();
  /**
   * A new client that cannot have its own port gets a dynamic port no client ever held (those from
   * this one up that are neither held nor remembered), and once there are none, the head of
   * `#recycledDynamicPorts`: dynamic ports whose quarantine ended, in that order, so the one reused
   * is the one free longest.
   */
  #nextUnusedDynamicPort = MAPPED_PORT_FIRST;
  readonly #recycledDynamicPorts = new Set<number>();
  readonly #statistics: GatewayStatistics = {
    framesFromNetwork: 0,
    framesToNetwork: 0,
    datagramsFromHost: 0,
    datagramsToHost: 0,
    arpRequestsSent: 0,
    arpRepliesSent: 0,
    framesIgnored: 0,
    drops: Object.fromEntries(dropReasons.map((reason) => [reason, 0])) as Record<GatewayDropReason, number>,
  };

  /** A gateway for the forwards of a `user,hostfwd=...` netdev spec (throws `NetdevSpecError`). */
  static fromNetdevSpec(spec: string, options: Omit<UserGatewayOptions, 'forwards'> = {}): UserGateway {
    return new UserGateway({ ...options, forwards: parseUserNetdev(spec).forwards });
  }

  constructor(options: UserGatewayOptions) {
    this.gatewayAddress = addressOption(options.gatewayAddress ?? GATEWAY_IPV4, 'gatewayAddress');
    this.guestAddress = addressOption(options.guestAddress ?? GUEST_IPV4, 'guestAddress');
    const mac = parseMacAddress(options.gatewayMac ?? GATEWAY_MAC);
    if (mac === undefined || isGroupMacAddress(mac)) {
      throw new ConfigError(`gateway MAC "${options.gatewayMac}" is not a unicast MAC address`);
    }
    this.gatewayMac = mac;
    this.#networkMask = (0xffff_ffff << (32 - USER_NETWORK_PREFIX_BITS)) >>> 0;
    this.#networkAddress = (this.gatewayAddress & this.#networkMask) >>> 0;
    this.forwards = options.forwards.map((rule) => ({ ...rule }));
    this.#ruleGuestAddresses = this.forwards.map((rule) => {
      const address =
        rule.guestAddress === undefined
          ? this.guestAddress
          : addressOption(rule.guestAddress, 'guest address');
      if (!this.#isGuestAddress(address)) {
        throw new ConfigError(
          `hostfwd=${formatHostForward(rule)}: guest address ${formatIpv4Address(address)} is not a guest address in ${formatIpv4Address(this.#networkAddress)}/${USER_NETWORK_PREFIX_BITS}`,
        );
      }
      return address;
    });
    if (!this.#isGuestAddress(this.guestAddress)) {
      throw new ConfigError(
        `guest address ${formatIpv4Address(this.guestAddress)} is not in the gateway's network`,
      );
    }
    this.#clientMappingsMax = integerOption(
      options.clientMappingsMax ?? CLIENT_MAPPINGS_MAX,
      'clientMappingsMax',
      1,
      MAPPED_PORT_LAST - MAPPED_PORT_FIRST + 1,
    );
    this.#mappingIdleTimeoutMs = integerOption(
      options.mappingIdleTimeoutMs ?? MAPPING_IDLE_TIMEOUT_MS,
      'mappingIdleTimeoutMs',
      1,
    );
    this.#portQuarantineMs = integerOption(
      options.portQuarantineMs ?? this.#mappingIdleTimeoutMs,
      'portQuarantineMs',
      this.#mappingIdleTimeoutMs,
    );
    this.#pendingDatagramsMax = integerOption(
      options.pendingDatagramsMax ?? PENDING_DATAGRAMS_MAX,
      'pendingDatagramsMax',
      0,
    );
    this.#arpRetryIntervalMs = integerOption(
      options.arpRetryIntervalMs ?? ARP_RETRY_INTERVAL_MS,
      'arpRetryIntervalMs',
      1,
    );
    this.#arpRequestsMax = integerOption(options.arpRequestsMax ?? ARP_REQUESTS_MAX, 'arpRequestsMax', 1);
    this.#onDrop = options.onDrop;
  }

  /** Connects the gateway's output to the network: a switch link, or a NIC's receive directly. */
  connect(link: FrameSink): void {
    this.#link = link;
  }

  /** Connects the gateway's host side: where datagrams for host clients go. */
  connectHost(sink: HostDatagramSink): void {
    this.#hostSink = sink;
  }

  /** Takes a frame from the network (the switch calls this). Never throws. */
  deliver(frame: Uint8Array): void {
    this.#statistics.framesFromNetwork++;
    const ethernet = parseEthernetFrame(frame);
    if (!ethernet.ok) {
      this.#dropMalformed('network', ethernet.reason, ethernet.detail);
      return;
    }
    const { destination, source, etherType, payload } = ethernet.value;
    if (destination !== this.gatewayMac && destination !== BROADCAST_MAC) {
      this.#statistics.framesIgnored++;
      return;
    }
    if (etherType === EtherType.arp) {
      this.#receiveArp(source, payload);
    } else if (etherType === EtherType.ipv4) {
      this.#receiveIpv4(source, payload);
    } else {
      this.#drop('unsupported-protocol', 'network', `EtherType 0x${etherType.toString(16).padStart(4, '0')}`);
    }
  }

  /**
   * Takes a datagram that host client `client` sent to the forwarded host port of rule
   * `ruleIndex`, and sends it on to the guest (or holds it until the guest's MAC is known). The
   * payload is forwarded as it is, whatever it holds: the guest decides. Never throws.
   */
  receiveFromHost(ruleIndex: number, client: UdpEndpoint, payload: Uint8Array): void {
    this.#statistics.datagramsFromHost++;
    const rule = Number.isInteger(ruleIndex) ? this.forwards[ruleIndex] : undefined;
    const guestAddress = this.#ruleGuestAddresses[ruleIndex];
    if (rule === undefined || guestAddress === undefined) {
      this.#drop('unknown-rule', 'host', `rule index ${ruleIndex} (${this.forwards.length} rules)`);
      return;
    }
    if (!isEndpoint(client)) {
      this.#drop('bad-client', 'host', 'client endpoint is not an address and a port 1..65535');
      return;
    }
    if (!(payload instanceof Uint8Array)) {
      this.#drop('malformed', 'host', 'payload is not a Uint8Array');
      return;
    }
    if (payload.length > UDP_PAYLOAD_BYTES_MAX) {
      this.#drop('oversized', 'host', `datagram of ${payload.length} bytes, limit ${UDP_PAYLOAD_BYTES_MAX}`);
      return;
    }
    const mapping = this.#mappingFor(ruleIndex, client, guestAddress, rule.guestPort);
    if (mapping === undefined) return;
    const guestMac = this.#arpCache.get(guestAddress);
    const frame = buildUdpFrame({
      destinationMac: guestMac ?? ZERO_MAC,
      sourceMac: this.gatewayMac,
      source: this.gatewayAddress,
      destination: guestAddress,
      sourcePort: mapping.gatewayPort,
      destinationPort: rule.guestPort,
      identification: this.#nextIdentification(),
      payload,
    });
    if (guestMac !== undefined) {
      this.#sendFrame(frame, 'host');
      return;
    }
    this.#holdForArp(guestAddress, frame);
  }

  /**
   * Advances the gateway's time (any monotonic milliseconds) and does what is due: expires idle
   * client mappings, ends port quarantines, repeats ARP requests, gives up on guests that never
   * answer. An earlier time than the last is ignored.
   */
  tick(nowMs: number): void {
    if (nowMs > this.#nowMs) this.#nowMs = nowMs;
    for (const [key, mapping] of this.#mappingsByClient) {
      // Map order is last-use order: stop at the first mapping still in use.
      if (this.#nowMs - mapping.lastUsedMs < this.#mappingIdleTimeoutMs) break;
      this.#removeMapping(key, mapping);
    }
    for (const [port, releasedAtMs] of this.#quarantinedPorts) {
      // Map order is release order: stop at the first port still in quarantine.
      if (this.#nowMs - releasedAtMs < this.#portQuarantineMs) break;
      this.#quarantinedPorts.delete(port);
      if (port >= MAPPED_PORT_FIRST && port <= MAPPED_PORT_LAST) this.#recycledDynamicPorts.add(port);
    }
    for (const [address, pending] of [...this.#pending]) {
      if (this.#nowMs - pending.lastRequestAtMs < this.#arpRetryIntervalMs) continue;
      if (pending.arpRequestsSent >= this.#arpRequestsMax) {
        this.#pending.delete(address);
        this.#pendingCount -= pending.frames.length;
        for (const _ of pending.frames) {
          this.#drop(
            'arp-unresolved',
            'host',
            `guest ${formatIpv4Address(address)} did not answer ${pending.arpRequestsSent} ARP requests`,
          );
        }
        continue;
      }
      this.#sendArpRequest(address, pending);
    }
  }

  /** The MAC address learned for a guest address (dotted quad), if any. */
  macOf(address: string): MacAddress | undefined {
    const parsed = parseIpv4Address(address);
    return parsed === undefined ? undefined : this.#arpCache.get(parsed);
  }

  /** The current client mappings, least recently used first (copies). */
  get clientMappings(): ClientMapping[] {
    return [...this.#mappingsByClient.values()].map((mapping) => ({
      ...mapping,
      client: { ...mapping.client },
    }));
  }

  /** How many ports given up are still in quarantine (kept for the client that held each). */
  get quarantinedPortCount(): number {
    return this.#quarantinedPorts.size;
  }

  /** How many host datagrams wait for ARP resolution. */
  get pendingDatagramCount(): number {
    return this.#pendingCount;
  }

  /** A copy of the counters. */
  get statistics(): GatewayStatistics {
    return { ...this.#statistics, drops: { ...this.#statistics.drops } };
  }

  #receiveArp(ethernetSource: MacAddress, payload: Uint8Array): void {
    const arp = parseArpPacket(payload);
    if (!arp.ok) {
      this.#dropMalformed('network', arp.reason, arp.detail);
      return;
    }
    const packet: ArpPacket = arp.value;
    // Learn before answering, so datagrams waiting for this guest go out first, as soon as possible.
    this.#learn(packet.senderAddress, packet.senderMac);
    if (packet.operation === ArpOperation.request && packet.targetAddress === this.gatewayAddress) {
      this.#statistics.arpRepliesSent++;
      this.#sendFrame(
        buildArpFrame({
          destination: ethernetSource,
          source: this.gatewayMac,
          operation: ArpOperation.reply,
          senderMac: this.gatewayMac,
          senderAddress: this.gatewayAddress,
          targetMac: packet.senderMac,
          targetAddress: packet.senderAddress,
          frameBytesMin: ARP_REPLY_FRAME_BYTES,
        }),
        'network',
      );
    }
  }

  #receiveIpv4(ethernetSource: MacAddress, payload: Uint8Array): void {
    const ip = parseIpv4Packet(payload);
    if (!ip.ok) {
      this.#dropMalformed('network', ip.reason, ip.detail);
      return;
    }
    const packet = ip.value;
    this.#learn(packet.source, ethernetSource);
    if (packet.destination !== this.gatewayAddress) {
      this.#drop('not-routed', 'network', `IPv4 packet for ${formatIpv4Address(packet.destination)}`);
      return;
    }
    if (packet.protocol !== IpProtocol.udp) {
      this.#drop('unsupported-protocol', 'network', `IP protocol ${packet.protocol}`);
      return;
    }
    const udp = parseUdpDatagram(packet.payload, packet.source, packet.destination);
    if (!udp.ok) {
      this.#dropMalformed('network', udp.reason, udp.detail);
      return;
    }
    const mapping = this.#mappingsByPort.get(udp.value.destinationPort);
    if (
      mapping === undefined ||
      mapping.guestAddress !== packet.source ||
      mapping.guestPort !== udp.value.sourcePort
    ) {
      this.#drop(
        'no-mapping',
        'network',
        `datagram ${formatIpv4Address(packet.source)}:${udp.value.sourcePort} -> gateway port ${udp.value.destinationPort}`,
      );
      return;
    }
    this.#touchMapping(mapping);
    if (this.#hostSink === undefined) {
      this.#drop('not-connected', 'network', 'no host sink connected');
      return;
    }
    try {
      // A copy: the payload is a view into the guest's frame, which its sender may reuse.
      this.#hostSink.sendToHost({
        ruleIndex: mapping.ruleIndex,
        client: { ...mapping.client },
        payload: udp.value.payload.slice(),
      });
      this.#statistics.datagramsToHost++;
    } catch (error) {
      this.#drop('sink-error', 'network', 'the host sink threw', error);
    }
  }

  /** Records that `address` is at `mac`, for guest addresses only, and releases what waited for it. */
  #learn(address: Ipv4Address, mac: MacAddress): void {
    if (!this.#isGuestAddress(address) || isGroupMacAddress(mac) || mac === ZERO_MAC) return;
    if (this.#arpCache.get(address) !== mac) {
      this.#arpCache.delete(address);
      if (this.#arpCache.size >= ARP_CACHE_ENTRIES_MAX) {
        const oldest = this.#arpCache.keys().next().value;
        if (oldest !== undefined) this.#arpCache.delete(oldest);
      }
      this.#arpCache.set(address, mac);
    }
    const pending = this.#pending.get(address);
    if (pending === undefined) return;
    // Taken out before sending: a guest that answers synchronously re-enters this gateway.
    this.#pending.delete(address);
    this.#pendingCount -= pending.frames.length;
    for (const frame of pending.frames) {
      writeMacAddress(frame, 0, mac);
      this.#sendFrame(frame, 'host');
    }
  }

  #holdForArp(address: Ipv4Address, frame: Uint8Array): void {
    let pending = this.#pending.get(address);
    const firstForAddress = pending === undefined;
    if (pending === undefined) {
      pending = { frames: [], arpRequestsSent: 0, lastRequestAtMs: this.#nowMs };
      this.#pending.set(address, pending);
    }
    if (this.#pendingCount >= this.#pendingDatagramsMax) {
      this.#drop(
        'pending-queue-full',
        'host',
        `${this.#pendingCount} datagrams already wait for ARP resolution (limit ${this.#pendingDatagramsMax})`,
      );
    } else {
      pending.frames.push(frame);
      this.#pendingCount++;
    }
    // Asked after queueing, so an answer that comes back synchronously finds the frame; asked even
    // when the frame was dropped, so that the next one finds the guest's MAC known.
    if (firstForAddress) this.#sendArpRequest(address, pending);
  }

  #sendArpRequest(address: Ipv4Address, pending: PendingResolution): void {
    pending.arpRequestsSent++;
    pending.lastRequestAtMs = this.#nowMs;
    this.#statistics.arpRequestsSent++;
    // slirp's request is 42 bytes; QEMU pads it to 60 on the way to the NIC, as this does.
    this.#sendFrame(
      buildArpFrame({
        destination: BROADCAST_MAC,
        source: this.gatewayMac,
        operation: ArpOperation.request,
        senderMac: this.gatewayMac,
        senderAddress: this.gatewayAddress,
        targetMac: ZERO_MAC,
        targetAddress: address,
      }),
      'host',
    );
  }

  #mappingFor(
    ruleIndex: number,
    client: UdpEndpoint,
    guestAddress: Ipv4Address,
    guestPort: number,
  ): ClientMapping | undefined {
    const key = `${ruleIndex}|${client.address}|${client.port}`;
    const existing = this.#mappingsByClient.get(key);
    if (existing !== undefined) {
      this.#touchMapping(existing, key);
      return existing;
    }
    // The port first, so that a client refused for want of one evicts nobody. The least recently
    // used mapping's port is never a candidate: it is held now, and quarantined once evicted.
    const gatewayPort = this.#portFor(key, client.port);
    if (gatewayPort === undefined) {
      this.#drop(
        'no-free-port',
        'host',
        `client ${client.address}:${client.port}: every port it may have is held (${this.#mappingsByPort.size}) or quarantined (${this.#quarantinedPorts.size})`,
      );
      return undefined;
    }
    if (this.#mappingsByClient.size >= this.#clientMappingsMax) {
      const [oldestKey, oldest] = this.#mappingsByClient.entries().next().value!;
      this.#removeMapping(oldestKey, oldest);
    }
    this.#takePort(gatewayPort);
    const mapping: ClientMapping = {
      ruleIndex,
      client: { address: client.address, port: client.port },
      gatewayPort,
      guestAddress,
      guestPort,
      lastUsedMs: this.#nowMs,
    };
    this.#mappingsByClient.set(key, mapping);
    this.#mappingsByPort.set(gatewayPort, mapping);
    return mapping;
  }

  /**
   * The port for a new mapping of client `key`: the port it held last, if no other client got it
   * since (even in quarantine: it is the client the quarantine keeps it for); else its own port
   * (what the guest sees under slirp) if no client ever held it; else the dynamic port free
   * longest; else none.
   */
  #portFor(key: string, ownPort: number): number | undefined {
    const previous = this.#previousPortOfClient.get(key);
    if (previous !== undefined) return previous;
    if (this.#neverHeld(ownPort)) return ownPort;
    for (; this.#nextUnusedDynamicPort <= MAPPED_PORT_LAST; this.#nextUnusedDynamicPort++) {
      if (this.#neverHeld(this.#nextUnusedDynamicPort)) return this.#nextUnusedDynamicPort;
    }
    return this.#recycledDynamicPorts.values().next().value;
  }

  /** A port once held is held, or remembered with its last holder, until it is held again. */
  #neverHeld(port: number): boolean {
    return !this.#mappingsByPort.has(port) && !this.#lastHolderOfPort.has(port);
  }

  /** Takes `port` out of the free, quarantined and remembered ports, for a new mapping. */
  #takePort(port: number): void {
    this.#recycledDynamicPorts.delete(port);
    this.#quarantinedPorts.delete(port);
    const lastHolder = this.#lastHolderOfPort.get(port);
    if (lastHolder === undefined) return;
    this.#lastHolderOfPort.delete(port);
    this.#previousPortOfClient.delete(lastHolder);
  }

  #touchMapping(
    mapping: ClientMapping,
    key = `${mapping.ruleIndex}|${mapping.client.address}|${mapping.client.port}`,
  ): void {
    mapping.lastUsedMs = this.#nowMs;
    this.#mappingsByClient.delete(key);
    this.#mappingsByClient.set(key, mapping);
  }

  /** Ends a mapping: its port goes into quarantine, kept for this client. */
  #removeMapping(key: string, mapping: ClientMapping): void {
    this.#mappingsByClient.delete(key);
    this.#mappingsByPort.delete(mapping.gatewayPort);
    this.#quarantinedPorts.set(mapping.gatewayPort, this.#nowMs);
    this.#lastHolderOfPort.set(mapping.gatewayPort, key);
    this.#previousPortOfClient.set(key, mapping.gatewayPort);
  }

  #nextIdentification(): number {
    const identification = this.#identification;
    this.#identification = (identification + 1) & 0xffff;
    return identification;
  }

  #sendFrame(frame: Uint8Array, from: 'network' | 'host'): void {
    if (this.#link === undefined) {
      this.#drop('not-connected', from, 'no network link connected');
      return;
    }
    try {
      this.#link.send(frame);
      this.#statistics.framesToNetwork++;
    } catch (error) {
      this.#drop('sink-error', from, 'the network link threw', error);
    }
  }

  #isGuestAddress(address: Ipv4Address): boolean {
    const host = address & ~this.#networkMask;
    return (
      (address & this.#networkMask) >>> 0 === this.#networkAddress &&
      address !== this.gatewayAddress &&
      host !== 0 &&
      host !== ~this.#networkMask >>> 0
    );
  }

  #dropMalformed(from: 'network' | 'host', reason: MalformedReason, detail: string): void {
    const dropReason: GatewayDropReason =
      reason === 'bad-checksum' ? 'bad-checksum' : reason === 'fragment' ? 'fragment' : 'malformed';
    this.#drop(dropReason, from, detail);
  }

  #drop(reason: GatewayDropReason, from: 'network' | 'host', detail: string, error?: unknown): void {
    this.#statistics.drops[reason]++;
    if (this.#onDrop === undefined) return;
    const drop: GatewayDrop = { reason, from, detail };
    if (error !== undefined) drop.error = error;
    this.#onDrop(drop);
  }
}

function isEndpoint(value: unknown): value is UdpEndpoint {
  if (typeof value !== 'object' || value === null) return false;
  const { address, port } = value as Record<string, unknown>;
  return (
    typeof address === 'string' &&
    address.length > 0 &&
    address.length <= 64 &&
    typeof port === 'number' &&
    Number.isInteger(port) &&
    port >= 1 &&
    port <= 65535
  );
}

function addressOption(text: string, name: string): Ipv4Address {
  const address = parseIpv4Address(text);
  if (address === undefined)
    throw new ConfigError(`gateway option ${name}: "${text}" is not an IPv4 address`);
  return address;
}

function integerOption(
  value: number,
  name: string,
  lowest: number,
  highest = Number.MAX_SAFE_INTEGER,
): number {
  if (!Number.isInteger(value) || value < lowest || value > highest) {
    throw new ConfigError(`gateway option ${name} must be an integer in ${lowest}..${highest}, got ${value}`);
  }
  return value;
}
