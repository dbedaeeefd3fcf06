import { ConfigError, ExitStatus } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { formatHostForward, NetdevSpecError, parseHostForward, parseUserNetdev } from './hostfwd.js';

/** The message of what `run` throws, checking that it is a NetdevSpecError. */
function failure(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(NetdevSpecError.is(error)).toBe(true);
    expect(ConfigError.is(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected a NetdevSpecError');
}

describe('hostfwd', () => {
  it('parses the forms QEMU documents', () => {
    expect(parseHostForward('udp::5555-:5555')).toEqual({
      protocol: 'udp',
      hostAddress: undefined,
      hostPort: 5555,
      guestAddress: undefined,
      guestPort: 5555,
    });
    expect(parseHostForward('udp:127.0.0.1:6000-10.0.2.15:5555')).toEqual({
      protocol: 'udp',
      hostAddress: '127.0.0.1',
      hostPort: 6000,
      guestAddress: '10.0.2.15',
      guestPort: 5555,
    });
    expect(parseHostForward('udp:127.0.0.1:0-:7').hostPort).toBe(0);
    expect(formatHostForward(parseHostForward('udp:127.0.0.1:6000-:5555'))).toBe('udp:127.0.0.1:6000-:5555');
  });

  it('parses a user netdev with several forwards and an id', () => {
    expect(parseUserNetdev('user')).toEqual({ id: undefined, forwards: [] });
    const netdev = parseUserNetdev('user,id=net0,hostfwd=udp::5555-:5555,hostfwd=udp:127.0.0.1:6000-:6000');
    expect(netdev.id).toBe('net0');
    expect(netdev.forwards.map(formatHostForward)).toEqual(['udp::5555-:5555', 'udp:127.0.0.1:6000-:6000']);
  });

  it('refuses bad specs with typed errors that quote the fault', () => {
    const cases: [string, RegExp][] = [
      ['', /expected "user,\.\.\."/],
      ['tap,ifname=tap0', /backend "tap" is not supported/],
      ['user,hostfwd=tcp::22-:22', /tcp.*only udp forwards are supported; write udp::22-:22/],
      ['user,hostfwd=::5555-:5555', /no protocol means tcp in QEMU.*write udp::5555-:5555/],
      ['user,hostfwd=sctp::1-:1', /unknown protocol "sctp"/],
      ['user,hostfwd=udp:5555-:5555', /host side "5555" needs \[HOSTIP\]:PORT/],
      ['user,hostfwd=udp::5555:5555', /missing "-"/],
      ['user,hostfwd=udp::5555-', /guest side "" needs/],
      ['user,hostfwd=udp::70000-:1', /host port 70000 is outside 0\.\.65535/],
      ['user,hostfwd=udp::1-:0', /guest port 0 is outside 1\.\.65535/],
      ['user,hostfwd=udp::x-:1', /host port "x" is not a number/],
      ['user,hostfwd=udp::-:1', /host port "" is not a number/],
      ['user,hostfwd=udp:localhost:1-:1', /host address "localhost" is not an IPv4 address/],
      ['user,hostfwd=udp::1-10.0.2.300:1', /guest address "10\.0\.2\.300"/],
      ['user,hostfwd', /option "hostfwd" has no value/],
      ['user,,hostfwd=udp::1-:1', /empty option/],
      ['user,net=10.0.3.0/24', /option "net" is not supported/],
      ['user,id=', /empty id/],
      ['user,hostfwd=udp::5555-:1,hostfwd=udp::5555-:2', /host port udp 5555 is forwarded twice/],
      ['user,hostfwd=udp:127.0.0.1:5555-:1,hostfwd=udp::5555-:2', /forwarded twice/],
    ];
    for (const [spec, expected] of cases) {
      const message = failure(() => parseUserNetdev(spec));
      expect(message, spec).toMatch(expected);
      expect(message, spec).toContain(`bad netdev "${spec}"`);
    }
  });

  it('maps to the usage exit status', () => {
    try {
      parseUserNetdev('user,hostfwd=tcp::1-:1');
    } catch (error) {
      expect((error as ConfigError).exitStatus).toBe(ExitStatus.usage);
      expect((error as NetdevSpecError).spec).toBe('user,hostfwd=tcp::1-:1');
    }
    expect.assertions(2);
  });

  it('allows the same port on two different host addresses, and several host port 0', () => {
    const netdev = parseUserNetdev(
      'user,hostfwd=udp:127.0.0.1:5555-:1,hostfwd=udp:127.0.0.2:5555-:2,hostfwd=udp::0-:3,hostfwd=udp::0-:4',
    );
    expect(netdev.forwards.length).toBe(4);
  });
});
