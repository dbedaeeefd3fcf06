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
 * Disk layout (512-byte sectors): sector 0 holds the header {"FTVMKV01", version 1, slot count,
 * sectors per slot, crc32}; slot i lives at sector 1 + 3 i as {magic "KVSL", crc32 of the rest,
 * used, key length, value length, key[64], value[1024]}. A slot whose crc does not match is empty.
 */
#include <stdio.h>
#include <string.h>

#include "ftvm.h"
#include "ftvm/net.h"
#include "ftvm/virtio.h"

#define KV_PORT 5555u
#define KEY_BYTES_MAX 64u
#define VALUE_BYTES_MAX 1024u
#define STORE_SLOTS 512u
#define CLIENTS_MAX 64u
#define CLIENT_HISTORY 32u
#define RESPONSE_BYTES_MAX 1100u
#define REQUEST_BYTES_MAX (10u + 1u + 4u + 1u + KEY_BYTES_MAX + 1u + VALUE_BYTES_MAX)

#define SECTOR FTVM_BLOCK_SECTOR_BYTES
#define SECTORS_PER_SLOT 3u
#define SLOTS_PER_REQUEST 42u /* 126 sectors, within one block request */
#define DISK_SECTORS_NEEDED (1u + STORE_SLOTS * SECTORS_PER_SLOT)
#define DISK_VERSION 1u
#define SLOT_MAGIC 0x4c53564bu /* "KVSL" little-endian */

struct entry {
  bool used;
  uint8_t key_length;
  uint16_t value_length;
  uint32_t key_hash;
  char key[KEY_BYTES_MAX];
  char value[VALUE_BYTES_MAX];
};

struct remembered_response {
  bool valid;
  uint32_t id;
  uint16_t length;
  char text[RESPONSE_BYTES_MAX];
};

struct client {
  bool used;
  uint32_t address;
  uint16_t port;
  uint32_t last_request;
  uint32_t next_slot;
  struct remembered_response history[CLIENT_HISTORY];
};

/* The on-disk slot record (fits in SECTORS_PER_SLOT sectors). */
struct disk_slot {
  uint32_t magic;
  uint32_t crc;
  uint8_t used;
  uint8_t key_length;
  uint16_t value_length;
  char key[KEY_BYTES_MAX];
  char value[VALUE_BYTES_MAX];
};

_Static_assert(sizeof(struct disk_slot) <= SECTORS_PER_SLOT * SECTOR, "a slot must fit its sectors");

static struct entry store[STORE_SLOTS];
static struct client clients[CLIENTS_MAX];
static uint32_t request_counter;
static struct ftvm_block_device block;
static bool persistent;
static uint8_t disk_buffer[SLOTS_PER_REQUEST * SECTORS_PER_SLOT * SECTOR];
static char response[RESPONSE_BYTES_MAX + 2];
static uint32_t crc_table[256];

/* ---- helpers ---- */

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t value = i;
    for (int bit = 0; bit < 8; bit++) value = (value >> 1) ^ (0xedb88320u & (0u - (value & 1u)));
    crc_table[i] = value;
  }
}

static uint32_t crc32(const void *data, uint32_t length) {
  const uint8_t *bytes = data;
  uint32_t crc = 0xffffffffu;
  for (uint32_t i = 0; i < length; i++) crc = (crc >> 8) ^ crc_table[(crc ^ bytes[i]) & 0xffu];
  return ~crc;
}

static uint32_t key_hash(const char *key, uint32_t length) {
  uint32_t hash = 0x811c9dc5u;
  for (uint32_t i = 0; i < length; i++) hash = (hash ^ (uint8_t)key[i]) * 0x01000193u;
  return hash;
}

static bool is_key_byte(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == ':' || c == '-';
}

static bool is_value_byte(char c) {
  return c > ' ' && c <= '~';
}

/* Parses a decimal uint32 of 1..10 digits; false on anything else. */
static bool parse_id(const char *text, uint32_t length, uint32_t *id) {
  if (length == 0 || length > 10) return false;
  uint64_t value = 0;
  for (uint32_t i = 0; i < length; i++) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10u + (uint32_t)(text[i] - '0');
  }
  if (value > 0xffffffffu) return false;
  *id = (uint32_t)value;
  return true;
}

/* Parses a decimal int64 ("-12", "40"); false when it is not one or does not fit. */
static bool parse_integer(const char *text, uint32_t length, int64_t *result) {
  uint32_t i = 0;
  bool negative = false;
  if (length > 0 && text[0] == '-') {
    negative = true;
    i = 1;
  }
  if (i == length || length - i > 19) return false;
  uint64_t magnitude = 0;
  for (; i < length; i++) {
    if (text[i] < '0' || text[i] > '9') return false;
    magnitude = magnitude * 10u + (uint32_t)(text[i] - '0');
  }
  if (!negative && magnitude > (uint64_t)INT64_MAX) return false;
  if (negative && magnitude > (uint64_t)INT64_MAX + 1u) return false;
  *result = negative ? (int64_t)(0u - magnitude) : (int64_t)magnitude;
  return true;
}

static uint32_t format_integer(char *out, int64_t value) {
  char digits[20];
  uint32_t count = 0;
  uint64_t magnitude = value < 0 ? 0u - (uint64_t)value : (uint64_t)value;
  do {
    digits[count++] = (char)('0' + magnitude % 10u);
    magnitude /= 10u;
  } while (magnitude != 0);
  uint32_t length = 0;
  if (value < 0) out[length++] = '-';
  while (count > 0) out[length++] = digits[--count];
  return length;
}

/* ---- the store ---- */

static struct entry *find_entry(const char *key, uint32_t length, uint32_t hash) {
  for (uint32_t i = 0; i < STORE_SLOTS; i++) {
    struct entry *entry = &store[i];
    if (entry->used && entry->key_hash == hash && entry->key_length == length &&
        memcmp(entry->key, key, length) == 0) {
      return entry;
    }
  }
  return NULL;
}

static struct entry *free_entry(void) {
  for (uint32_t i = 0; i < STORE_SLOTS; i++) {
    if (!store[i].used) return &store[i];
  }
  return NULL;
}

static void encode_slot(const struct entry *entry, struct disk_slot *slot) {
  memset(slot, 0, sizeof *slot);
  slot->magic = SLOT_MAGIC;
  slot->used = entry->used ? 1 : 0;
  if (entry->used) {
    slot->key_length = entry->key_length;
    slot->value_length = entry->value_length;
    memcpy(slot->key, entry->key, entry->key_length);
    memcpy(slot->value, entry->value, entry->value_length);
  }
  slot->crc = crc32(&slot->used, sizeof *slot - offsetof(struct disk_slot, used));
}

static bool decode_slot(const struct disk_slot *slot, struct entry *entry) {
  memset(entry, 0, sizeof *entry);
  if (slot->magic != SLOT_MAGIC) return false;
  if (slot->crc != crc32(&slot->used, sizeof *slot - offsetof(struct disk_slot, used))) return false;
  if (slot->used != 1) return false;
  if (slot->key_length == 0 || slot->key_length > KEY_BYTES_MAX || slot->value_length == 0 ||
      slot->value_length > VALUE_BYTES_MAX) {
    return false;
  }
  entry->used = true;
  entry->key_length = slot->key_length;
  entry->value_length = slot->value_length;
  memcpy(entry->key, slot->key, slot->key_length);
  memcpy(entry->value, slot->value, slot->value_length);
  entry->key_hash = key_hash(entry->key, entry->key_length);
  return true;
}

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

struct disk_header {
  char magic[8];
  uint32_t version;
  uint32_t slot_count;
  uint32_t sectors_per_slot;
  uint32_t crc;
};

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

static uint32_t respond(uint32_t id, const char *status, const char *detail, uint32_t detail_length) {
  uint32_t length = (uint32_t)snprintf(response, RESPONSE_BYTES_MAX, "%lu %s", (unsigned long)id, status);
  if (detail != NULL && length + 1 + detail_length < RESPONSE_BYTES_MAX) {
    response[length++] = ' ';
    memcpy(response + length, detail, detail_length);
    length += detail_length;
  }
  return length;
}

static uint32_t error_response(uint32_t id, const char *reason) {
  return respond(id, "ERR", reason, (uint32_t)strlen(reason));
}

/* Executes the request after "<id> " (`text`, `length` bytes) and builds the response. */
static uint32_t execute(uint32_t id, const char *text, uint32_t length) {
  /* Split into at most three fields on single spaces: OP, key, value (the value may not hold spaces). */
  const char *fields[3] = {NULL, NULL, NULL};
  uint32_t field_lengths[3] = {0, 0, 0};
  uint32_t field_count = 0;
  uint32_t start = 0;
  for (uint32_t i = 0; i <= length; i++) {
    if (i == length || text[i] == ' ') {
      if (field_count == 3) {
        field_count++;
        break;
      }
      fields[field_count] = text + start;
      field_lengths[field_count] = i - start;
      field_count++;
      start = i + 1;
    }
  }
  if (field_count == 0 || field_lengths[0] == 0) return error_response(id, "malformed request");
  for (uint32_t i = 0; i < field_count && i < 3; i++) {
    if (field_lengths[i] == 0) return error_response(id, "malformed request (empty field)");
  }
  const char *op = fields[0];
  uint32_t op_length = field_lengths[0];
  enum { OP_GET, OP_PUT, OP_DEL, OP_INCR } operation;
  if (op_length == 3 && memcmp(op, "GET", 3) == 0) operation = OP_GET;
  else if (op_length == 3 && memcmp(op, "PUT", 3) == 0) operation = OP_PUT;
  else if (op_length == 3 && memcmp(op, "DEL", 3) == 0) operation = OP_DEL;
  else if (op_length == 4 && memcmp(op, "INCR", 4) == 0) operation = OP_INCR;
  else return error_response(id, "unknown operation");

  if (field_count < 2) return error_response(id, "missing key");
  const char *key = fields[1];
  uint32_t key_length = field_lengths[1];
  if (key_length > KEY_BYTES_MAX) return error_response(id, "key too long");
  for (uint32_t i = 0; i < key_length; i++) {
    if (!is_key_byte(key[i])) return error_response(id, "bad key");
  }
  if (operation == OP_PUT) {
    if (field_count < 3) return error_response(id, "missing value");
    if (field_count > 3) return error_response(id, "value has spaces");
    if (field_lengths[2] > VALUE_BYTES_MAX) return error_response(id, "value too long");
    for (uint32_t i = 0; i < field_lengths[2]; i++) {
      if (!is_value_byte(fields[2][i])) return error_response(id, "bad value");
    }
  } else if (field_count > 2) {
    return error_response(id, "unexpected value");
  }

  uint32_t hash = key_hash(key, key_length);
  struct entry *entry = find_entry(key, key_length, hash);
  switch (operation) {
    case OP_GET:
      if (entry == NULL) return respond(id, "NOTFOUND", NULL, 0);
      return respond(id, "OK", entry->value, entry->value_length);
    case OP_DEL: {
      if (entry == NULL) return respond(id, "NOTFOUND", NULL, 0);
      static struct entry empty;
      memset(&empty, 0, sizeof empty);
      if (!persist(entry, &empty)) return error_response(id, "disk write failed");
      memset(entry, 0, sizeof *entry);
      return respond(id, "OK", NULL, 0);
    }
    case OP_PUT:
    case OP_INCR: {
      static struct entry updated;
      memset(&updated, 0, sizeof updated);
      updated.used = true;
      updated.key_length = (uint8_t)key_length;
      updated.key_hash = hash;
      memcpy(updated.key, key, key_length);
      char number[24];
      uint32_t number_length = 0;
      if (operation == OP_PUT) {
        updated.value_length = (uint16_t)field_lengths[2];
        memcpy(updated.value, fields[2], field_lengths[2]);
      } else {
        int64_t current = 0;
        if (entry != NULL && !parse_integer(entry->value, entry->value_length, &current)) {
          return error_response(id, "value is not an integer");
        }
        if (current == INT64_MAX) return error_response(id, "integer overflow");
        number_length = format_integer(number, current + 1);
        updated.value_length = (uint16_t)number_length;
        memcpy(updated.value, number, number_length);
      }
      struct entry *target = entry != NULL ? entry : free_entry();
      if (target == NULL) return error_response(id, "store full");
      if (!persist(target, &updated)) return error_response(id, "disk write failed");
      *target = updated;
      if (operation == OP_PUT) return respond(id, "OK", NULL, 0);
      return respond(id, "OK", number, number_length);
    }
  }
  return error_response(id, "internal error");
}

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
