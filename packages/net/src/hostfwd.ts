/**
 * QEMU's user-network option string, as `-netdev user,...` and `ftvm run --netdev` take it:
 * `user[,id=NAME][,hostfwd=udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT]...`.
 *
 * Only UDP forwards are supported. QEMU defaults an empty protocol to TCP; rather than silently
 * forward UDP instead, an empty or `tcp` protocol is refused with an error that says so.
 */
import { ConfigError, type FtvmErrorOptions } from '@ftvm/core';
import { formatIpv4Address, type Ipv4Address, parseIpv4Address } from './addresses.js';

const netdevSpecErrorBrand: unique symbol = Symbol.for('@ftvm/net/NetdevSpecError') as never;

/** A netdev or hostfwd spec that cannot be used; the message quotes the part at fault. */
export class NetdevSpecError extends ConfigError {
  readonly [netdevSpecErrorBrand] = true;
  /** The whole spec as given. */
  readonly spec: string;

  constructor(spec: string, message: string, options?: FtvmErrorOptions) {
    super(`bad netdev "${spec}": ${message}`, options);
    this.spec = spec;
  }

  /** True for a NetdevSpecError from any copy of this package. */
  static override is = (value: unknown): value is NetdevSpecError =>
    ConfigError.is(value) && netdevSpecErrorBrand in value;
}

/** One UDP port forward from the host into the guest network. */
export interface HostForwardRule {
  protocol: 'udp';
  /** The host address to bind, as a dotted quad; `undefined` binds every address (QEMU's empty HOSTIP). */
  hostAddress: string | undefined;
  /** The host port to bind; 0 lets the host pick one. */
  hostPort: number;
  /** The guest address to forward to; `undefined` means the guest's default, 10.0.2.15. */
  guestAddress: string | undefined;
  guestPort: number;
}

/** A parsed `user,...` netdev. */
export interface UserNetdev {
  /** The `id=` option, if given. */
  id: string | undefined;
  forwards: HostForwardRule[];
}

const portPattern = /^\d{1,5}$/;

/** Parses one `hostfwd=` value: `udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT`. */
export function parseHostForward(value: string, spec = `hostfwd=${value}`): HostForwardRule {
  const fail = (message: string): never => {
    throw new NetdevSpecError(spec, `hostfwd "${value}": ${message}`);
  };
  const protocolEnd = value.indexOf(':');
  if (protocolEnd < 0) fail('expected udp:[HOSTIP]:HOSTPORT-[GUESTIP]:GUESTPORT');
  const protocol = value.slice(0, protocolEnd);
  if (protocol === '' || protocol === 'tcp') {
    fail(
      `${protocol === '' ? 'no protocol means tcp in QEMU' : 'tcp'}, and only udp forwards are supported; write udp:${value.slice(protocolEnd + 1)}`,
    );
  }
  if (protocol !== 'udp') fail(`unknown protocol "${protocol}" (only udp is supported)`);
  const rest = value.slice(protocolEnd + 1);
  const dash = rest.indexOf('-');
  if (dash < 0) fail('missing "-" between the host side and the guest side');
  const hostSide = splitAddressPort(rest.slice(0, dash), 'host', fail);
  const guestSide = splitAddressPort(rest.slice(dash + 1), 'guest', fail);
  const hostPort = parsePort(hostSide.port, 'host', 0, fail);
  const guestPort = parsePort(guestSide.port, 'guest', 1, fail);
  return {
    protocol: 'udp',
    hostAddress: parseAddress(hostSide.address, 'host', fail),
    hostPort,
    guestAddress: parseAddress(guestSide.address, 'guest', fail),
    guestPort,
  };
}

/** Parses a `user,...` netdev spec; throws {@link NetdevSpecError} naming what is wrong. */
export function parseUserNetdev(spec: string): UserNetdev {
  const fail = (message: string): never => {
    throw new NetdevSpecError(spec, message);
  };
  const parts = spec.split(',');
  const type = parts[0]!;
  if (type !== 'user') {
    fail(type === '' ? 'expected "user,..."' : `network backend "${type}" is not supported; only "user" is`);
  }
  const netdev: UserNetdev = { id: undefined, forwards: [] };
  for (const part of parts.slice(1)) {
    const equals = part.indexOf('=');
    if (equals < 0) fail(part === '' ? 'empty option (a stray comma?)' : `option "${part}" has no value`);
    const name = part.slice(0, equals);
    const value = part.slice(equals + 1);
    if (name === 'hostfwd') {
      netdev.forwards.push(parseHostForward(value, spec));
    } else if (name === 'id') {
      if (value === '') fail('empty id');
      netdev.id = value;
    } else {
      fail(`option "${name}" is not supported (supported: id, hostfwd)`);
    }
  }
  const bound = new Set<string>();
  for (const rule of netdev.forwards) {
    if (rule.hostPort === 0) continue;
    const key = `${rule.hostAddress ?? '*'}:${rule.hostPort}`;
    const clashes =
      bound.has(key) ||
      (rule.hostAddress === undefined
        ? [...bound].some((other) => other.endsWith(`:${rule.hostPort}`))
        : bound.has(`*:${rule.hostPort}`));
    if (clashes) fail(`host port udp ${rule.hostPort} is forwarded twice`);
    bound.add(key);
  }
  return netdev;
}

/** The QEMU spelling of a rule, for messages: `udp:127.0.0.1:5555-:5555`. */
export function formatHostForward(rule: HostForwardRule): string {
  return `udp:${rule.hostAddress ?? ''}:${rule.hostPort}-${rule.guestAddress ?? ''}:${rule.guestPort}`;
}

function splitAddressPort(
  text: string,
  side: 'host' | 'guest',
  fail: (message: string) => never,
): { address: string; port: string } {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return fail(`the ${side} side "${text}" needs [${side.toUpperCase()}IP]:PORT`);
  return { address: text.slice(0, colon), port: text.slice(colon + 1) };
}

function parsePort(
  text: string,
  side: 'host' | 'guest',
  lowest: number,
  fail: (message: string) => never,
): number {
  if (!portPattern.test(text)) return fail(`${side} port "${text}" is not a number`);
  const port = Number(text);
  if (port < lowest || port > 65535) return fail(`${side} port ${port} is outside ${lowest}..65535`);
  return port;
}

function parseAddress(
  text: string,
  side: 'host' | 'guest',
  fail: (message: string) => never,
): string | undefined {
  if (text === '') return undefined;
  const address: Ipv4Address | undefined = parseIpv4Address(text);
  if (address === undefined) return fail(`${side} address "${text}" is not an IPv4 address`);
  return formatIpv4Address(address);
}
