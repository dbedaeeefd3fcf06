/*
 * A small Ethernet / ARP / IPv4 / UDP stack over virtio-net, configured as QEMU's user networking
 * expects: guest 10.0.2.15/24, gateway 10.0.2.2. It answers ARP requests for its address, verifies
 * IPv4 header checksums (and UDP checksums when non-zero), and delivers UDP datagrams to the
 * receivers registered per port. Single-threaded: call ftvm_net_poll() from the main loop.
 */
#ifndef FTVM_NET_H
#define FTVM_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "ftvm/virtio.h"

/* IPv4 addresses are held in host order: 10.0.2.15 is FTVM_IPV4(10, 0, 2, 15). */
#define FTVM_IPV4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define FTVM_NET_GUEST_ADDRESS FTVM_IPV4(10, 0, 2, 15)
#define FTVM_NET_GATEWAY_ADDRESS FTVM_IPV4(10, 0, 2, 2)
#define FTVM_NET_NETMASK FTVM_IPV4(255, 255, 255, 0)
#define FTVM_UDP_PAYLOAD_BYTES_MAX 1472u
#define FTVM_UDP_PORTS_MAX 8u

/* The far end of a datagram: reply to it with ftvm_udp_send. */
struct ftvm_udp_endpoint {
  uint32_t address;
  uint16_t port;
  uint8_t mac[6];
};

typedef void (*ftvm_udp_receiver)(const struct ftvm_udp_endpoint *from, uint16_t local_port,
                                  const uint8_t *payload, uint32_t length, void *context);

struct ftvm_net_statistics {
  uint32_t frames_received;
  uint32_t frames_sent;
  uint32_t arp_replies_sent;
  uint32_t datagrams_delivered;
  uint32_t dropped_malformed;   /* too short, bad lengths, bad checksums */
  uint32_t dropped_unwanted;    /* not for us, other protocols, closed ports, fragments */
};

/* Opens the first virtio-net device, and announces our address with a gratuitous ARP. */
int ftvm_net_open(void);
const uint8_t *ftvm_net_mac(void);
/* Delivers datagrams for `port` to `receiver` (called from ftvm_net_poll). */
bool ftvm_udp_listen(uint16_t port, ftvm_udp_receiver receiver, void *context);
/*
 * Sends a datagram from `local_port`. The destination MAC comes from `to->mac` when non-zero,
 * else from the ARP cache (off-subnet addresses go through the gateway); FTVM_VIRTIO_FULL means
 * an ARP request went out and the caller should retry later.
 */
int ftvm_udp_send(const struct ftvm_udp_endpoint *to, uint16_t local_port, const void *payload, uint32_t length);
/* Handles every frame received so far (ARP, UDP delivery); returns how many. */
uint32_t ftvm_net_poll(void);
/* Waits until the device has taken every frame sent so far (call before powering off). */
void ftvm_net_flush(void);
/* Sleeps (wfi, interrupt-driven) until at least one frame is waiting. */
void ftvm_net_wait(void);
const struct ftvm_net_statistics *ftvm_net_statistics(void);

#endif
