import type { VirtioNet } from '@ftvm/devices';
import {
  announceFrame,
  GUEST_IPV4,
  GUEST_MAC,
  parseHostForward,
  parseIpv4Address,
  parseMacAddress,
  type SwitchLink,
  type UdpEndpoint,
  UserGateway,
  VirtualSwitch,
} from '@ftvm/net';
import type { EventLoop, SimHost } from './loop.js';
import type { Prng } from './prng.js';

/** The kv service's UDP port (kv.elf). */
export const KV_PORT = 5555;

export interface SimNetworkOptions {
  /** One-way latency between a client and the gateway, ns. */
  readonly clientLatencyNs: readonly [number, number];
  /** Latency from the switch to a NIC, ns. */
  readonly nicLatencyNs: number;
  /** Probability that a datagram between a client and the gateway is lost (either way). */
  readonly datagramLossRate: number;
}

/**
 * The guest network of a simulated run: the real {@link VirtualSwitch} and {@link UserGateway}
 * from `@ftvm/net`, each VM host's NIC on a port of the switch, and kv clients on the gateway's
 * host side (UDP endpoints with datagrams, no sockets). Datagrams between clients and the gateway
 * take a seeded latency and may be lost; frames from the switch reach a NIC as an event on its
 * host (`VirtioNet.receive`).
 */
export class SimNetwork {
  readonly switch: VirtualSwitch;
  readonly gateway: UserGateway;
  readonly #loop: EventLoop;
  readonly #rng: Prng;
  readonly #options: SimNetworkOptions;
  readonly #clients = new Map<string, (payload: Uint8Array) => void>();
  /** Datagrams lost on purpose (either way). */
  datagramsLost = 0;
  macMoves = 0;

  constructor(loop: EventLoop, rng: Prng, options: SimNetworkOptions) {
    this.#loop = loop;
    this.#rng = rng;
    this.#options = options;
    this.switch = new VirtualSwitch({ onMacMoved: () => this.macMoves++ });
    this.gateway = new UserGateway({ forwards: [parseHostForward(`udp::${KV_PORT}-:${KV_PORT}`)] });
    this.gateway.connect(this.switch.attach(this.gateway));
    this.gateway.connectHost({
      sendToHost: (datagram) => {
        const deliver = this.#clients.get(endpointKey(datagram.client));
        if (deliver === undefined || this.#lost()) return;
        const payload = datagram.payload.slice();
        this.#loop.after(this.#clientLatency(), () => deliver(payload));
      },
    });
  }

  /** Puts a host's NIC on a port of the switch; frames the VM releases go out through the link. */
  attachNic(host: SimHost, nic: VirtioNet): SwitchLink {
    return this.switch.attach({
      deliver: (frame) => {
        const copy = frame.slice();
        host.after(this.#options.nicLatencyNs, () => {
          if (!host.dead) nic.receive(copy);
        });
      },
    });
  }

  /** A gratuitous ARP for the guest from `link`'s port: the switch moves the guest's MAC there. */
  announce(link: SwitchLink): void {
    const mac = parseMacAddress(GUEST_MAC);
    const address = parseIpv4Address(GUEST_IPV4);
    if (mac === undefined || address === undefined) throw new Error('the guest addresses do not parse');
    link.send(announceFrame(mac, address));
  }

  /** Registers a client endpoint: datagrams for it go to `receive`. */
  addClient(endpoint: UdpEndpoint, receive: (payload: Uint8Array) => void): void {
    this.#clients.set(endpointKey(endpoint), receive);
  }

  /** A client sends a datagram to the forwarded kv port. */
  sendFromClient(endpoint: UdpEndpoint, payload: Uint8Array): void {
    if (this.#lost()) return;
    this.#loop.after(this.#clientLatency(), () => this.gateway.receiveFromHost(0, endpoint, payload));
  }

  /** Lets the gateway and the switch see time pass (ARP retries, ageing). */
  tick(): void {
    const nowMs = this.#loop.now / 1e6;
    this.gateway.tick(nowMs);
    this.switch.tick(nowMs);
  }

  #lost(): boolean {
    if (this.#options.datagramLossRate <= 0 || !this.#rng.chance(this.#options.datagramLossRate))
      return false;
    this.datagramsLost++;
    return true;
  }

  #clientLatency(): number {
    const [low, high] = this.#options.clientLatencyNs;
    return Math.round(this.#rng.between(low, high));
  }
}

function endpointKey(endpoint: UdpEndpoint): string {
  return `${endpoint.address}:${endpoint.port}`;
}
