import { ConfigError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { GUEST_MAC, macAddressBytes, parseIpv4Address } from './addresses.js';
import { announceFrame } from './arp.js';
import { buildEthernetFrame } from './ethernet.js';
import { type SwitchDrop, type SwitchLink, type SwitchPort, VirtualSwitch } from './switch.js';

/** A port that records what it is given. */
class RecordingPort implements SwitchPort {
  readonly frames: Uint8Array[] = [];
  deliver(frame: Uint8Array): void {
    this.frames.push(frame);
  }
  /** Destination and source of each frame, as `dst<src`. */
  get seen(): string[] {
    return this.frames.map((frame) => `${frame[5]}<${frame[11]}`);
  }
}

/** A MAC ending in `n` (locally administered, unicast). */
const mac = (n: number) => `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
const frame = (destination: string, source: string, tag = 0) =>
  buildEthernetFrame({ destination, source, etherType: 0x88b5, payload: Uint8Array.of(tag) });
const broadcast = 'ff:ff:ff:ff:ff:ff';

function network(count: number, options = {}) {
  const drops: SwitchDrop[] = [];
  const vswitch = new VirtualSwitch({ ...options, onDrop: (drop) => drops.push(drop) });
  const ports = Array.from({ length: count }, () => new RecordingPort());
  const links = ports.map((port) => vswitch.attach(port));
  return { vswitch, ports, links, drops };
}

describe('VirtualSwitch', () => {
  it('floods an unknown destination to every port but the ingress one, in attach order', () => {
    const { ports, links, vswitch } = network(3);
    links[0]!.send(frame(mac(2), mac(1)));
    expect(ports.map((port) => port.seen)).toEqual([[], ['2<1'], ['2<1']]);
    expect(vswitch.statistics.framesFlooded).toBe(1);
  });

  it('learns source addresses and then forwards to one port only', () => {
    const { ports, links, vswitch } = network(3);
    links[0]!.send(frame(mac(2), mac(1))); // learns 1 on port 1 (flood)
    links[1]!.send(frame(mac(1), mac(2))); // learns 2 on port 2, 1 is known: port 1 only
    links[2]!.send(frame(mac(2), mac(3))); // 2 is known: port 2 only
    expect(ports.map((port) => port.seen)).toEqual([['1<2'], ['2<1', '2<3'], ['2<1']]);
    expect(vswitch.portOf(mac(1))).toBe(links[0]!.portNumber);
    expect(vswitch.portOf(mac(3))).toBe(links[2]!.portNumber);
    expect(vswitch.statistics).toMatchObject({ framesReceived: 3, framesForwarded: 2, framesFlooded: 1 });
  });

  it('floods broadcast and multicast even when learned, never back out the ingress port', () => {
    const { ports, links } = network(3);
    links[1]!.send(frame(broadcast, mac(2)));
    links[0]!.send(frame('01:00:5e:00:00:01', mac(1)));
    expect(ports.map((port) => port.seen)).toEqual([['255<2'], ['1<1'], ['255<2', '1<1']]);
  });

  it('drops a frame whose destination is behind its own ingress port', () => {
    const { ports, links, drops } = network(2);
    links[0]!.send(frame(broadcast, mac(1)));
    links[0]!.send(frame(broadcast, mac(5)));
    links[0]!.send(frame(mac(5), mac(1)));
    expect(ports[1]!.frames.length).toBe(2);
    expect(drops.map((drop) => drop.reason)).toEqual(['same-port']);
  });

  it('relearns a MAC that moves to another port: a new primary announcing the guest MAC', () => {
    const moves: unknown[] = [];
    const vswitch = new VirtualSwitch({ onMacMoved: (move) => moves.push(move) });
    const gateway = new RecordingPort();
    const oldPrimary = new RecordingPort();
    const newPrimary = new RecordingPort();
    const gatewayLink = vswitch.attach(gateway);
    const oldLink = vswitch.attach(oldPrimary);
    const newLink = vswitch.attach(newPrimary);
    gatewayLink.send(frame(broadcast, mac(9)));
    oldLink.send(frame(mac(9), GUEST_MAC));
    gatewayLink.send(frame(GUEST_MAC, mac(9), 1));
    expect(oldPrimary.frames.length).toBe(2);
    expect(newPrimary.frames.length).toBe(1);

    newLink.send(announceFrame(GUEST_MAC, parseIpv4Address('10.0.2.15')!));
    expect(vswitch.portOf(GUEST_MAC)).toBe(newLink.portNumber);
    expect(moves).toEqual([
      { mac: GUEST_MAC, fromPortNumber: oldLink.portNumber, toPortNumber: newLink.portNumber },
    ]);
    gatewayLink.send(frame(GUEST_MAC, mac(9), 2));
    expect(newPrimary.frames.length).toBe(2);
    expect(newPrimary.frames.at(-1)![14]).toBe(2);
    expect(oldPrimary.frames.length).toBe(3); // then the announcement (broadcast), and nothing after
    expect(vswitch.statistics.macMoves).toBe(1);
  });

  it('holds at most macTableEntriesMax addresses and evicts the one learned longest ago', () => {
    const { vswitch, links } = network(2, { macTableEntriesMax: 3 });
    for (const n of [1, 2, 3]) links[0]!.send(frame(broadcast, mac(n)));
    links[0]!.send(frame(broadcast, mac(1))); // refreshes 1: now 2 is the oldest
    links[1]!.send(frame(broadcast, mac(4)));
    expect(vswitch.macTableSize).toBe(3);
    expect(vswitch.portOf(mac(2))).toBeUndefined();
    expect([1, 3, 4].map((n) => vswitch.portOf(mac(n)))).toEqual([1, 1, 2]);
    expect(vswitch.statistics.macEvictions).toBe(1);
  });

  it('ages addresses out only when ticked', () => {
    const { vswitch, links } = network(2, { macAgingMs: 1000 });
    vswitch.tick(0);
    links[0]!.send(frame(broadcast, mac(1)));
    vswitch.tick(500);
    links[0]!.send(frame(broadcast, mac(2)));
    vswitch.tick(999);
    expect(vswitch.macTableSize).toBe(2);
    vswitch.tick(1000);
    expect([vswitch.portOf(mac(1)), vswitch.portOf(mac(2))]).toEqual([undefined, 1]);
    vswitch.tick(100); // time does not go back
    vswitch.tick(1499);
    expect(vswitch.macTableSize).toBe(1);
    vswitch.tick(1500);
    expect(vswitch.macTableSize).toBe(0);
    expect(vswitch.statistics.macExpirations).toBe(2);
  });

  it('drops runts, oversized frames and group source addresses, and reports them', () => {
    const { ports, links, drops } = network(2);
    links[0]!.send(new Uint8Array(13));
    links[0]!.send(new Uint8Array(1519));
    links[0]!.send(frame(mac(2), 'ff:ff:ff:ff:ff:ff'));
    expect(ports[1]!.frames.length).toBe(0);
    expect(drops.map((drop) => drop.reason)).toEqual(['truncated', 'oversized', 'group-source']);
  });

  it('forgets the addresses of a detached port and drops what it still sends', () => {
    const { vswitch, ports, links, drops } = network(3);
    links[2]!.send(frame(broadcast, mac(3)));
    links[2]!.detach();
    expect(vswitch.portOf(mac(3))).toBeUndefined();
    links[0]!.send(frame(mac(3), mac(1)));
    expect(ports[2]!.frames.length).toBe(0);
    expect(ports[1]!.seen).toEqual(['255<3', '3<1']);
    links[2]!.send(frame(broadcast, mac(3)));
    expect(drops.map((drop) => drop.reason)).toEqual(['detached-port']);
  });

  it('queues frames a port sends from inside deliver and forwards them in order, without recursion', () => {
    const vswitch = new VirtualSwitch({ queuedFramesMax: 4 });
    const order: string[] = [];
    let pongLink: SwitchLink | undefined;
    let pings = 0;
    // Two ports that answer every frame at once: without the queue this would recurse forever.
    const ping: SwitchPort = {
      deliver: (received) => {
        order.push(`ping got ${received[14]}`);
        if (pings++ < 1000) pingLink.send(frame(mac(2), mac(1), (received[14]! + 1) & 0xff));
      },
    };
    const pong: SwitchPort = {
      deliver: (received) => {
        order.push(`pong got ${received[14]}`);
        pongLink!.send(frame(mac(1), mac(2), (received[14]! + 1) & 0xff));
      },
    };
    const pingLink = vswitch.attach(ping);
    pongLink = vswitch.attach(pong);
    pingLink.send(frame(mac(2), mac(1), 0));
    expect(order.slice(0, 4)).toEqual(['pong got 0', 'ping got 1', 'pong got 2', 'ping got 3']);
    expect(order.length).toBe(2002);
  });

  it('drops frames beyond the queue limit', () => {
    const { vswitch, ports, links } = network(2, { queuedFramesMax: 2 });
    const burst = vswitch.attach({
      deliver: () => {
        for (let n = 0; n < 5; n++) burstLink.send(frame(mac(1), mac(7), n));
      },
    });
    const burstLink = burst;
    links[0]!.send(frame(broadcast, mac(1)));
    // Only the first delivery to the burst port sends; its 5 frames meet a queue of 2.
    expect(ports[0]!.frames.map((received) => received[14])).toEqual([0, 1]);
    expect(vswitch.statistics.drops['queue-full']).toBe(3);
  });

  it('keeps delivering to other ports when one throws', () => {
    const { vswitch, ports, links, drops } = network(1);
    vswitch.attach({
      deliver: () => {
        throw new Error('port bug');
      },
    });
    const last = new RecordingPort();
    vswitch.attach(last);
    links[0]!.send(frame(broadcast, mac(1)));
    expect(last.frames.length).toBe(1);
    expect(ports[0]!.frames.length).toBe(0);
    expect(drops).toMatchObject([{ reason: 'port-error', portNumber: 2 }]);
  });

  it('refuses bad limits with a ConfigError', () => {
    expect(() => new VirtualSwitch({ macTableEntriesMax: 0 })).toThrow(ConfigError);
    expect(() => new VirtualSwitch({ frameBytesMax: 1.5 })).toThrow(/frameBytesMax/);
  });

  it('answers portOf for any spelling of an address and for non-addresses', () => {
    const { vswitch, links } = network(1);
    links[0]!.send(frame(broadcast, '52:54:00:ab:cd:ef'));
    expect(vswitch.portOf('52:54:00:AB:CD:EF')).toBe(1);
    expect(vswitch.portOf('nonsense')).toBeUndefined();
    expect(macAddressBytes('52:54:00:ab:cd:ef')[5]).toBe(0xef);
  });
});
