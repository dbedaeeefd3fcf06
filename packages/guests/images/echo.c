/*
 * echo: a UDP echo server on port 7 (RFC 862) over virtio-net. Every datagram goes back to its
 * sender unchanged; the datagram "quit" is answered "bye" and powers the guest off with status 0.
 */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"
#include "ftvm/net.h"

#define ECHO_PORT 7u

static bool quit_requested;

static void echo_datagram(const struct ftvm_udp_endpoint *from, uint16_t local_port, const uint8_t *payload,
                          uint32_t length, void *context) {
  (void)context;
  if (length == 4 && memcmp(payload, "quit", 4) == 0) {
    ftvm_udp_send(from, local_port, "bye", 3);
    quit_requested = true;
    return;
  }
  ftvm_udp_send(from, local_port, payload, length);
}

int main(void) {
  int result = ftvm_net_open();
  if (result != FTVM_VIRTIO_OK) {
    printf("echo: cannot open virtio-net: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  const uint8_t *mac = ftvm_net_mac();
  printf("echo: mac %02x:%02x:%02x:%02x:%02x:%02x, address 10.0.2.15\n", mac[0], mac[1], mac[2], mac[3], mac[4],
         mac[5]);
  ftvm_udp_listen(ECHO_PORT, echo_datagram, NULL);
  printf("echo: listening on udp port %u\n", ECHO_PORT);
  while (!quit_requested) {
    ftvm_net_wait();
    ftvm_net_poll();
  }
  ftvm_net_flush(); /* QEMU transmits asynchronously: let "bye" leave before powering off */
  const struct ftvm_net_statistics *statistics = ftvm_net_statistics();
  printf("echo: quit after %lu datagrams\n", (unsigned long)statistics->datagrams_delivered);
  printf("[nondet] echo: frames received %lu, sent %lu, arp replies %lu, dropped %lu malformed, %lu unwanted\n",
         (unsigned long)statistics->frames_received, (unsigned long)statistics->frames_sent,
         (unsigned long)statistics->arp_replies_sent, (unsigned long)statistics->dropped_malformed,
         (unsigned long)statistics->dropped_unwanted);
  return 0;
}
