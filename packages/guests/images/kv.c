/*
 * kv: the key-value service every end-to-end check uses (docs/kv-protocol.md).
 *
 * UDP port 5555, one ASCII request per datagram, single spaces:
 *   <id> GET <key>            -> <id> OK <value> | <id> NOTFOUND
 *   <id> PUT <key> <value>    -> <id> OK
 *   <id> DEL <key>            -> <id> OK | <id> NOTFOUND
 *   <id> INCR <key>           -> <id> OK <n>   (a missing key counts as 0)
 *   anything else with an id  -> <id> ERR <reason>; without a readable id: no answer
 * id: decimal uint32; key: 1-64 bytes of [A-Za-z0-9_.:-]; value: 1-1024 printable ASCII bytes, no
 * spaces. One trailing "\n" (or "\r\n") on a request is accepted and mirrored on the response.
 *
 * Exactly once: for each client (address, port) the server remembers the responses to its last 32
 * request ids; a repeated id gets the remembered response and is not applied again.
 *
 * Storage: in RAM, and on the virtio-blk disk when one is attached (write-through, loaded at boot).
 * The protocol's core, the store and the disk layout are kv_service.h's (shared with the Linux
 * image's server); this file is the bare-metal server around them: network, disk I/O, clients.
 */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"
#include "ftvm/net.h"
#include "ftvm/virtio.h"
#include "kv_service.h"

_Static_assert(FTVM_BLOCK_SECTOR_BYTES == SECTOR, "the store's sectors are the disk's");

/* Which clients the service remembers, and their answers (the exactly-once rule). */
struct client {
  bool used;
  uint32_t address;
  uint16_t port;
  uint32_t last_request;
  uint32_t next_slot;
  struct remembered_response history[CLIENT_HISTORY];
};

static struct client clients[CLIENTS_MAX];
static uint32_t request_counter;
static struct ftvm_block_device block;
static bool persistent;
static uint8_t disk_buffer[SLOTS_PER_REQUEST * SECTORS_PER_SLOT * SECTOR];

/* Writes what `entry` should become to its slot on disk (before RAM changes: write-through). */
static bool persist(const struct entry *slot_in_store, const struct entry *new_contents) {
  if (!persistent) return true;
  uint32_t index = (uint32_t)(slot_in_store - store);
  static struct disk_slot slot __attribute__((aligned(16)));
  static uint8_t sectors[SECTORS_PER_SLOT * SECTOR] __attribute__((aligned(16)));
  encode_slot(new_contents, &slot);
  memset(sectors, 0, sizeof sectors);
  memcpy(sectors, &slot, sizeof slot);
  return ftvm_block_write(&block, 1u + index * SECTORS_PER_SLOT, sectors, SECTORS_PER_SLOT) == FTVM_VIRTIO_OK;
}

/* ---- disk: load or format ---- */


static void describe_disk_problem(const char *what, int result) {
  printf("kv: %s: %s; serving from RAM only\n", what, ftvm_virtio_describe(result));
}

static void open_disk(void) {
  int result = ftvm_block_open(&block);
  if (result == FTVM_VIRTIO_NOT_FOUND) {
    printf("kv: no disk; serving from RAM only\n");
    return;
  }
  if (result != FTVM_VIRTIO_OK) {
    describe_disk_problem("cannot use the disk", result);
    return;
  }
  if (block.capacity_sectors < DISK_SECTORS_NEEDED || block.read_only) {
    printf("kv: the disk must be writable and hold %lu sectors; serving from RAM only\n",
           (unsigned long)DISK_SECTORS_NEEDED);
    return;
  }
  static uint8_t header_sector[SECTOR] __attribute__((aligned(16)));
  result = ftvm_block_read(&block, 0, header_sector, 1);
  if (result != FTVM_VIRTIO_OK) {
    describe_disk_problem("cannot read the disk", result);
    return;
  }
  struct disk_header header;
  memcpy(&header, header_sector, sizeof header);
  bool formatted = memcmp(header.magic, "FTVMKV01", 8) == 0 && header.version == DISK_VERSION &&
                   header.slot_count == STORE_SLOTS && header.sectors_per_slot == SECTORS_PER_SLOT &&
                   header.crc == crc32(&header, offsetof(struct disk_header, crc));
  if (formatted) {
    uint32_t loaded = 0;
    uint32_t discarded = 0;
    for (uint32_t first = 0; first < STORE_SLOTS; first += SLOTS_PER_REQUEST) {
      uint32_t count = STORE_SLOTS - first < SLOTS_PER_REQUEST ? STORE_SLOTS - first : SLOTS_PER_REQUEST;
      result = ftvm_block_read(&block, 1u + first * SECTORS_PER_SLOT, disk_buffer, count * SECTORS_PER_SLOT);
      if (result != FTVM_VIRTIO_OK) {
        memset(store, 0, sizeof store);
        describe_disk_problem("cannot read the disk", result);
        return;
      }
      for (uint32_t i = 0; i < count; i++) {
        struct disk_slot slot;
        memcpy(&slot, disk_buffer + i * SECTORS_PER_SLOT * SECTOR, sizeof slot);
        if (decode_slot(&slot, &store[first + i])) loaded++;
        else if (slot.magic == SLOT_MAGIC && slot.used != 0) discarded++;
      }
    }
    persistent = true;
    printf("kv: disk: loaded %lu keys", (unsigned long)loaded);
    if (discarded != 0) printf(" (%lu damaged slots discarded)", (unsigned long)discarded);
    printf("\n");
    return;
  }
  /* A new disk: clear the slot area, then write the header last. */
  memset(disk_buffer, 0, sizeof disk_buffer);
  for (uint32_t first = 0; first < STORE_SLOTS; first += SLOTS_PER_REQUEST) {
    uint32_t count = STORE_SLOTS - first < SLOTS_PER_REQUEST ? STORE_SLOTS - first : SLOTS_PER_REQUEST;
    result = ftvm_block_write(&block, 1u + first * SECTORS_PER_SLOT, disk_buffer, count * SECTORS_PER_SLOT);
    if (result != FTVM_VIRTIO_OK) {
      describe_disk_problem("cannot format the disk", result);
      return;
    }
  }
  memset(&header, 0, sizeof header);
  memcpy(header.magic, "FTVMKV01", 8);
  header.version = DISK_VERSION;
  header.slot_count = STORE_SLOTS;
  header.sectors_per_slot = SECTORS_PER_SLOT;
  header.crc = crc32(&header, offsetof(struct disk_header, crc));
  memset(header_sector, 0, sizeof header_sector);
  memcpy(header_sector, &header, sizeof header);
  result = ftvm_block_write(&block, 0, header_sector, 1);
  if (result == FTVM_VIRTIO_OK) result = ftvm_block_flush(&block);
  if (result != FTVM_VIRTIO_OK) {
    describe_disk_problem("cannot format the disk", result);
    return;
  }
  persistent = true;
  printf("kv: disk: formatted a new store\n");
}

/* ---- requests ---- */

static struct client *client_for(const struct ftvm_udp_endpoint *from) {
  struct client *victim = NULL;
  for (uint32_t i = 0; i < CLIENTS_MAX; i++) {
    struct client *client = &clients[i];
    if (client->used && client->address == from->address && client->port == from->port) return client;
    /* Prefer a free entry, else the least recently heard-from client. */
    if (victim == NULL || (victim->used && (!client->used || client->last_request < victim->last_request))) {
      victim = client;
    }
  }
  memset(victim, 0, sizeof *victim);
  victim->used = true;
  victim->address = from->address;
  victim->port = from->port;
  return victim;
}

static void send_response(const struct ftvm_udp_endpoint *from, const char *text, uint32_t length,
                          bool newline) {
  static char datagram[RESPONSE_BYTES_MAX + 2];
  memcpy(datagram, text, length);
  if (newline) datagram[length++] = '\n';
  ftvm_udp_send(from, KV_PORT, datagram, length);
}

static uint32_t ignored_datagrams;

static void handle_datagram(const struct ftvm_udp_endpoint *from, uint16_t local_port, const uint8_t *payload,
                            uint32_t length, void *context) {
  (void)local_port;
  (void)context;
  const char *text = (const char *)payload;
  bool newline = false;
  if (length > 0 && text[length - 1] == '\n') {
    newline = true;
    length--;
    if (length > 0 && text[length - 1] == '\r') length--;
  }
  uint32_t id_length = 0;
  while (id_length < length && text[id_length] != ' ') id_length++;
  uint32_t id;
  if (!parse_id(text, id_length, &id)) {
    ignored_datagrams++; /* no readable id: nobody to answer */
    return;
  }
  struct client *client = client_for(from);
  client->last_request = ++request_counter;
  for (uint32_t i = 0; i < CLIENT_HISTORY; i++) {
    const struct remembered_response *remembered = &client->history[i];
    if (remembered->valid && remembered->id == id) {
      send_response(from, remembered->text, remembered->length, newline);
      return;
    }
  }
  uint32_t response_length;
  if (length > REQUEST_BYTES_MAX) {
    response_length = error_response(id, "request too long");
  } else if (id_length == length) {
    response_length = error_response(id, "malformed request");
  } else {
    response_length = execute(id, text + id_length + 1, length - id_length - 1);
  }
  struct remembered_response *slot = &client->history[client->next_slot];
  client->next_slot = (client->next_slot + 1) % CLIENT_HISTORY;
  slot->valid = true;
  slot->id = id;
  slot->length = (uint16_t)response_length;
  memcpy(slot->text, response, response_length);
  send_response(from, response, response_length, newline);
}

int main(void) {
  crc_init();
  printf("kv: starting\n");
  open_disk();
  int result = ftvm_net_open();
  if (result != FTVM_VIRTIO_OK) {
    printf("kv: cannot open virtio-net: %s\n", ftvm_virtio_describe(result));
    return 1;
  }
  ftvm_udp_listen(KV_PORT, handle_datagram, NULL);
  printf("kv: listening on udp port %u (%s)\n", KV_PORT, persistent ? "persistent" : "RAM only");
  for (;;) {
    ftvm_net_wait();
    ftvm_net_poll();
  }
}
