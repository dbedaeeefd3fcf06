import { createSocket, type Socket } from 'node:dgram';
import { HostIoError } from '@ftvm/core';
import { afterEach, describe, expect, it } from 'vitest';
import { UserGateway } from '../gateway.js';
import { VirtualSwitch } from '../switch.js';
import { EchoGuest } from '../test-support.js';
import { HostForwardBindError, UdpGatewayHost } from './udp-gateway-host.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openSocket(port = 0): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.0.0.1', () => resolve());
  });
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket;
}

/** Sends `text` to 127.0.0.1:`port` and waits for one reply. */
function request(socket: Socket, port: number, text: string): Promise<{ text: string; from: number }> {
  return new Promise((resolve) => {
    socket.once('message', (message, remote) => resolve({ text: message.toString(), from: remote.port }));
    socket.send(text, port, '127.0.0.1');
  });
}

/** A gateway on a switch with an echoing fake guest, opened on real sockets. */
async function echoNetwork(spec: string) {
  const vswitch = new VirtualSwitch();
  const gateway = UserGateway.fromNetdevSpec(spec);
  gateway.connect(vswitch.attach(gateway));
  const guest = new EchoGuest();
  guest.link = vswitch.attach(guest);
  const host = await UdpGatewayHost.open(gateway);
  cleanups.push(() => host.close());
  return { gateway, guest, host };
}

describe('UdpGatewayHost', () => {
  it("carries host clients' datagrams to the guest and its echoes back, over real UDP", async () => {
    const { host, guest, gateway } = await echoNetwork('user,hostfwd=udp:127.0.0.1:0-:5555');
    const port = host.boundForwards[0]!.port;
    expect(port).toBeGreaterThan(0);
    expect(host.boundForwards[0]!.address).toBe('127.0.0.1');

    const alice = await openSocket();
    const bob = await openSocket();
    expect(await request(alice, port, 'hello from alice')).toEqual({
      text: 'echo:hello from alice',
      from: port,
    });
    expect(await request(bob, port, 'hello from bob')).toEqual({ text: 'echo:hello from bob', from: port });
    expect(await request(alice, port, 'again')).toEqual({ text: 'echo:again', from: port });
    expect(guest.echoed).toEqual(['hello from alice', 'hello from bob', 'again']);
    expect(gateway.clientMappings.map((mapping) => mapping.client.port).sort()).toEqual(
      [alice.address().port, bob.address().port].sort(),
    );
  });

  it('refuses a port in use with a typed error, closing what it had bound', async () => {
    const taken = await openSocket();
    const takenPort = taken.address().port;
    const free = await openSocket();
    const freePort = free.address().port;
    await new Promise<void>((resolve) => free.close(() => resolve()));
    cleanups.pop();

    const gateway = UserGateway.fromNetdevSpec(
      `user,hostfwd=udp:127.0.0.1:${freePort}-:1,hostfwd=udp:127.0.0.1:${takenPort}-:2`,
    );
    const error = await UdpGatewayHost.open(gateway).catch((caught: unknown) => caught);
    expect(HostForwardBindError.is(error)).toBe(true);
    expect(HostIoError.is(error)).toBe(true);
    expect((error as HostForwardBindError).socketErrorCode).toBe('EADDRINUSE');
    expect((error as Error).message).toBe(
      `cannot bind udp 127.0.0.1:${takenPort} for hostfwd=udp:127.0.0.1:${takenPort}-:2: the port is already in use (EADDRINUSE)`,
    );
    // The first rule's socket was closed again: its port can be bound.
    await openSocket(freePort);
  });

  it('refuses an address that is not local', async () => {
    const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp:192.0.2.1:0-:1');
    const error = await UdpGatewayHost.open(gateway).catch((caught: unknown) => caught);
    expect(HostForwardBindError.is(error)).toBe(true);
    expect((error as Error).message).toMatch(/^cannot bind udp 192\.0\.2\.1:0 .*EADDRNOTAVAIL/);
  });

  it('closes cleanly and more than once, and then frees its ports', async () => {
    const { host } = await echoNetwork('user,hostfwd=udp:127.0.0.1:0-:5555');
    const port = host.boundForwards[0]!.port;
    await host.close();
    await host.close();
    await openSocket(port);
  });
});
