// Throughput of the guest network model: switch forwarding, and host datagram -> guest -> host
// round trips through the gateway, a switch and an echoing fake guest (all in one thread).
// Run: npm run bench -w @ftvm/net   (uses the built package: npm run build first)
import { writeFileSync } from 'node:fs';
import {
  ArpOperation,
  buildArpFrame,
  buildEthernetFrame,
  buildUdpFrame,
  EtherType,
  GUEST_MAC,
  parseArpPacket,
  parseEthernetFrame,
  parseIpv4Address,
  parseUdpFrame,
  UserGateway,
  VirtualSwitch,
} from '../dist/index.js';

const results = {};

function measure(name, count, run) {
  run(Math.min(count, 10_000)); // warm up
  const start = process.hrtime.bigint();
  run(count);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  results[name] = { count, perSecond: Math.round(count / seconds) };
  console.log(
    `${name}: ${count} in ${seconds.toFixed(3)} s = ${Math.round(count / seconds).toLocaleString('en-US')}/s`,
  );
}

// 1. Unicast forwarding between two learned ports, 1514-byte frames.
{
  const vswitch = new VirtualSwitch();
  let delivered = 0;
  const a = vswitch.attach({ deliver: () => delivered++ });
  const b = vswitch.attach({ deliver: () => delivered++ });
  const toB = buildEthernetFrame({
    destination: '02:00:00:00:00:02',
    source: '02:00:00:00:00:01',
    etherType: 0x88b5,
    payload: new Uint8Array(1500),
  });
  b.send(
    buildEthernetFrame({
      destination: 'ff:ff:ff:ff:ff:ff',
      source: '02:00:00:00:00:02',
      etherType: 0x88b5,
      payload: new Uint8Array(1),
    }),
  );
  measure('switch unicast forward (1514 B)', 2_000_000, (count) => {
    for (let index = 0; index < count; index++) a.send(toB);
  });
}

// 2. Round trips: host datagram -> gateway -> switch -> echo guest -> switch -> gateway -> host.
{
  const guestAddress = parseIpv4Address('10.0.2.15');
  const vswitch = new VirtualSwitch();
  const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp::5555-:5555');
  gateway.connect(vswitch.attach(gateway));
  let replies = 0;
  gateway.connectHost({ sendToHost: () => replies++ });
  const guest = {
    link: undefined,
    deliver(frame) {
      const ethernet = parseEthernetFrame(frame);
      if (!ethernet.ok) return;
      if (ethernet.value.etherType === EtherType.arp) {
        const arp = parseArpPacket(ethernet.value.payload);
        if (
          arp.ok &&
          arp.value.operation === ArpOperation.request &&
          arp.value.targetAddress === guestAddress
        ) {
          this.link.send(
            buildArpFrame({
              destination: arp.value.senderMac,
              source: GUEST_MAC,
              operation: ArpOperation.reply,
              senderMac: GUEST_MAC,
              senderAddress: guestAddress,
              targetMac: arp.value.senderMac,
              targetAddress: arp.value.senderAddress,
            }),
          );
        }
        return;
      }
      const udp = parseUdpFrame(frame);
      if (!udp.ok) return;
      this.link.send(
        buildUdpFrame({
          destinationMac: udp.value.sourceMac,
          sourceMac: GUEST_MAC,
          source: guestAddress,
          destination: udp.value.ip.source,
          sourcePort: udp.value.udp.destinationPort,
          destinationPort: udp.value.udp.sourcePort,
          identification: 0,
          payload: udp.value.udp.payload,
        }),
      );
    },
  };
  guest.link = vswitch.attach(guest);
  for (const size of [64, 1024]) {
    const payload = new Uint8Array(size).fill(0x41);
    const clients = Array.from({ length: 100 }, (_, index) => ({
      address: '192.0.2.1',
      port: 20000 + index,
    }));
    measure(`gateway round trip (${size} B payload, 100 clients)`, 300_000, (count) => {
      for (let index = 0; index < count; index++) gateway.receiveFromHost(0, clients[index % 100], payload);
    });
  }
  if (replies === 0) throw new Error('no replies: the bench is broken');
}

writeFileSync(
  new URL('./results.json', import.meta.url),
  `${JSON.stringify({ node: process.version, results }, null, 2)}\n`,
);
