/*
 * The kv service's core (docs/kv-protocol.md), shared by the two servers that speak it: kv.elf on
 * the bare board (images/kv.c) and the Linux image's init (linux/userland/init.c). Requests,
 * answers and ERR reasons, the store, and the disk layout live here once, so that the servers
 * answer alike and read each other's disks; each server brings its network, its disk I/O and the
 * exactly-once memory of its clients (whose addresses differ).
 *
 * Header-only, for one translation unit: include it after the platform's headers (stdint, stdbool,
 * memcpy/memset/memcmp/strlen) and define `persist()`, which writes a slot to the disk before the
 * store changes (or does nothing without a disk).
 *
 * Disk layout (512-byte sectors): sector 0 holds the header {"FTVMKV01", version 1, slot count,
 * sectors per slot, crc32}; slot i lives at sector 1 + 3 i as {magic "KVSL", crc32 of the rest,
 * used, key length, value length, key[64], value[1024]}. A slot whose crc does not match is empty.
 */
#ifndef FTVM_KV_SERVICE_H
#define FTVM_KV_SERVICE_H

#define KV_PORT 5555u
#define KEY_BYTES_MAX 64u
#define VALUE_BYTES_MAX 1024u
#define STORE_SLOTS 512u
#define CLIENTS_MAX 64u
#define CLIENT_HISTORY 32u
#define RESPONSE_BYTES_MAX 1100u
#define REQUEST_BYTES_MAX (10u + 1u + 4u + 1u + KEY_BYTES_MAX + 1u + VALUE_BYTES_MAX)
#define SECTOR 512u
#define SECTORS_PER_SLOT 3u
#define SLOTS_PER_REQUEST 42u /* 126 sectors, within one block request */
#define DISK_SECTORS_NEEDED (1u + STORE_SLOTS * SECTORS_PER_SLOT)
#define DISK_VERSION 1u
#define SLOT_MAGIC 0x4c53564bu /* "KVSL" little-endian */
/* INT64_MAX, which not every C library here defines. */
#define KV_INT64_MAX 0x7fffffffffffffffll

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

struct disk_header {
  char magic[8];
  uint32_t version;
  uint32_t slot_count;
  uint32_t sectors_per_slot;
  uint32_t crc;
};

_Static_assert(sizeof(struct disk_slot) <= SECTORS_PER_SLOT * SECTOR, "a slot must fit its sectors");
_Static_assert(sizeof(struct disk_header) == 24, "the header is 24 bytes");

static struct entry store[STORE_SLOTS];
static char response[RESPONSE_BYTES_MAX + 2];
static uint32_t crc_table[256];

/* Writes `new_contents` to the disk slot of `slot_in_store` (the server's own I/O); false when the
 * write failed, and then the store must not change. */
static bool persist(const struct entry *slot_in_store, const struct entry *new_contents);

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
  if (!negative && magnitude > (uint64_t)KV_INT64_MAX) return false;
  if (negative && magnitude > (uint64_t)KV_INT64_MAX + 1u) return false;
  *result = negative ? (int64_t)(0u - magnitude) : (int64_t)magnitude;
  return true;
}

/* Divides by ten, returning the remainder, with 32-bit divisions only: rv32 has no 64-bit divide,
 * and there is no rv32 libgcc to supply one. The low word goes in two 16-bit steps, so that each
 * partial dividend (remainder < 10, then 16 bits) fits in 32 bits. */
static uint32_t divide_by_ten(uint64_t *value) {
  uint32_t high = (uint32_t)(*value >> 32);
  uint32_t low = (uint32_t)*value;
  uint32_t quotient_high = high / 10u;
  uint32_t part = (high % 10u) << 16 | low >> 16;
  uint32_t quotient_middle = part / 10u;
  part = (part % 10u) << 16 | (low & 0xffffu);
  uint32_t quotient_low = part / 10u;
  *value = (uint64_t)quotient_high << 32 | (quotient_middle << 16 | quotient_low);
  return part % 10u;
}

static uint32_t format_integer(char *out, int64_t value) {
  char digits[20];
  uint32_t count = 0;
  uint64_t magnitude = value < 0 ? 0u - (uint64_t)value : (uint64_t)value;
  do {
    digits[count++] = (char)('0' + divide_by_ten(&magnitude));
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
  slot->crc = crc32(&slot->used, sizeof *slot - __builtin_offsetof(struct disk_slot, used));
}

static bool decode_slot(const struct disk_slot *slot, struct entry *entry) {
  memset(entry, 0, sizeof *entry);
  if (slot->magic != SLOT_MAGIC) return false;
  if (slot->crc != crc32(&slot->used, sizeof *slot - __builtin_offsetof(struct disk_slot, used))) return false;
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

/* ---- requests ---- */

static uint32_t respond(uint32_t id, const char *status, const char *detail, uint32_t detail_length) {
  uint32_t length = format_integer(response, id);
  response[length++] = ' ';
  uint32_t status_length = (uint32_t)strlen(status);
  memcpy(response + length, status, status_length);
  length += status_length;
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
        if (current == KV_INT64_MAX) return error_response(id, "integer overflow");
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

#endif
