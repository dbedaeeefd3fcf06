import { describe, expect, it } from 'vitest';
import {
  formatIpv4Address,
  GATEWAY_MAC,
  GUEST_MAC,
  isGroupMacAddress,
  macAddressBytes,
  parseIpv4Address,
  parseMacAddress,
  readMacAddress,
} from './addresses.js';
import {
  ArpOperation,
  announceFrame,
  buildArpFrame,
  parseArpPacket,
  reverseArpAnnounceFrame,
} from './arp.js';
import { internetChecksum } from './checksum.js';
import { buildEthernetFrame, ETHERNET_FRAME_BYTES_MIN, EtherType, parseEthernetFrame } from './ethernet.js';
import {
  buildUdpFrame,
  IpProtocol,
  parseIpv4Packet,
  parseUdpDatagram,
  parseUdpFrame,
  UDP_PAYLOAD_BYTES_MAX,
} from './ipv4.js';
import { hex, padded, qemuFrames } from './test-support.js';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const ip = (dotted: string) => parseIpv4Address(dotted)!;

describe('addresses', () => {
  it('parses and formats MAC addresses in canonical lowercase form', () => {
    expect(parseMacAddress('52:54:00:AB:cd:EF')).toBe('52:54:00:ab:cd:ef');
    expect(parseMacAddress('52:54:00:ab:cd')).toBeUndefined();
    expect(parseMacAddress('52-54-00-ab-cd-ef')).toBeUndefined();
    expect(readMacAddress(macAddressBytes(GUEST_MAC), 0)).toBe(GUEST_MAC);
    expect(isGroupMacAddress('ff:ff:ff:ff:ff:ff')).toBe(true);
    expect(isGroupMacAddress('01:00:5e:00:00:01')).toBe(true);
    expect(isGroupMacAddress(GUEST_MAC)).toBe(false);
  });

  it('parses and formats dotted quads', () => {
    expect(parseIpv4Address('10.0.2.15')).toBe(0x0a00020f);
    expect(parseIpv4Address('255.255.255.255')).toBe(0xffffffff);
    expect(formatIpv4Address(0xffffffff)).toBe('255.255.255.255');
    expect(formatIpv4Address(0x0a000202)).toBe('10.0.2.2');
    for (const bad of ['10.0.2', '10.0.2.256', '1.2.3.4.5', ' 1.2.3.4', '', 'a.b.c.d', '1234.1.1.1']) {
      expect(parseIpv4Address(bad)).toBeUndefined();
    }
  });
});

describe('Internet checksum', () => {
  it('matches a known IPv4 header (RFC 1071 style example: checksum 0xb861)', () => {
    const header = hex('450000730000400040110000c0a80001c0a800c7');
    expect(internetChecksum(header)).toBe(0xb861);
    header[10] = 0xb8;
    header[11] = 0x61;
    expect(internetChecksum(header)).toBe(0);
  });

  it('pads an odd last byte with zero', () => {
    expect(internetChecksum(hex('0102 03'))).toBe(~(0x0102 + 0x0300) & 0xffff);
  });
});

describe('Ethernet', () => {
  it('parses the header and keeps the padding in the payload', () => {
    const frame = parseEthernetFrame(padded(qemuFrames.arpRequestForGuest, 60));
    expect(frame).toMatchObject({
      ok: true,
      value: { destination: 'ff:ff:ff:ff:ff:ff', source: GATEWAY_MAC, etherType: EtherType.arp },
    });
    expect(frame.ok && frame.value.payload.length).toBe(46);
  });

  it('refuses a frame shorter than its header', () => {
    expect(parseEthernetFrame(new Uint8Array(13))).toMatchObject({ ok: false, reason: 'truncated' });
  });

  it('pads built frames to 60 bytes', () => {
    const frame = buildEthernetFrame({
      destination: GUEST_MAC,
      source: GATEWAY_MAC,
      etherType: 0x1234,
      payload: hex('aabb'),
    });
    expect(frame.length).toBe(ETHERNET_FRAME_BYTES_MIN);
    expect(frame.subarray(0, 16)).toEqual(hex('52540012345652550a0002021234aabb'));
  });
});

describe('ARP', () => {
  it('parses the request QEMU sends for the guest', () => {
    const frame = parseEthernetFrame(qemuFrames.arpRequestForGuest);
    const arp = frame.ok ? parseArpPacket(frame.value.payload) : undefined;
    expect(arp).toEqual({
      ok: true,
      value: {
        operation: ArpOperation.request,
        senderMac: GATEWAY_MAC,
        senderAddress: ip('10.0.2.2'),
        targetMac: '00:00:00:00:00:00',
        targetAddress: ip('10.0.2.15'),
      },
    });
  });

  it('builds byte for byte the reply QEMU gives (padded to 64 as slirp does)', () => {
    const built = buildArpFrame({
      destination: GUEST_MAC,
      source: GATEWAY_MAC,
      operation: ArpOperation.reply,
      senderMac: GATEWAY_MAC,
      senderAddress: ip('10.0.2.2'),
      targetMac: GUEST_MAC,
      targetAddress: ip('10.0.2.15'),
      frameBytesMin: 64,
    });
    expect(built).toEqual(qemuFrames.arpReplyToGuest);
  });

  it('refuses ARP for other hardware or protocol types, and short packets', () => {
    const packet = padded(qemuFrames.arpRequestForGuest, 60).slice(14);
    packet[1] = 6; // IEEE 802 hardware
    expect(parseArpPacket(packet)).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(parseArpPacket(packet.subarray(0, 27))).toMatchObject({ ok: false, reason: 'truncated' });
  });

  it('announces with a gratuitous ARP request and with QEMU-style RARP', () => {
    const gratuitous = parseEthernetFrame(announceFrame(GUEST_MAC, ip('10.0.2.15')));
    expect(gratuitous.ok && gratuitous.value.destination).toBe('ff:ff:ff:ff:ff:ff');
    expect(gratuitous.ok && gratuitous.value.source).toBe(GUEST_MAC);
    const arp = gratuitous.ok ? parseArpPacket(gratuitous.value.payload) : undefined;
    expect(arp?.ok && arp.value).toEqual({
      operation: ArpOperation.request,
      senderMac: GUEST_MAC,
      senderAddress: ip('10.0.2.15'),
      targetMac: '00:00:00:00:00:00',
      targetAddress: ip('10.0.2.15'),
    });
    const reverse = reverseArpAnnounceFrame(GUEST_MAC);
    expect(reverse.length).toBe(60);
    expect(reverse.subarray(0, 42)).toEqual(
      hex('ffffffffffff525400123456 8035 0001 0800 06 04 0003 525400123456 00000000 525400123456 00000000'),
    );
  });
});

describe('IPv4 and UDP', () => {
  it('builds byte for byte the UDP frame QEMU sends to the guest (checksums included)', () => {
    const built = buildUdpFrame({
      destinationMac: GUEST_MAC,
      sourceMac: GATEWAY_MAC,
      source: ip('10.0.2.2'),
      destination: ip('10.0.2.15'),
      sourcePort: 45868,
      destinationPort: 5555,
      identification: 0,
      payload: new TextEncoder().encode('hello0'),
    });
    expect(built).toEqual(padded(qemuFrames.udpToGuest, 60));
  });

  it('parses and verifies a frame QEMU sent, padding cut off', () => {
    const result = parseUdpFrame(padded(qemuFrames.udpToGuest, 60));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.ip).toMatchObject({
      source: ip('10.0.2.2'),
      destination: ip('10.0.2.15'),
      protocol: IpProtocol.udp,
      timeToLive: 64,
    });
    expect(result.value.udp).toMatchObject({ sourcePort: 45868, destinationPort: 5555, checksum: 0xdadf });
    expect(text(result.value.udp.payload)).toBe('hello0');
  });

  it('accepts the guest-side frame QEMU accepted (DF set, checksums from another implementation)', () => {
    const result = parseUdpFrame(qemuFrames.guestEcho);
    expect(result.ok && text(result.value.udp.payload)).toBe('echo:hello0');
  });

  it('refuses a wrong IPv4 header checksum and a wrong UDP checksum', () => {
    const badIp = qemuFrames.udpToGuest.slice();
    badIp[24]! ^= 1;
    expect(parseUdpFrame(badIp)).toMatchObject({ ok: false, reason: 'bad-checksum' });
    const badUdp = qemuFrames.udpToGuest.slice();
    badUdp[44]! ^= 0x20; // a payload byte
    expect(parseUdpFrame(badUdp)).toMatchObject({
      ok: false,
      reason: 'bad-checksum',
      detail: expect.stringMatching(/UDP/),
    });
  });

  it('skips the UDP checksum when it is zero', () => {
    const frame = qemuFrames.udpToGuest.slice();
    frame[43]! ^= 0x04; // 'e' -> 'a'
    frame[40] = 0;
    frame[41] = 0;
    const result = parseUdpFrame(frame);
    expect(result.ok && text(result.value.udp.payload)).toBe('hallo0');
  });

  it('sends a computed checksum of 0 as 0xffff', () => {
    // Choose the payload so that the ones' complement sum is 0xffff: checksum ~0xffff = 0.
    const fields = {
      destinationMac: GUEST_MAC,
      sourceMac: GATEWAY_MAC,
      source: ip('10.0.2.2'),
      destination: ip('10.0.2.15'),
      sourcePort: 1,
      destinationPort: 2,
      identification: 0,
    };
    const probe = buildUdpFrame({ ...fields, payload: new Uint8Array(2) });
    const checksum = (probe[40]! << 8) | probe[41]!;
    // With a zero payload word the checksum is C; a payload word of C makes the sum 0xffff.
    const frame = buildUdpFrame({ ...fields, payload: Uint8Array.of(checksum >>> 8, checksum & 0xff) });
    expect((frame[40]! << 8) | frame[41]!).toBe(0xffff);
    expect(parseUdpFrame(frame).ok).toBe(true);
  });

  it('refuses fragments, bad versions, bad lengths and truncation', () => {
    const packet = qemuFrames.udpToGuest.slice(14);
    const withField = (offset: number, value: number) => {
      const copy = packet.slice();
      copy[offset] = value;
      copy[10] = 0;
      copy[11] = 0;
      const checksum = internetChecksum(copy, 0, 20);
      copy[10] = checksum >>> 8;
      copy[11] = checksum & 0xff;
      return copy;
    };
    expect(parseIpv4Packet(withField(6, 0x20))).toMatchObject({ ok: false, reason: 'fragment' }); // MF
    expect(parseIpv4Packet(withField(7, 0x01))).toMatchObject({ ok: false, reason: 'fragment' }); // offset 8
    expect(parseIpv4Packet(withField(6, 0x40)).ok).toBe(true); // DF alone is fine
    expect(parseIpv4Packet(withField(0, 0x65))).toMatchObject({ ok: false, reason: 'bad-header' });
    expect(parseIpv4Packet(withField(0, 0x44))).toMatchObject({ ok: false, reason: 'bad-header' });
    expect(parseIpv4Packet(withField(3, 0x10))).toMatchObject({ ok: false, reason: 'bad-header' }); // total 16
    expect(parseIpv4Packet(withField(3, 0x40))).toMatchObject({ ok: false, reason: 'truncated' }); // total 64
    expect(parseIpv4Packet(packet.subarray(0, 19))).toMatchObject({ ok: false, reason: 'truncated' });
    const udp = packet.slice(20);
    expect(parseUdpDatagram(udp.subarray(0, 7), ip('10.0.2.2'), ip('10.0.2.15'))).toMatchObject({
      ok: false,
      reason: 'truncated',
    });
    udp[5] = 4;
    expect(parseUdpDatagram(udp, ip('10.0.2.2'), ip('10.0.2.15'))).toMatchObject({
      ok: false,
      reason: 'bad-header',
    });
    udp[5] = 0xff;
    expect(parseUdpDatagram(udp, ip('10.0.2.2'), ip('10.0.2.15'))).toMatchObject({
      ok: false,
      reason: 'truncated',
    });
  });

  it('builds the largest unfragmented datagram and refuses a larger one', () => {
    const fields = {
      destinationMac: GUEST_MAC,
      sourceMac: GATEWAY_MAC,
      source: ip('10.0.2.2'),
      destination: ip('10.0.2.15'),
      sourcePort: 1,
      destinationPort: 2,
      identification: 7,
    };
    const frame = buildUdpFrame({ ...fields, payload: new Uint8Array(UDP_PAYLOAD_BYTES_MAX).fill(0xa5) });
    expect(frame.length).toBe(1514);
    expect(parseUdpFrame(frame).ok).toBe(true);
    expect(() => buildUdpFrame({ ...fields, payload: new Uint8Array(UDP_PAYLOAD_BYTES_MAX + 1) })).toThrow(
      RangeError,
    );
  });
});
