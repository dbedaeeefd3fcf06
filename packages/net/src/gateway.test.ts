import { ConfigError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { GATEWAY_MAC, GUEST_MAC, parseIpv4Address } from './addresses.js';
import { ArpOperation, announceFrame, buildArpFrame, parseArpPacket } from './arp.js';
import { buildEthernetFrame, parseEthernetFrame } from './ethernet.js';
import {
  type GatewayDrop,
  type HostDatagram,
  MAPPED_PORT_FIRST,
  MAPPED_PORT_LAST,
  MAPPING_IDLE_TIMEOUT_MS,
  type UdpEndpoint,
  UserGateway,
  type UserGatewayOptions,
} from './gateway.js';
import { parseUserNetdev } from './hostfwd.js';
import { buildUdpFrame, IpProtocol, parseUdpFrame, UDP_PAYLOAD_BYTES_MAX, writeIpv4Header } from './ipv4.js';
import { VirtualSwitch } from './switch.js';
import { EchoGuest, KvGuest, padded, qemuFrames } from './test-support.js';

const ip = (dotted: string) => parseIpv4Address(dotted)!;
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** A gateway wired to arrays: frames it sends to the network, datagrams it sends to the host. */
function harness(
  spec = 'user,hostfwd=udp:127.0.0.1:15555-:5555',
  options: Omit<UserGatewayOptions, 'forwards'> = {},
) {
  const frames: Uint8Array[] = [];
  const datagrams: HostDatagram[] = [];
  const drops: GatewayDrop[] = [];
  const gateway = UserGateway.fromNetdevSpec(spec, { ...options, onDrop: (drop) => drops.push(drop) });
  gateway.connect({ send: (frame) => frames.push(frame) });
  gateway.connectHost({ sendToHost: (datagram) => datagrams.push(datagram) });
  return { gateway, frames, datagrams, drops };
}

/** A UDP frame from the guest (10.0.2.15, guest MAC) to the gateway. */
function fromGuest(sourcePort: number, destinationPort: number, payload: string, source = '10.0.2.15') {
  return buildUdpFrame({
    destinationMac: GATEWAY_MAC,
    sourceMac: GUEST_MAC,
    source: ip(source),
    destination: ip('10.0.2.2'),
    sourcePort,
    destinationPort,
    identification: 1,
    payload: bytes(payload),
  });
}

/** Teaches the gateway the guest's MAC with the ARP request QEMU's guest sent. */
function learnGuest(gateway: UserGateway) {
  gateway.deliver(qemuFrames.guestArpRequest);
}

describe('UserGateway', () => {
  it('replays the QEMU transcript byte for byte: ARP for the guest, the datagram, the echo back', () => {
    const { gateway, frames, datagrams, drops } = harness();
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 45868 }, bytes('hello0'));
    expect(frames).toEqual([padded(qemuFrames.arpRequestForGuest, 60)]);
    expect(gateway.pendingDatagramCount).toBe(1);

    gateway.deliver(qemuFrames.guestArpReply);
    expect(frames[1]).toEqual(padded(qemuFrames.udpToGuest, 60));
    expect(gateway.pendingDatagramCount).toBe(0);
    expect(gateway.macOf('10.0.2.15')).toBe(GUEST_MAC);

    gateway.deliver(qemuFrames.guestEcho);
    expect(datagrams).toEqual([
      { ruleIndex: 0, client: { address: '127.0.0.1', port: 45868 }, payload: bytes('echo:hello0') },
    ]);
    expect(drops).toEqual([]);
  });

  it('answers ARP for 10.0.2.2 with the bytes QEMU answers, and learns the asker', () => {
    const { gateway, frames } = harness();
    learnGuest(gateway);
    expect(frames).toEqual([qemuFrames.arpReplyToGuest]);
    expect(gateway.macOf('10.0.2.15')).toBe(GUEST_MAC);
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 45868 }, bytes('hello0'));
    expect(frames[1]).toEqual(padded(qemuFrames.udpToGuest, 60));
    expect(gateway.statistics).toMatchObject({ arpRepliesSent: 1, arpRequestsSent: 0 });
  });

  it('does not answer ARP for other addresses', () => {
    const { gateway, frames } = harness();
    for (const target of ['10.0.2.3', '10.0.2.77', '192.168.1.1']) {
      gateway.deliver(
        buildArpFrame({
          destination: 'ff:ff:ff:ff:ff:ff',
          source: GUEST_MAC,
          operation: ArpOperation.request,
          senderMac: GUEST_MAC,
          senderAddress: ip('10.0.2.15'),
          targetMac: '00:00:00:00:00:00',
          targetAddress: ip(target),
        }),
      );
    }
    expect(frames).toEqual([]);
  });

  it('gives each client its own gateway port and maps the guest replies back', () => {
    const { gateway, frames, datagrams } = harness();
    learnGuest(gateway);
    frames.length = 0;
    const alice = { address: '192.0.2.1', port: 40000 };
    const bob = { address: '192.0.2.2', port: 40000 };
    gateway.receiveFromHost(0, alice, bytes('a'));
    gateway.receiveFromHost(0, bob, bytes('b'));
    gateway.receiveFromHost(0, alice, bytes('a2'));
    const seen = frames.map((frame) => {
      const parsed = parseUdpFrame(frame);
      if (!parsed.ok) throw new Error(parsed.detail);
      return [parsed.value.ip.source, parsed.value.udp.sourcePort, parsed.value.udp.destinationPort];
    });
    // Alice keeps her own port; Bob's is taken, so he gets the first dynamic port.
    expect(seen).toEqual([
      [ip('10.0.2.2'), 40000, 5555],
      [ip('10.0.2.2'), MAPPED_PORT_FIRST, 5555],
      [ip('10.0.2.2'), 40000, 5555],
    ]);
    gateway.deliver(fromGuest(5555, MAPPED_PORT_FIRST, 'to bob'));
    gateway.deliver(fromGuest(5555, 40000, 'to alice'));
    expect(datagrams.map((datagram) => [datagram.client, text(datagram.payload)])).toEqual([
      [bob, 'to bob'],
      [alice, 'to alice'],
    ]);
    expect(gateway.clientMappings.map((mapping) => mapping.gatewayPort)).toEqual([MAPPED_PORT_FIRST, 40000]);
  });

  it('keeps separate mappings per rule, and sends each rule to its guest port', () => {
    const { gateway, frames, datagrams } = harness('user,hostfwd=udp::5555-:5555,hostfwd=udp::7000-:7');
    learnGuest(gateway);
    frames.length = 0;
    const client = { address: '127.0.0.1', port: 50000 };
    gateway.receiveFromHost(0, client, bytes('x'));
    gateway.receiveFromHost(1, client, bytes('y'));
    const ports = frames.map((frame) => {
      const parsed = parseUdpFrame(frame);
      return parsed.ok ? [parsed.value.udp.sourcePort, parsed.value.udp.destinationPort] : [];
    });
    expect(ports).toEqual([
      [50000, 5555],
      [MAPPED_PORT_FIRST, 7],
    ]);
    gateway.deliver(fromGuest(7, MAPPED_PORT_FIRST, 'from 7'));
    expect(datagrams).toMatchObject([{ ruleIndex: 1, client }]);
  });

  it('drops guest datagrams to unmapped ports or from another guest port', () => {
    const { gateway, datagrams, drops } = harness();
    learnGuest(gateway);
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 45868 }, bytes('q'));
    gateway.deliver(fromGuest(5555, 45869, 'nobody'));
    gateway.deliver(fromGuest(5556, 45868, 'wrong guest port'));
    gateway.deliver(fromGuest(5555, 45868, 'wrong guest address', '10.0.2.16'));
    expect(datagrams).toEqual([]);
    expect(drops.map((drop) => drop.reason)).toEqual(['no-mapping', 'no-mapping', 'no-mapping']);
  });

  it('expires idle mappings by tick, and traffic either way keeps them', () => {
    const { gateway, datagrams, drops } = harness(undefined, { mappingIdleTimeoutMs: 1000 });
    learnGuest(gateway);
    const client = { address: '127.0.0.1', port: 45868 };
    gateway.tick(10_000);
    gateway.receiveFromHost(0, client, bytes('q'));
    gateway.tick(10_900);
    gateway.deliver(fromGuest(5555, 45868, 'r1')); // a reply refreshes the mapping
    gateway.tick(11_899);
    gateway.deliver(fromGuest(5555, 45868, 'r2'));
    gateway.tick(12_898);
    expect(gateway.clientMappings.length).toBe(1);
    gateway.tick(12_899);
    expect(gateway.clientMappings).toEqual([]);
    gateway.deliver(fromGuest(5555, 45868, 'late'));
    expect(datagrams.map((datagram) => text(datagram.payload))).toEqual(['r1', 'r2']);
    expect(drops.map((drop) => drop.reason)).toEqual(['no-mapping']);
  });

  it('evicts the least recently used mapping when full', () => {
    const { gateway } = harness(undefined, { clientMappingsMax: 2 });
    learnGuest(gateway);
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 1001 }, bytes('1'));
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 1002 }, bytes('2'));
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 1001 }, bytes('1 again'));
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 1003 }, bytes('3'));
    expect(gateway.clientMappings.map((mapping) => mapping.client.port)).toEqual([1001, 1003]);
  });

  it('holds datagrams until ARP resolves, asks again on tick, and gives up after arpRequestsMax', () => {
    const { gateway, frames, drops } = harness(undefined, {
      pendingDatagramsMax: 2,
      arpRetryIntervalMs: 100,
      arpRequestsMax: 2,
    });
    const client = { address: '127.0.0.1', port: 45868 };
    gateway.receiveFromHost(0, client, bytes('1'));
    gateway.receiveFromHost(0, client, bytes('2'));
    gateway.receiveFromHost(0, client, bytes('3'));
    expect(frames.length).toBe(1); // one ARP request for both held datagrams
    expect(gateway.pendingDatagramCount).toBe(2);
    gateway.tick(99);
    expect(frames.length).toBe(1);
    gateway.tick(100);
    expect(frames.length).toBe(2);
    expect(frames[1]).toEqual(frames[0]);
    gateway.tick(200);
    expect(gateway.pendingDatagramCount).toBe(0);
    expect(drops.map((drop) => drop.reason)).toEqual([
      'pending-queue-full',
      'arp-unresolved',
      'arp-unresolved',
    ]);
    // A later datagram starts over with a new request.
    gateway.receiveFromHost(0, client, bytes('4'));
    expect(frames.length).toBe(3);
    gateway.deliver(qemuFrames.guestArpReply);
    const delivered = parseUdpFrame(frames[3]!);
    expect(delivered.ok && text(delivered.value.udp.payload)).toBe('4');
  });

  it('asks ARP even when it may hold nothing, so the next datagram goes out', () => {
    const { gateway, frames, drops } = harness(undefined, { pendingDatagramsMax: 0 });
    const client = { address: '127.0.0.1', port: 45868 };
    gateway.receiveFromHost(0, client, bytes('lost'));
    expect(frames).toEqual([padded(qemuFrames.arpRequestForGuest, 60)]);
    gateway.deliver(qemuFrames.guestArpReply);
    gateway.receiveFromHost(0, client, bytes('hello0'));
    expect(drops.map((drop) => drop.reason)).toEqual(['pending-queue-full']);
    const delivered = parseUdpFrame(frames[1]!);
    expect(delivered.ok && text(delivered.value.udp.payload)).toBe('hello0');
  });

  it('forwards any bytes from the host as a datagram, and drops what cannot be one', () => {
    const { gateway, frames, drops } = harness();
    learnGuest(gateway);
    frames.length = 0;
    const client = { address: '127.0.0.1', port: 45868 };
    const garbage = Uint8Array.from({ length: 300 }, (_, index) => (index * 151) & 0xff);
    gateway.receiveFromHost(0, client, garbage);
    gateway.receiveFromHost(0, client, new Uint8Array(0));
    gateway.receiveFromHost(0, client, new Uint8Array(UDP_PAYLOAD_BYTES_MAX));
    gateway.receiveFromHost(0, client, new Uint8Array(UDP_PAYLOAD_BYTES_MAX + 1));
    gateway.receiveFromHost(1, client, garbage);
    gateway.receiveFromHost(-1, client, garbage);
    gateway.receiveFromHost(0.5, client, garbage);
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 0 }, garbage);
    gateway.receiveFromHost(0, { address: '', port: 1 }, garbage);
    gateway.receiveFromHost(0, null as never, garbage);
    gateway.receiveFromHost(0, client, 'not bytes' as never);
    const payloads = frames.map((frame) => {
      const parsed = parseUdpFrame(frame);
      return parsed.ok ? parsed.value.udp.payload.length : -1;
    });
    expect(payloads).toEqual([300, 0, UDP_PAYLOAD_BYTES_MAX]);
    const first = parseUdpFrame(frames[0]!);
    expect(first.ok && first.value.udp.payload).toEqual(garbage);
    expect(drops.map((drop) => drop.reason)).toEqual([
      'oversized',
      'unknown-rule',
      'unknown-rule',
      'unknown-rule',
      'bad-client',
      'bad-client',
      'bad-client',
      'malformed',
    ]);
  });

  it('drops what it does not handle from the network, and ignores frames for others', () => {
    const { gateway, frames, datagrams, drops } = harness();
    learnGuest(gateway);
    frames.length = 0;
    const otherMac = '02:00:00:00:00:99';
    gateway.deliver(
      buildEthernetFrame({
        destination: otherMac,
        source: GUEST_MAC,
        etherType: 0x0800,
        payload: new Uint8Array(40),
      }),
    );
    gateway.deliver(new Uint8Array(5));
    gateway.deliver(
      buildEthernetFrame({
        destination: GATEWAY_MAC,
        source: GUEST_MAC,
        etherType: 0x86dd,
        payload: new Uint8Array(40),
      }),
    );
    gateway.deliver(
      buildEthernetFrame({
        destination: GATEWAY_MAC,
        source: GUEST_MAC,
        etherType: 0x0806,
        payload: new Uint8Array(10),
      }),
    );
    // ICMP echo request to the gateway.
    const icmp = buildEthernetFrame({
      destination: GATEWAY_MAC,
      source: GUEST_MAC,
      etherType: 0x0800,
      payload: new Uint8Array(28),
    });
    writeIpv4Header(
      icmp,
      14,
      { source: ip('10.0.2.15'), destination: ip('10.0.2.2'), protocol: IpProtocol.icmp, identification: 0 },
      8,
    );
    gateway.deliver(icmp);
    // UDP to the outside world: slirp would NAT it, the gateway does not route.
    const outside = buildUdpFrame({
      destinationMac: GATEWAY_MAC,
      sourceMac: GUEST_MAC,
      source: ip('10.0.2.15'),
      destination: ip('8.8.8.8'),
      sourcePort: 1,
      destinationPort: 53,
      identification: 0,
      payload: bytes('dns?'),
    });
    gateway.deliver(outside);
    const badChecksum = fromGuest(5555, 45868, 'x');
    badChecksum[42]! ^= 1;
    gateway.deliver(badChecksum);
    expect(frames).toEqual([]);
    expect(datagrams).toEqual([]);
    expect(drops.map((drop) => drop.reason)).toEqual([
      'malformed',
      'unsupported-protocol',
      'malformed',
      'unsupported-protocol',
      'not-routed',
      'bad-checksum',
    ]);
    expect(gateway.statistics.framesIgnored).toBe(1);
  });

  it('drops a fragment as a fragment', () => {
    const { gateway, drops } = harness();
    const frame = fromGuest(5555, 45868, 'x');
    const packet = frame.subarray(14);
    packet[6] = 0x20;
    packet[10] = 0;
    packet[11] = 0;
    let sum = 0;
    for (let index = 0; index < 20; index += 2) sum += (packet[index]! << 8) | packet[index + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    packet[10] = (~sum >>> 8) & 0xff;
    packet[11] = ~sum & 0xff;
    gateway.deliver(frame);
    expect(drops.map((drop) => drop.reason)).toEqual(['fragment']);
  });

  it('follows a gratuitous ARP to a new MAC for the guest address', () => {
    const { gateway, frames } = harness();
    learnGuest(gateway);
    const newMac = '52:54:00:65:43:21';
    gateway.deliver(announceFrame(newMac, ip('10.0.2.15')));
    expect(gateway.macOf('10.0.2.15')).toBe(newMac);
    frames.length = 0;
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 45868 }, bytes('q'));
    const parsed = parseEthernetFrame(frames[0]!);
    expect(parsed.ok && parsed.value.destination).toBe(newMac);
  });

  it('does not learn the gateway address, addresses outside the network, or group MACs', () => {
    const { gateway } = harness();
    for (const [mac, address] of [
      ['02:00:00:00:00:01', '10.0.2.2'],
      ['02:00:00:00:00:02', '10.0.3.15'],
      ['01:00:00:00:00:03', '10.0.2.20'],
      ['02:00:00:00:00:04', '10.0.2.255'],
    ] as const) {
      gateway.deliver(announceFrame(mac, ip(address)));
    }
    expect(
      ['10.0.2.2', '10.0.3.15', '10.0.2.20', '10.0.2.255'].map((address) => gateway.macOf(address)),
    ).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('reports sends before it is connected, and link or sink errors, without throwing', () => {
    const drops: GatewayDrop[] = [];
    const gateway = new UserGateway({
      forwards: parseUserNetdev('user,hostfwd=udp::1-:1').forwards,
      onDrop: (drop) => drops.push(drop),
    });
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 5 }, bytes('x'));
    learnGuest(gateway);
    gateway.connect({
      send: () => {
        throw new Error('link down');
      },
    });
    gateway.receiveFromHost(0, { address: '127.0.0.1', port: 5 }, bytes('x'));
    gateway.deliver(fromGuest(1, 5, 'r'));
    gateway.connectHost({
      sendToHost: () => {
        throw new Error('socket gone');
      },
    });
    gateway.deliver(fromGuest(1, 5, 'r'));
    expect(drops.map((drop) => drop.reason)).toEqual([
      'not-connected', // the ARP request
      'not-connected', // the held datagram, released when the guest's ARP request teaches its MAC
      'not-connected', // the ARP reply to the guest
      'sink-error',
      'not-connected',
      'sink-error',
    ]);
  });

  it('refuses a configuration that cannot work', () => {
    const forwards = parseUserNetdev('user,hostfwd=udp::1-:1').forwards;
    expect(() => new UserGateway({ forwards, guestAddress: '10.0.3.15' })).toThrow(ConfigError);
    expect(() => UserGateway.fromNetdevSpec('user,hostfwd=udp::1-10.0.9.1:1')).toThrow(/not a guest address/);
    expect(() => UserGateway.fromNetdevSpec('user,hostfwd=udp::1-10.0.2.2:1')).toThrow(/not a guest address/);
    expect(() => new UserGateway({ forwards, gatewayMac: 'ff:ff:ff:ff:ff:ff' })).toThrow(/unicast/);
    expect(() => new UserGateway({ forwards, clientMappingsMax: 0 })).toThrow(/clientMappingsMax/);
    expect(() => new UserGateway({ forwards, clientMappingsMax: 16385 })).toThrow(/clientMappingsMax/);
    // A quarantine shorter than the idle timeout would let a port go before its client is given up on.
    expect(() => new UserGateway({ forwards, mappingIdleTimeoutMs: 1000, portQuarantineMs: 999 })).toThrow(
      /portQuarantineMs must be an integer in 1000\.\./,
    );
  });

  it('works across a switch with a guest that answers synchronously', () => {
    const vswitch = new VirtualSwitch();
    const datagrams: HostDatagram[] = [];
    const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp::5555-:5555');
    gateway.connect(vswitch.attach(gateway));
    gateway.connectHost({ sendToHost: (datagram) => datagrams.push(datagram) });
    const guest = new EchoGuest();
    guest.link = vswitch.attach(guest);
    for (let n = 0; n < 3; n++) {
      gateway.receiveFromHost(0, { address: '198.51.100.7', port: 3000 + n }, bytes(`ping ${n}`));
    }
    expect(datagrams.map((datagram) => [datagram.client.port, text(datagram.payload)])).toEqual([
      [3000, 'echo:ping 0'],
      [3001, 'echo:ping 1'],
      [3002, 'echo:ping 2'],
    ]);
    // One ARP exchange, then unicast both ways.
    const arpRequests = guest.received.filter((frame) => {
      const parsed = parseEthernetFrame(frame);
      return parsed.ok && parsed.value.etherType === 0x0806 && parseArpPacket(parsed.value.payload).ok;
    });
    expect(arpRequests.length).toBe(1);
    expect(vswitch.portOf(GUEST_MAC)).toBe(2);
    expect(vswitch.portOf(GATEWAY_MAC)).toBe(1);
  });
});

/**
 * The guest knows a client only by the gateway port it comes from (kv.elf remembers each client's
 * last 32 answers by address and port, and the address is always 10.0.2.2), so these tests put the
 * fake kv service behind the gateway and check what each client is answered.
 */
describe('UserGateway: a port is never handed to another client while the guest may remember it', () => {
  const alice = { address: '127.0.0.1', port: 50000 };
  const bob = { address: '127.0.0.2', port: 50000 };

  function kvNetwork(options: Omit<UserGatewayOptions, 'forwards'> = {}) {
    const vswitch = new VirtualSwitch();
    const drops: GatewayDrop[] = [];
    const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp::5555-:5555', {
      ...options,
      onDrop: (drop) => drops.push(drop),
    });
    gateway.connect(vswitch.attach(gateway));
    let answer: string | undefined;
    gateway.connectHost({ sendToHost: (datagram) => (answer = text(datagram.payload)) });
    const guest = new KvGuest();
    guest.link = vswitch.attach(guest);
    /** Sends `request` from `client`; the guest answers synchronously, so this returns its answer. */
    const ask = (client: UdpEndpoint, request: string): string | undefined => {
      answer = undefined;
      gateway.receiveFromHost(0, client, bytes(request));
      return answer;
    };
    const portOf = (client: UdpEndpoint) =>
      gateway.clientMappings.find(
        (mapping) => mapping.client.address === client.address && mapping.client.port === client.port,
      )?.gatewayPort;
    return { gateway, guest, drops, ask, portOf };
  }

  it('LRU eviction: a client on another address gets its own answers, and the evicted one its own port back', () => {
    const { gateway, guest, ask, portOf } = kvNetwork({ clientMappingsMax: 1 });
    expect(ask(alice, '1 PUT secret hunter2')).toBe('1 OK');
    expect(ask(alice, '2 INCR visits')).toBe('2 OK 1');
    // Bob's first datagram evicts Alice (one mapping at most). Her port 50000 is quarantined for
    // her, so Bob is not answered from her memory ("2 OK 1").
    expect(ask(bob, '2 GET bob-key')).toBe('2 NOTFOUND');
    expect(portOf(bob)).toBe(MAPPED_PORT_FIRST);
    // Alice resends her INCR (its answer was lost): she gets her port back, and the guest its
    // remembered answer, so the INCR is applied once.
    expect(ask(alice, '2 INCR visits')).toBe('2 OK 1');
    expect(portOf(alice)).toBe(50000);
    expect(guest.store.get('visits')).toBe('1');
    expect(guest.applied.filter((request) => request.includes('INCR'))).toEqual([
      '10.0.2.2:50000 2 INCR visits',
    ]);
    // And Bob, evicted in turn, is back on his port too.
    expect(ask(bob, '3 GET secret')).toBe('3 OK hunter2');
    expect(portOf(bob)).toBe(MAPPED_PORT_FIRST);
    expect(gateway.quarantinedPortCount).toBe(1);
  });

  it('idle expiry: after 240 s of silence a client on another address still does not get the port', () => {
    const { gateway, guest, ask, portOf } = kvNetwork();
    gateway.tick(1000);
    expect(ask(alice, '1 INCR visits')).toBe('1 OK 1');
    gateway.tick(1000 + MAPPING_IDLE_TIMEOUT_MS);
    expect(gateway.clientMappings).toEqual([]);
    expect(ask(bob, '1 GET bob-key')).toBe('1 NOTFOUND');
    expect(portOf(bob)).toBe(MAPPED_PORT_FIRST);
    // Alice, back within the quarantine, resends: her port, the remembered answer, applied once.
    gateway.tick(1000 + MAPPING_IDLE_TIMEOUT_MS + 60_000);
    expect(ask(alice, '1 INCR visits')).toBe('1 OK 1');
    expect(portOf(alice)).toBe(50000);
    expect(guest.store.get('visits')).toBe('1');
  });

  it("after the quarantine a port goes back to the dynamic range, free longest first, never as anyone else's own port", () => {
    const { gateway, ask, portOf } = kvNetwork({ clientMappingsMax: 1, mappingIdleTimeoutMs: 1000 });
    const carol = { address: '127.0.0.3', port: 50000 };
    ask(alice, '1 GET k'); // holds 50000
    ask(bob, '1 GET k'); // evicts Alice at 0 ms: 50000 quarantined until 1000 ms
    expect(portOf(bob)).toBe(MAPPED_PORT_FIRST);
    gateway.tick(999);
    ask(carol, '1 GET k'); // evicts Bob at 999 ms: 49152 quarantined until 1999 ms
    expect(portOf(carol)).toBe(MAPPED_PORT_FIRST + 1);
    expect(gateway.quarantinedPortCount).toBe(2);
    gateway.tick(1000);
    expect(gateway.quarantinedPortCount).toBe(1);
    // 50000 is out of quarantine, but stays Alice's as long as another port is free: a newcomer
    // whose own port it is gets a dynamic port no one has held.
    const dave = { address: '127.0.0.4', port: 50000 };
    ask(dave, '1 GET k');
    expect(portOf(dave)).toBe(MAPPED_PORT_FIRST + 2);
    // Alice comes back long after: her port is still hers.
    gateway.tick(100_000);
    ask(alice, '2 GET k');
    expect(portOf(alice)).toBe(50000);
  });

  it('exhaustion: a new client is refused, evicting nobody, while every port is held or quarantined', () => {
    const { gateway, drops, ask, portOf } = kvNetwork({ clientMappingsMax: 1 });
    const dynamicPorts = MAPPED_PORT_LAST - MAPPED_PORT_FIRST + 1;
    const client = (n: number) => ({ address: `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`, port: 50000 });
    // Each client takes a dynamic port and evicts the one before, whose port is then quarantined.
    let answered = 0;
    for (let n = 0; n < dynamicPorts; n++) if (ask(client(n), `${n} GET k`) === `${n} NOTFOUND`) answered++;
    expect(answered).toBe(dynamicPorts);
    expect(drops).toEqual([]);

    const newcomer = client(dynamicPorts);
    const holder = client(dynamicPorts - 1);
    expect(ask(newcomer, '1 GET k')).toBeUndefined();
    expect(drops.map((drop) => drop.reason)).toEqual(['no-free-port']);
    expect(gateway.statistics.drops['no-free-port']).toBe(1);
    expect(gateway.clientMappings.map((mapping) => mapping.client)).toEqual([holder]);
    expect(gateway.quarantinedPortCount).toBe(dynamicPorts - 1);
    expect(ask(holder, '100000 GET k')).toBe('100000 NOTFOUND');
    // When the quarantine ends the newcomer is let in, on the port free longest (the first one).
    gateway.tick(MAPPING_IDLE_TIMEOUT_MS);
    expect(ask(newcomer, '1 GET k')).toBe('1 NOTFOUND');
    expect(portOf(newcomer)).toBe(50000);
  });
});
