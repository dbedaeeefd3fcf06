import { createServer, type Server, type TLSSocket } from 'node:tls';
import { ConfigError } from '@ftvm/core';
import { type HostForwardRule, UserGateway, VirtualSwitch } from '@ftvm/net';
import { UdpGatewayHost } from '@ftvm/net/node';
import type { Logger } from 'pino';
import type { Forward } from './api.js';
import { peerName, serverTlsOptions } from './auth.js';
import type { Credentials } from './certs.js';
import { encodeFrame, FrameReader, readHello } from './frame-link.js';
import { ApiClient } from './http.js';

/**
 * The gateway (`ftvm gateway`): the clients' entry point. For each VM it holds a virtual switch
 * and the user-mode gateway (10.0.2.2, as QEMU's user networking) with the VM's UDP port
 * forwards on real sockets. Hosts plug their roles of a VM into its switch over an authenticated
 * link; the switch learns which link the guest's MAC lives behind, and a backup that goes live
 * announces itself (RARP), so clients never need to know which host runs the primary.
 */

const HEARTBEAT_INTERVAL_MS = 500;

export interface GatewayServiceOptions {
  readonly listen: { host: string; port: number };
  readonly advertise?: string;
  readonly credentials: Credentials;
  readonly orchestrators: readonly string[];
  /** Forwards given on the command line (`--forward udp::5555-VM:5555`), beside each VM's own. */
  readonly forwards?: readonly { vm: string; rule: HostForwardRule }[];
  readonly logger: Logger;
}

interface VmNetwork {
  readonly switch: VirtualSwitch;
  /** The VM's forwards on real UDP sockets. */
  readonly host: UdpGatewayHost;
}

interface VmInfo {
  name: string;
  forwards: Forward[];
  hosts: string[];
}

export class GatewayService {
  readonly #options: GatewayServiceOptions;
  readonly #networks = new Map<string, VmNetwork | Promise<VmNetwork | undefined>>();
  readonly #allowed = new Map<string, Set<string>>();
  readonly #orchestrators: ApiClient[];
  readonly #links = new Set<TLSSocket>();
  /** `VM/switch port number` → the host linked there (for the logs). */
  readonly #portHosts = new Map<string, string>();
  /** Orchestrators whose last heartbeat failed. */
  readonly #unreached = new Set<string>();
  #server: Server | undefined;
  #timer: NodeJS.Timeout | undefined;
  #port = 0;

  constructor(options: GatewayServiceOptions) {
    this.#options = options;
    this.#orchestrators = options.orchestrators.map(
      (address) => new ApiClient(options.credentials, address, { timeoutMs: 2_000 }),
    );
  }

  get port(): number {
    return this.#port;
  }

  get address(): string {
    return this.#options.advertise ?? `${this.#options.listen.host}:${this.#port}`;
  }

  /** The UDP ports bound for `vm` (after its network exists). */
  async boundPorts(vm: string): Promise<number[]> {
    const network = await this.#networks.get(vm);
    return network ? network.host.boundForwards.map((forward) => forward.port) : [];
  }

  async start(): Promise<void> {
    this.#server = createServer(serverTlsOptions(this.#options.credentials), (socket) => {
      void this.#accept(socket);
    });
    this.#server.on('tlsClientError', () => {});
    await new Promise<void>((resolve, reject) => {
      this.#server?.once('error', reject);
      this.#server?.listen(this.#options.listen.port, this.#options.listen.host, () => resolve());
    });
    const bound = this.#server.address();
    this.#port = typeof bound === 'object' && bound ? bound.port : this.#options.listen.port;
    this.#options.logger.info({ listen: this.address }, 'gateway listening for host links');
    // Static forwards open at once: clients can reach the port before the VM exists.
    for (const { vm } of this.#options.forwards ?? []) await this.#network(vm, []);
    await this.#heartbeat();
    this.#timer = setInterval(() => void this.#heartbeat(), HEARTBEAT_INTERVAL_MS);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const socket of this.#links) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
    for (const network of this.#networks.values()) await (await network)?.host.close();
    for (const client of this.#orchestrators) client.close();
  }

  async #heartbeat(): Promise<void> {
    for (const client of this.#orchestrators) {
      try {
        const answer = await client.call<{ vms: VmInfo[] }>('POST', '/v1/gateway/heartbeat', {
          address: this.address,
        });
        this.#unreached.delete(client.address);
        for (const vm of answer.vms) {
          const allowed = this.#allowed.get(vm.name) ?? new Set<string>();
          for (const host of vm.hosts) allowed.add(host);
          this.#allowed.set(vm.name, allowed);
          await this.#network(vm.name, vm.forwards);
        }
      } catch (error) {
        // Once per outage at warn (a wrong key or address says why at once), then at debug.
        const said = this.#unreached.has(client.address);
        this.#unreached.add(client.address);
        this.#options.logger[said ? 'debug' : 'warn'](
          { orchestrator: client.address, error: (error as Error).message },
          'heartbeat failed',
        );
      }
    }
  }

  /** The VM's network, made on first sight with its forwards (and the command line's). */
  #network(vm: string, forwards: readonly Forward[]): Promise<VmNetwork | undefined> {
    const existing = this.#networks.get(vm);
    if (existing) return Promise.resolve(existing);
    const made = (async () => {
      const rules: HostForwardRule[] = [
        ...forwards.map((forward) => ({
          protocol: 'udp' as const,
          hostAddress: forward.hostAddress || undefined,
          hostPort: forward.hostPort,
          guestAddress: undefined,
          guestPort: forward.guestPort,
        })),
        ...(this.#options.forwards ?? [])
          .filter((forward) => forward.vm === vm)
          .map((forward) => forward.rule),
      ];
      const network = new VirtualSwitch({
        onMacMoved: (move) => {
          const host = this.#portHosts.get(`${vm}/${move.toPortNumber}`);
          this.#options.logger.info(
            { vm, host, mac: move.mac },
            'the guest moved to another host (a go-live)',
          );
        },
      });
      // Every guest-side port held or quarantined: a new client is refused. Said once a minute
      // at most (a flood of new clients would otherwise flood the log), with how many.
      let refused = 0;
      let refusalSaidAt = Number.NEGATIVE_INFINITY;
      const gateway = new UserGateway({
        forwards: rules,
        onDrop: (drop) => {
          if (drop.reason !== 'no-free-port') return;
          refused++;
          const now = performance.now();
          if (now - refusalSaidAt < 60_000) return;
          refusalSaidAt = now;
          this.#options.logger.warn(
            { vm, refused, detail: drop.detail },
            'new client refused: every guest-side port is held or quarantined',
          );
        },
      });
      const link = network.attach({ deliver: (frame) => gateway.deliver(frame) });
      gateway.connect({ send: (frame) => link.send(frame) });
      try {
        const host = await UdpGatewayHost.open(gateway, {
          onError: (error) => this.#options.logger.warn({ vm, error: error.message }, 'udp forward error'),
        });
        const ready: VmNetwork = { switch: network, host };
        this.#networks.set(vm, ready);
        this.#options.logger.info(
          { vm, forwards: host.boundForwards.map((forward) => `${forward.address}:${forward.port}`) },
          'VM network up',
        );
        return ready;
      } catch (error) {
        this.#networks.delete(vm);
        this.#options.logger.error({ vm, error: (error as Error).message }, 'cannot open the VM network');
        return undefined;
      }
    })();
    this.#networks.set(vm, made);
    return made;
  }

  async #accept(socket: TLSSocket): Promise<void> {
    const peer = peerName(socket);
    this.#links.add(socket);
    socket.on('close', () => this.#links.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    let hello: { vm: string; host: string };
    let rest: Buffer;
    try {
      ({ hello, rest } = await readHello(socket));
    } catch (error) {
      this.#options.logger.warn({ peer, error: (error as Error).message }, 'link refused: bad hello');
      socket.destroy();
      return;
    }
    if (hello.host !== peer) {
      this.#options.logger.warn({ peer, claimed: hello.host }, 'link refused: a host spoke for another');
      socket.destroy();
      return;
    }
    if (!this.#allowed.get(hello.vm)?.has(hello.host)) await this.#heartbeat();
    if (!this.#allowed.get(hello.vm)?.has(hello.host)) {
      this.#options.logger.warn(
        { vm: hello.vm, host: hello.host },
        'link refused: the VM is not assigned to this host',
      );
      socket.destroy();
      return;
    }
    const network = await this.#network(hello.vm, []);
    if (!network || socket.destroyed) {
      socket.destroy();
      return;
    }
    const port = network.switch.attach({
      deliver: (frame) => {
        if (!socket.destroyed && socket.writable) socket.write(encodeFrame(frame));
      },
    });
    this.#portHosts.set(`${hello.vm}/${port.portNumber}`, hello.host);
    this.#options.logger.info({ vm: hello.vm, host: hello.host }, 'host linked');
    const reader = new FrameReader((frame) => port.send(frame));
    const onData = (chunk: Buffer) => {
      if (!reader.push(chunk)) socket.destroy();
    };
    if (rest.length > 0) onData(rest);
    socket.on('data', onData);
    socket.on('close', () => {
      port.detach();
      this.#portHosts.delete(`${hello.vm}/${port.portNumber}`);
      this.#options.logger.info({ vm: hello.vm, host: hello.host }, 'host link closed');
    });
  }
}

/** Parses the gateway's `--forward udp:[HOSTIP]:HOSTPORT-VM:GUESTPORT`. */
export function parseGatewayForward(value: string): { vm: string; rule: HostForwardRule } {
  const match = /^udp:([\d.]*):(\d{1,5})-([A-Za-z0-9][A-Za-z0-9._-]{0,62}):(\d{1,5})$/.exec(value);
  const hostPort = Number(match?.[2]);
  const guestPort = Number(match?.[4]);
  if (!match || hostPort > 65535 || guestPort < 1 || guestPort > 65535) {
    throw new ConfigError(`invalid --forward ${JSON.stringify(value)}: udp:[HOSTIP]:HOSTPORT-VM:GUESTPORT`);
  }
  return {
    vm: match[3] as string,
    rule: {
      protocol: 'udp',
      hostAddress: match[1] || undefined,
      hostPort,
      guestAddress: undefined,
      guestPort,
    },
  };
}
