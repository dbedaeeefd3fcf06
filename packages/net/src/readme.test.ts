import { createSocket } from 'node:dgram';
import {
  ArpOperation,
  buildArpFrame,
  buildUdpFrame,
  EtherType,
  type FrameSink,
  GUEST_IPV4,
  GUEST_MAC,
  parseArpPacket,
  parseEthernetFrame,
  parseIpv4Address,
  parseUdpFrame,
  type SwitchPort,
  UserGateway,
  VirtualSwitch,
} from '@ftvm/net';
import { UdpGatewayHost } from '@ftvm/net/node';
import { describe, expect, it } from 'vitest';

// The README's example, word for word but for the host port (0: the host picks a free one),
// through the package's own export map (`.` and `./node`).
const guestAddress = parseIpv4Address(GUEST_IPV4)!;

/** Stands in for a VM's NIC: answers ARP for 10.0.2.15 and echoes UDP with "echo:" in front. */
class EchoGuest implements SwitchPort {
  link: FrameSink | undefined;

  deliver(frame: Uint8Array): void {
    const ethernet = parseEthernetFrame(frame);
    if (!ethernet.ok) return;
    if (ethernet.value.etherType === EtherType.arp) {
      const arp = parseArpPacket(ethernet.value.payload);
      if (
        arp.ok &&
        arp.value.operation === ArpOperation.request &&
        arp.value.targetAddress === guestAddress
      ) {
        this.link?.send(
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
    const udp = parseUdpFrame(frame); // a malformed frame is { ok: false, reason, detail }
    if (!udp.ok) return;
    const reply = new Uint8Array([...new TextEncoder().encode('echo:'), ...udp.value.udp.payload]);
    this.link?.send(
      buildUdpFrame({
        destinationMac: udp.value.sourceMac,
        sourceMac: GUEST_MAC,
        source: guestAddress,
        destination: udp.value.ip.source,
        sourcePort: udp.value.udp.destinationPort,
        destinationPort: udp.value.udp.sourcePort,
        identification: 0,
        payload: reply,
      }),
    );
  }
}

describe('README example', () => {
  it('echoes a datagram sent to the forwarded port', async () => {
    const vswitch = new VirtualSwitch();
    const gateway = UserGateway.fromNetdevSpec('user,hostfwd=udp:127.0.0.1:0-:5555');
    gateway.connect(vswitch.attach(gateway));
    const guest = new EchoGuest();
    guest.link = vswitch.attach(guest);

    const host = await UdpGatewayHost.open(gateway);
    try {
      const client = createSocket('udp4');
      const reply = new Promise<string>((resolve) =>
        client.once('message', (message) => resolve(String(message))),
      );
      client.send('hi', host.boundForwards[0]!.port, '127.0.0.1');
      expect(await reply).toBe('echo:hi');
      await new Promise<void>((resolve) => client.close(() => resolve()));
    } finally {
      await host.close();
    }
  });
});
