import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback in front of a logging channel, for fault injection (the demo's
 * partitions, `ftvm host --fault-injection`): `hold` partitions the channel both ways (bytes wait,
 * as a network that drops them would make TCP retransmit them later), for `ms` or until `release`,
 * and then lets them through in order. Connections made while it holds start held. The channel's
 * TLS passes through untouched.
 */
export class LinkProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #pairs = new Set<{ held: boolean; pending: [Socket, Buffer][] }>();
  #heldUntilMs = 0;
  #timer: NodeJS.Timeout | undefined;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** A proxy on 127.0.0.1 (a free port) to `target`. */
  static async open(target: { host: string; port: number }): Promise<LinkProxy> {
    const holder: { proxy?: LinkProxy } = {};
    const server = createServer((client) => holder.proxy?.accept(client, target));
    const proxy = new LinkProxy(server);
    holder.proxy = proxy;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** Holds every byte both ways (a partition) for `ms`, or until {@link release} when none is given. */
  hold(ms = Number.POSITIVE_INFINITY): void {
    this.#heldUntilMs = Math.max(this.#heldUntilMs, performance.now() + ms);
    for (const pair of this.#pairs) pair.held = true;
    clearTimeout(this.#timer);
    if (Number.isFinite(this.#heldUntilMs)) {
      this.#timer = setTimeout(() => this.release(), Math.max(0, this.#heldUntilMs - performance.now()));
    }
  }

  /** Ends a hold now: what waited is sent on, in order. */
  release(): void {
    clearTimeout(this.#timer);
    this.#heldUntilMs = 0;
    for (const pair of this.#pairs) {
      pair.held = false;
      for (const [to, data] of pair.pending.splice(0)) if (!to.destroyed) to.write(data);
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Joins a client that connected to the proxy with a new connection to `target`. */
  private accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.#sockets.add(client);
    this.#sockets.add(upstream);
    const pair = { held: performance.now() < this.#heldUntilMs, pending: [] as [Socket, Buffer][] };
    this.#pairs.add(pair);
    const forward = (to: Socket) => (data: Buffer) => {
      if (pair.held) pair.pending.push([to, data]);
      else to.write(data);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
      this.#pairs.delete(pair);
    };
    for (const socket of [client, upstream]) {
      socket.on('close', closeBoth);
      socket.on('error', closeBoth);
    }
  }
}
