/**
 * The host side of a {@link UserGateway}: one real UDP socket per hostfwd rule. Datagrams that
 * arrive on a rule's socket go into the gateway; datagrams the gateway sends to a host client go
 * out of the same socket, so the client sees its replies come from the port it sent to.
 *
 * This is the one place with a clock and a timer: it passes monotonic time to `gateway.tick`
 * before each datagram and every `tickIntervalMs`, which expires idle client mappings and repeats
 * ARP requests.
 */
import { createSocket, type Socket } from 'node:dgram';
import { HostIoError } from '@ftvm/core';
import { formatHostForward, type HostForwardRule, type UserGateway } from '../index.js';

/** How often the host ticks the gateway, by default. */
export const GATEWAY_TICK_INTERVAL_MS = 250;

const bindErrorBrand: unique symbol = Symbol.for('@ftvm/net/HostForwardBindError') as never;

/** A forwarded host port that cannot be bound (in use, not permitted, address not local). */
export class HostForwardBindError extends HostIoError {
  readonly [bindErrorBrand] = true;
  readonly rule: HostForwardRule;
  /** The socket error's code, such as `EADDRINUSE`, when it had one. */
  readonly socketErrorCode: string | undefined;

  constructor(rule: HostForwardRule, cause: unknown) {
    const socketErrorCode = errorCode(cause);
    const address = `${rule.hostAddress ?? '0.0.0.0'}:${rule.hostPort}`;
    const why =
      socketErrorCode === 'EADDRINUSE'
        ? 'the port is already in use'
        : socketErrorCode === 'EACCES'
          ? 'permission denied'
          : socketErrorCode === 'EADDRNOTAVAIL'
            ? 'the address is not one of this host'
            : cause instanceof Error
              ? cause.message
              : String(cause);
    super(
      `cannot bind udp ${address} for hostfwd=${formatHostForward(rule)}: ${why}${socketErrorCode ? ` (${socketErrorCode})` : ''}`,
      { cause },
    );
    this.rule = rule;
    this.socketErrorCode = socketErrorCode;
  }

  /** True for a HostForwardBindError from any copy of this package. */
  static override is = (value: unknown): value is HostForwardBindError =>
    HostIoError.is(value) && bindErrorBrand in value;
}

export interface UdpGatewayHostOptions {
  /** Monotonic milliseconds; default `performance.now`. */
  nowMs?: () => number;
  /** Default {@link GATEWAY_TICK_INTERVAL_MS}. */
  tickIntervalMs?: number;
  /** Told of socket errors after binding (a failed send); they do not stop the host. */
  onError?: (error: HostIoError) => void;
}

/** Where one rule's socket is bound. */
export interface BoundForward {
  ruleIndex: number;
  rule: HostForwardRule;
  address: string;
  /** The bound port: the rule's, or the one the host picked for host port 0. */
  port: number;
}

/** The UDP sockets of a gateway; see the file comment. Make one with {@link UdpGatewayHost.open}. */
export class UdpGatewayHost {
  readonly #gateway: UserGateway;
  readonly #sockets: Socket[];
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #nowMs: () => number;
  readonly #onError: ((error: HostIoError) => void) | undefined;
  #closed: Promise<void> | undefined;
  /** Datagrams handed to a socket whose send has not completed yet. */
  #sendsInFlight = 0;
  #sendsDrained: (() => void) | undefined;
  /** Where each rule's socket is bound, in rule order. */
  readonly boundForwards: readonly BoundForward[];

  /**
   * Binds a socket for each of the gateway's forwards and connects them to it. Throws
   * {@link HostForwardBindError} (after closing what it had bound) when a port cannot be bound.
   */
  static async open(gateway: UserGateway, options: UdpGatewayHostOptions = {}): Promise<UdpGatewayHost> {
    const sockets: Socket[] = [];
    try {
      for (const rule of gateway.forwards) sockets.push(await bindSocket(rule));
    } catch (error) {
      await Promise.all(sockets.map(closeSocket));
      throw error;
    }
    return new UdpGatewayHost(gateway, sockets, options);
  }

  private constructor(gateway: UserGateway, sockets: Socket[], options: UdpGatewayHostOptions) {
    this.#gateway = gateway;
    this.#sockets = sockets;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.#onError = options.onError;
    this.boundForwards = sockets.map((socket, ruleIndex) => {
      const bound = socket.address();
      return { ruleIndex, rule: gateway.forwards[ruleIndex]!, address: bound.address, port: bound.port };
    });
    sockets.forEach((socket, ruleIndex) => {
      socket.on('message', (message, remote) => {
        gateway.tick(this.#nowMs());
        gateway.receiveFromHost(ruleIndex, { address: remote.address, port: remote.port }, message);
      });
      socket.on('error', (error) =>
        this.#reportError(`udp socket of hostfwd rule ${ruleIndex} failed`, error),
      );
    });
    gateway.connectHost({
      sendToHost: (datagram) => {
        const socket = this.#sockets[datagram.ruleIndex];
        if (socket === undefined || this.#closed !== undefined) return;
        this.#sendsInFlight++;
        socket.send(datagram.payload, datagram.client.port, datagram.client.address, (error) => {
          if (error) {
            this.#reportError(`cannot send to ${datagram.client.address}:${datagram.client.port}`, error);
          }
          if (--this.#sendsInFlight === 0) this.#sendsDrained?.();
        });
      },
    });
    const intervalMs = options.tickIntervalMs ?? GATEWAY_TICK_INTERVAL_MS;
    this.#timer = setInterval(() => gateway.tick(this.#nowMs()), intervalMs);
    // The tick timer alone must not keep the process alive; the sockets decide that.
    this.#timer.unref();
  }

  /**
   * Stops taking datagrams, lets the ones already handed to a socket leave (a guest's last reply
   * before it powers off must not be lost), then closes every socket. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      clearInterval(this.#timer);
      this.#gateway.connectHost({ sendToHost: () => {} });
      const drained =
        this.#sendsInFlight === 0
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              this.#sendsDrained = resolve;
            });
      this.#closed = drained.then(() => Promise.all(this.#sockets.map(closeSocket))).then(() => {});
    }
    return this.#closed;
  }

  #reportError(message: string, error: Error): void {
    const wrapped = new HostIoError(`${message}: ${error.message}`, { cause: error });
    this.#onError?.(wrapped);
  }
}

function bindSocket(rule: HostForwardRule): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4' });
    const onError = (error: Error) => {
      socket.close();
      reject(new HostForwardBindError(rule, error));
    };
    socket.once('error', onError);
    socket.bind({ port: rule.hostPort, address: rule.hostAddress ?? '0.0.0.0', exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function closeSocket(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      // Already closed.
      resolve();
    }
  });
}

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}
