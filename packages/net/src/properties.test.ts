import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GATEWAY_MAC, GUEST_MAC, macAddressBytes, macAddressKey, readMacAddress } from './addresses.js';
import { parseArpPacket } from './arp.js';
import { parseEthernetFrame } from './ethernet.js';
import { MAPPED_PORT_FIRST, UserGateway } from './gateway.js';
import { buildUdpFrame, parseIpv4Packet, parseUdpDatagram, parseUdpFrame } from './ipv4.js';
import { VirtualSwitch } from './switch.js';
import { EchoGuest, qemuFrames } from './test-support.js';

const randomBytes = fc.uint8Array({ maxLength: 1600 });

/** A known good frame with a few bytes changed, so checks deep inside the parsers are reached. */
const mutatedFrame = fc
  .tuple(
    fc.constantFrom(...Object.values(qemuFrames)),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.option(fc.nat({ max: 80 }), { nil: undefined }),
  )
  .map(([frame, changes, cut]) => {
    const copy = frame.slice(0, cut);
    for (const [at, value] of changes) if (copy.length > 0) copy[at % copy.length] = value;
    return copy;
  });

const anyFrame = fc.oneof(randomBytes, mutatedFrame);

function gatewayWithGuest() {
  const vswitch = new VirtualSwitch({ macTableEntriesMax: 8 });
  const gateway = UserGateway.fromNetdevSpec(
    'user,hostfwd=udp::5555-:5555,hostfwd=udp:127.0.0.1:7-10.0.2.20:7',
    {
      clientMappingsMax: 4,
      pendingDatagramsMax: 3,
    },
  );
  gateway.connect(vswitch.attach(gateway));
  const sent: unknown[] = [];
  gateway.connectHost({ sendToHost: (datagram) => sent.push(datagram) });
  const guest = new EchoGuest();
  guest.link = vswitch.attach(guest);
  const stranger = vswitch.attach({ deliver: () => {} });
  return { vswitch, gateway, guest, stranger, sent };
}

describe('properties', () => {
  it('a MAC address key is the address as a 48-bit number, and bytes round-trip through text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (bytes) => {
        const text = readMacAddress(bytes, 0);
        expect(macAddressKey(bytes, 0)).toBe(Number.parseInt(text.replaceAll(':', ''), 16));
        expect(macAddressBytes(text)).toEqual(bytes);
        expect(macAddressBytes(text.toUpperCase())).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('no parser throws on any bytes', () => {
    fc.assert(
      fc.property(anyFrame, fc.nat(), fc.nat(), (bytes, source, destination) => {
        parseEthernetFrame(bytes);
        parseArpPacket(bytes);
        parseIpv4Packet(bytes);
        parseUdpDatagram(bytes, source >>> 0, destination >>> 0);
        parseUdpFrame(bytes);
        if (bytes.length >= 14) parseArpPacket(bytes.subarray(14));
      }),
      { numRuns: 3000 },
    );
  });

  it('the switch and the gateway never throw, whatever frames any port sends', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('guest', 'stranger', 'tick'), anyFrame, fc.nat({ max: 400_000 })), {
          maxLength: 40,
        }),
        (steps) => {
          const { vswitch, gateway, guest, stranger } = gatewayWithGuest();
          for (const [from, frame, timeMs] of steps) {
            if (from === 'tick') {
              vswitch.tick(timeMs);
              gateway.tick(timeMs);
            } else {
              (from === 'guest' ? guest.link! : stranger).send(frame);
            }
            gateway.deliver(frame);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('the gateway never throws, whatever the host side sends, and forwards every fitting payload intact', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.oneof(fc.integer({ min: -2, max: 3 }), fc.double()),
            fc.record({
              address: fc.oneof(fc.ipV4(), fc.string()),
              port: fc.oneof(fc.integer({ min: -1, max: 70000 }), fc.double()),
            }),
            fc.uint8Array({ maxLength: 1500 }),
          ),
          { maxLength: 30 },
        ),
        (datagrams) => {
          const { gateway, guest } = gatewayWithGuest();
          const expected: Uint8Array[] = [];
          // The model of the gateway's ARP wait: datagrams for rule 1's guest (10.0.2.20, which
          // never answers) wait for ARP in the shared pending queue (3 here) for good; the first
          // datagram for the echo guest waits there too until its ARP answer, which comes at once:
          // it is dropped when the queue is full (its ARP request still goes, so the next ones pass).
          let waitingForRuleOne = 0;
          let echoGuestResolved = false;
          for (const [ruleIndex, client, payload] of datagrams) {
            gateway.receiveFromHost(ruleIndex, client, payload);
            const valid =
              client.address.length > 0 &&
              client.address.length <= 64 &&
              Number.isInteger(client.port) &&
              client.port >= 1 &&
              client.port <= 65535 &&
              payload.length <= 1472;
            if (!valid) continue;
            if (ruleIndex === 1) waitingForRuleOne = Math.min(3, waitingForRuleOne + 1);
            if (ruleIndex !== 0) continue;
            if (echoGuestResolved || waitingForRuleOne < 3) expected.push(payload);
            echoGuestResolved = true;
          }
          // Rule 0 reaches the echo guest (rule 1's guest 10.0.2.20 never answers ARP).
          const received = guest.received.flatMap((frame) => {
            const parsed = parseUdpFrame(frame);
            return parsed.ok ? [parsed.value.udp.payload] : [];
          });
          expect(received).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a port reaches another client only after its quarantine, and only from the dynamic range', () => {
    const portQuarantineMs = 5000;
    const step = fc.oneof(
      fc.record({
        address: fc.constantFrom('127.0.0.1', '127.0.0.2', '127.0.0.3'),
        port: fc.constantFrom(40000, 50000, 50001),
      }),
      fc.integer({ min: 0, max: 8000 }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp::5555-:5555', {
          clientMappingsMax: 2,
          mappingIdleTimeoutMs: 1000,
          portQuarantineMs,
        });
        gateway.connect({ send: () => {} });
        let nowMs = 0;
        /** Per gateway port, the client that last sent through it, and when. */
        const lastUse = new Map<number, { client: string; atMs: number }>();
        for (const next of steps) {
          if (typeof next === 'number') {
            nowMs += next;
            gateway.tick(nowMs);
            continue;
          }
          gateway.receiveFromHost(0, next, new Uint8Array(1));
          const client = `${next.address}:${next.port}`;
          const port = gateway.clientMappings.find(
            (mapping) => `${mapping.client.address}:${mapping.client.port}` === client,
          )?.gatewayPort;
          if (port === undefined) throw new Error(`${client} has no port`);
          const previous = lastUse.get(port);
          if (previous !== undefined && previous.client !== client) {
            // The previous client's mapping ended no earlier than its last datagram.
            expect(nowMs - previous.atMs).toBeGreaterThanOrEqual(portQuarantineMs);
            expect(port).toBeGreaterThanOrEqual(MAPPED_PORT_FIRST);
          }
          lastUse.set(port, { client, atMs: nowMs });
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a built UDP frame parses back to what was built', () => {
    fc.assert(
      fc.property(
        fc.record({
          source: fc.nat({ max: 0xffff_ffff }),
          destination: fc.nat({ max: 0xffff_ffff }),
          sourcePort: fc.nat({ max: 65535 }),
          destinationPort: fc.nat({ max: 65535 }),
          identification: fc.nat({ max: 65535 }),
          payload: fc.uint8Array({ maxLength: 1472 }),
        }),
        (fields) => {
          const frame = buildUdpFrame({ ...fields, destinationMac: GUEST_MAC, sourceMac: GATEWAY_MAC });
          const parsed = parseUdpFrame(frame);
          expect(parsed.ok).toBe(true);
          if (!parsed.ok) return;
          expect(parsed.value.ip).toMatchObject({
            source: fields.source,
            destination: fields.destination,
            identification: fields.identification,
          });
          expect(parsed.value.udp).toMatchObject({
            sourcePort: fields.sourcePort,
            destinationPort: fields.destinationPort,
          });
          expect(parsed.value.udp.payload).toEqual(fields.payload);
          expect(parsed.value.udp.checksum).not.toBe(0);
          expect(readMacAddress(frame, 0)).toBe(GUEST_MAC);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("flipping any one bit of a UDP frame's IPv4 header or UDP part is caught", () => {
    const frame = qemuFrames.udpToGuest;
    fc.assert(
      fc.property(fc.integer({ min: 14 * 8, max: frame.length * 8 - 1 }), (bit) => {
        const copy = frame.slice();
        copy[bit >>> 3]! ^= 0x80 >>> (bit & 7);
        const parsed = parseUdpFrame(copy);
        // The Internet checksum catches every single-bit error in what it covers.
        expect(parsed.ok).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
