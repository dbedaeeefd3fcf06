import { createSocket, type Socket } from 'node:dgram';
import { HostIoError } from '@ftvm/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MAPPING_IDLE_TIMEOUT_MS, UserGateway, type UserGatewayOptions } from '../gateway.js';
import { VirtualSwitch } from '../switch.js';
import { EchoGuest, KvGuest } from '../test-support.js';
import { HostForwardBindError, UdpGatewayHost } from './udp-gateway-host.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openSocket(port = 0, address = '127.0.0.1'): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => resolve());
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

/**
 * The fake kv service behind a gateway on real sockets, with the host's clock in the test's hands.
 * Alice on 127.0.0.1 and Bob on 127.0.0.2 use the same UDP port number, so the gateway would give
 * Bob Alice's port as his own if it were free.
 */
async function kvNetwork(options: Omit<UserGatewayOptions, 'forwards'> = {}) {
  const clock = { nowMs: 0 };
  const vswitch = new VirtualSwitch();
  const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp:127.0.0.1:0-:5555', options);
  gateway.connect(vswitch.attach(gateway));
  const guest = new KvGuest();
  guest.link = vswitch.attach(guest);
  const host = await UdpGatewayHost.open(gateway, { nowMs: () => clock.nowMs });
  cleanups.push(() => host.close());
  const forwarded = host.boundForwards[0]!.port;
  const alice = await openSocket(0, '127.0.0.1');
  const bob = await openSocket(alice.address().port, '127.0.0.2');
  const ask = async (socket: Socket, text: string) => (await request(socket, forwarded, text)).text;
  return { clock, guest, alice, bob, ask };
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

  it("answers a client on 127.0.0.2 from its own memory after it evicted Alice's mapping, and Alice from hers", async () => {
    const { guest, alice, bob, ask } = await kvNetwork({ clientMappingsMax: 1 });
    expect(await ask(alice, '1 PUT secret hunter2')).toBe('1 OK');
    expect(await ask(alice, '2 INCR visits')).toBe('2 OK 1');
    expect(await ask(bob, '2 GET bob-key')).toBe('2 NOTFOUND');
    // Alice resends her INCR: she evicts Bob, gets her port back, and it is applied once.
    expect(await ask(alice, '2 INCR visits')).toBe('2 OK 1');
    expect(guest.store.get('visits')).toBe('1');
  });

  it("answers a client on 127.0.0.2 from its own memory after Alice's mapping expired on the host's clock", async () => {
    const { clock, guest, alice, bob, ask } = await kvNetwork();
    expect(await ask(alice, '1 INCR visits')).toBe('1 OK 1');
    // The host ticks the gateway before taking Bob's datagram in: Alice's mapping expires then.
    clock.nowMs += MAPPING_IDLE_TIMEOUT_MS;
    expect(await ask(bob, '1 GET bob-key')).toBe('1 NOTFOUND');
    expect(await ask(alice, '1 INCR visits')).toBe('1 OK 1');
    expect(guest.store.get('visits')).toBe('1');
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
