/* Ethernet / ARP / IPv4 / UDP for one virtio-net device (RFC 826, RFC 791, RFC 768). */
#include <string.h>

#include "ftvm.h"
#include "ftvm/net.h"

#define ETHERNET_HEADER_BYTES 14u
#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_ARP 0x0806u
#define ARP_BYTES 28u
#define ARP_REQUEST 1u
#define ARP_REPLY 2u
#define IPV4_HEADER_BYTES 20u
#define IP_PROTOCOL_UDP 17u
#define UDP_HEADER_BYTES 8u
#define ARP_CACHE_ENTRIES 8u

struct arp_entry {
  uint32_t address;
  uint8_t mac[6];
  bool valid;
};

struct udp_listener {
  uint16_t port;
  ftvm_udp_receiver receiver;
  void *context;
};

static struct ftvm_net_device device;
static bool opened;
static struct arp_entry arp_cache[ARP_CACHE_ENTRIES];
static uint32_t arp_next_victim;
static struct udp_listener listeners[FTVM_UDP_PORTS_MAX];
static struct ftvm_net_statistics statistics;
static uint16_t next_ip_identification = 1;
static uint8_t transmit_frame[FTVM_NET_FRAME_BYTES_MAX];
static const uint8_t broadcast_mac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static uint16_t read_be16(const uint8_t *bytes) {
  return (uint16_t)((bytes[0] << 8) | bytes[1]);
}

static uint32_t read_be32(const uint8_t *bytes) {
  return ((uint32_t)bytes[0] << 24) | ((uint32_t)bytes[1] << 16) | ((uint32_t)bytes[2] << 8) | bytes[3];
}

static void write_be16(uint8_t *bytes, uint16_t value) {
  bytes[0] = (uint8_t)(value >> 8);
  bytes[1] = (uint8_t)value;
}

static void write_be32(uint8_t *bytes, uint32_t value) {
  bytes[0] = (uint8_t)(value >> 24);
  bytes[1] = (uint8_t)(value >> 16);
  bytes[2] = (uint8_t)(value >> 8);
  bytes[3] = (uint8_t)value;
}

/* The Internet checksum's running ones'-complement sum (RFC 1071). */
static uint32_t checksum_add(uint32_t sum, const uint8_t *bytes, uint32_t length) {
  for (uint32_t i = 0; i + 1 < length; i += 2) sum += read_be16(bytes + i);
  if ((length & 1u) != 0) sum += (uint32_t)bytes[length - 1] << 8;
  return sum;
}

static uint16_t checksum_finish(uint32_t sum) {
  while ((sum >> 16) != 0) sum = (sum & 0xffffu) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint32_t udp_pseudo_header_sum(uint32_t source, uint32_t destination, uint16_t udp_length) {
  uint32_t sum = (source >> 16) + (source & 0xffffu) + (destination >> 16) + (destination & 0xffffu);
  return sum + IP_PROTOCOL_UDP + udp_length;
}

static bool is_zero_mac(const uint8_t *mac) {
  for (int i = 0; i < 6; i++) {
    if (mac[i] != 0) return false;
  }
  return true;
}

static void arp_learn(uint32_t address, const uint8_t *mac) {
  if ((address & FTVM_NET_NETMASK) != (FTVM_NET_GUEST_ADDRESS & FTVM_NET_NETMASK)) return;
  if (address == FTVM_NET_GUEST_ADDRESS || (mac[0] & 1u) != 0) return;
  for (uint32_t i = 0; i < ARP_CACHE_ENTRIES; i++) {
    if (arp_cache[i].valid && arp_cache[i].address == address) {
      memcpy(arp_cache[i].mac, mac, 6);
      return;
    }
  }
  struct arp_entry *entry = &arp_cache[arp_next_victim];
  arp_next_victim = (arp_next_victim + 1) % ARP_CACHE_ENTRIES;
  entry->address = address;
  memcpy(entry->mac, mac, 6);
  entry->valid = true;
}

static const uint8_t *arp_lookup(uint32_t address) {
  for (uint32_t i = 0; i < ARP_CACHE_ENTRIES; i++) {
    if (arp_cache[i].valid && arp_cache[i].address == address) return arp_cache[i].mac;
  }
  return NULL;
}

static int send_frame(const uint8_t *destination_mac, uint16_t ethertype, uint32_t payload_length) {
  memcpy(transmit_frame, destination_mac, 6);
  memcpy(transmit_frame + 6, device.mac, 6);
  write_be16(transmit_frame + 12, ethertype);
  uint32_t length = ETHERNET_HEADER_BYTES + payload_length;
  if (length < 60) {
    memset(transmit_frame + length, 0, 60 - length); /* pad to the Ethernet minimum */
    length = 60;
  }
  int result = ftvm_net_device_send(&device, transmit_frame, length);
  if (result == FTVM_VIRTIO_OK) statistics.frames_sent++;
  return result;
}

static int send_arp(uint16_t operation, const uint8_t *destination_mac, const uint8_t *target_mac,
                    uint32_t target_address) {
  uint8_t *arp = transmit_frame + ETHERNET_HEADER_BYTES;
  write_be16(arp, 1);                /* Ethernet */
  write_be16(arp + 2, ETHERTYPE_IPV4);
  arp[4] = 6;
  arp[5] = 4;
  write_be16(arp + 6, operation);
  memcpy(arp + 8, device.mac, 6);
  write_be32(arp + 14, FTVM_NET_GUEST_ADDRESS);
  memcpy(arp + 18, target_mac, 6);
  write_be32(arp + 24, target_address);
  return send_frame(destination_mac, ETHERTYPE_ARP, ARP_BYTES);
}

static void handle_arp(const uint8_t *arp, uint32_t length) {
  if (length < ARP_BYTES || read_be16(arp) != 1 || read_be16(arp + 2) != ETHERTYPE_IPV4 || arp[4] != 6 ||
      arp[5] != 4) {
    statistics.dropped_malformed++;
    return;
  }
  uint16_t operation = read_be16(arp + 6);
  uint32_t sender_address = read_be32(arp + 14);
  uint32_t target_address = read_be32(arp + 24);
  uint8_t sender_mac[6];
  memcpy(sender_mac, arp + 8, 6);
  arp_learn(sender_address, sender_mac);
  if (operation == ARP_REQUEST && target_address == FTVM_NET_GUEST_ADDRESS) {
    if (send_arp(ARP_REPLY, sender_mac, sender_mac, sender_address) == FTVM_VIRTIO_OK) {
      statistics.arp_replies_sent++;
    }
  }
}

static void handle_udp(const uint8_t *source_mac, uint32_t source, uint32_t destination, const uint8_t *udp,
                       uint32_t length) {
  if (length < UDP_HEADER_BYTES) {
    statistics.dropped_malformed++;
    return;
  }
  uint16_t udp_length = read_be16(udp + 4);
  if (udp_length < UDP_HEADER_BYTES || udp_length > length) {
    statistics.dropped_malformed++;
    return;
  }
  uint16_t checksum = read_be16(udp + 6);
  if (checksum != 0) {
    uint32_t sum = udp_pseudo_header_sum(source, destination, udp_length);
    if (checksum_finish(checksum_add(sum, udp, udp_length)) != 0) {
      statistics.dropped_malformed++;
      return;
    }
  }
  uint16_t destination_port = read_be16(udp + 2);
  for (uint32_t i = 0; i < FTVM_UDP_PORTS_MAX; i++) {
    if (listeners[i].receiver != NULL && listeners[i].port == destination_port) {
      struct ftvm_udp_endpoint from = {source, read_be16(udp), {0}};
      memcpy(from.mac, source_mac, 6);
      statistics.datagrams_delivered++;
      listeners[i].receiver(&from, destination_port, udp + UDP_HEADER_BYTES, udp_length - UDP_HEADER_BYTES,
                            listeners[i].context);
      return;
    }
  }
  statistics.dropped_unwanted++;
}

static void handle_ipv4(const uint8_t *source_mac, const uint8_t *ip, uint32_t length) {
  if (length < IPV4_HEADER_BYTES || (ip[0] >> 4) != 4) {
    statistics.dropped_malformed++;
    return;
  }
  uint32_t header_bytes = (uint32_t)(ip[0] & 0x0fu) * 4u;
  uint16_t total_length = read_be16(ip + 2);
  if (header_bytes < IPV4_HEADER_BYTES || header_bytes > length || total_length < header_bytes ||
      total_length > length || checksum_finish(checksum_add(0, ip, header_bytes)) != 0) {
    statistics.dropped_malformed++;
    return;
  }
  uint16_t fragment = read_be16(ip + 6);
  uint32_t source = read_be32(ip + 12);
  uint32_t destination = read_be32(ip + 16);
  bool for_us = destination == FTVM_NET_GUEST_ADDRESS || destination == 0xffffffffu ||
                destination == (FTVM_NET_GUEST_ADDRESS | ~FTVM_NET_NETMASK);
  /* Fragments (more-fragments flag or an offset) are not reassembled. */
  if (!for_us || (fragment & 0x3fffu) != 0 || ip[9] != IP_PROTOCOL_UDP) {
    statistics.dropped_unwanted++;
    return;
  }
  arp_learn(source, source_mac);
  handle_udp(source_mac, source, destination, ip + header_bytes, total_length - header_bytes);
}

static void handle_frame(const uint8_t *frame, uint32_t length) {
  statistics.frames_received++;
  if (length < ETHERNET_HEADER_BYTES) {
    statistics.dropped_malformed++;
    return;
  }
  if (memcmp(frame, device.mac, 6) != 0 && memcmp(frame, broadcast_mac, 6) != 0) {
    statistics.dropped_unwanted++;
    return;
  }
  uint16_t ethertype = read_be16(frame + 12);
  const uint8_t *payload = frame + ETHERNET_HEADER_BYTES;
  uint32_t payload_length = length - ETHERNET_HEADER_BYTES;
  if (ethertype == ETHERTYPE_ARP) handle_arp(payload, payload_length);
  else if (ethertype == ETHERTYPE_IPV4) handle_ipv4(frame + 6, payload, payload_length);
  else statistics.dropped_unwanted++;
}

int ftvm_net_open(void) {
  if (opened) return FTVM_VIRTIO_OK;
  int result = ftvm_net_device_open(&device);
  if (result != FTVM_VIRTIO_OK) return result;
  opened = true;
  /* Gratuitous ARP: tells the gateway (and a virtual switch) where 10.0.2.15 lives. */
  static const uint8_t no_mac[6] = {0};
  send_arp(ARP_REQUEST, broadcast_mac, no_mac, FTVM_NET_GUEST_ADDRESS);
  return FTVM_VIRTIO_OK;
}

const uint8_t *ftvm_net_mac(void) {
  return device.mac;
}

bool ftvm_udp_listen(uint16_t port, ftvm_udp_receiver receiver, void *context) {
  for (uint32_t i = 0; i < FTVM_UDP_PORTS_MAX; i++) {
    if (listeners[i].receiver == NULL || listeners[i].port == port) {
      listeners[i] = (struct udp_listener){port, receiver, context};
      return true;
    }
  }
  return false;
}

int ftvm_udp_send(const struct ftvm_udp_endpoint *to, uint16_t local_port, const void *payload, uint32_t length) {
  if (!opened) return FTVM_VIRTIO_NOT_FOUND;
  if (length > FTVM_UDP_PAYLOAD_BYTES_MAX) return FTVM_VIRTIO_INVALID;
  const uint8_t *destination_mac = to->mac;
  if (is_zero_mac(destination_mac)) {
    bool on_link = (to->address & FTVM_NET_NETMASK) == (FTVM_NET_GUEST_ADDRESS & FTVM_NET_NETMASK);
    uint32_t next_hop = on_link ? to->address : FTVM_NET_GATEWAY_ADDRESS;
    destination_mac = to->address == 0xffffffffu ? broadcast_mac : arp_lookup(next_hop);
    if (destination_mac == NULL) {
      static const uint8_t no_mac[6] = {0};
      send_arp(ARP_REQUEST, broadcast_mac, no_mac, next_hop);
      return FTVM_VIRTIO_FULL;
    }
  }
  uint8_t mac[6];
  memcpy(mac, destination_mac, 6); /* the frame buffer is about to be rewritten */
  uint8_t *ip = transmit_frame + ETHERNET_HEADER_BYTES;
  uint8_t *udp = ip + IPV4_HEADER_BYTES;
  uint16_t udp_length = (uint16_t)(UDP_HEADER_BYTES + length);
  memmove(udp + UDP_HEADER_BYTES, payload, length);
  write_be16(udp, local_port);
  write_be16(udp + 2, to->port);
  write_be16(udp + 4, udp_length);
  write_be16(udp + 6, 0);
  uint16_t udp_checksum = checksum_finish(
      checksum_add(udp_pseudo_header_sum(FTVM_NET_GUEST_ADDRESS, to->address, udp_length), udp, udp_length));
  write_be16(udp + 6, udp_checksum == 0 ? 0xffffu : udp_checksum);
  ip[0] = 0x45;
  ip[1] = 0;
  write_be16(ip + 2, (uint16_t)(IPV4_HEADER_BYTES + udp_length));
  write_be16(ip + 4, next_ip_identification++);
  write_be16(ip + 6, 0x4000); /* don't fragment */
  ip[8] = 64;
  ip[9] = IP_PROTOCOL_UDP;
  write_be16(ip + 10, 0);
  write_be32(ip + 12, FTVM_NET_GUEST_ADDRESS);
  write_be32(ip + 16, to->address);
  write_be16(ip + 10, checksum_finish(checksum_add(0, ip, IPV4_HEADER_BYTES)));
  return send_frame(mac, ETHERTYPE_IPV4, IPV4_HEADER_BYTES + udp_length);
}

uint32_t ftvm_net_poll(void) {
  if (!opened) return 0;
  uint32_t handled = 0;
  uint8_t *frame;
  uint32_t length;
  uint16_t token;
  while (ftvm_net_device_receive(&device, &frame, &length, &token)) {
    handle_frame(frame, length);
    ftvm_net_device_release(&device, token);
    handled++;
  }
  return handled;
}

void ftvm_net_flush(void) {
  if (opened) ftvm_net_device_flush(&device);
}

void ftvm_net_wait(void) {
  if (!opened) return;
  ftvm_virtqueue_wait(&device.receive_queue);
}

const struct ftvm_net_statistics *ftvm_net_statistics(void) {
  return &statistics;
}
