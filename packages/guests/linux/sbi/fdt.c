/*
 * Device tree fix-up: keep the kernel off the firmware's memory.
 *
 * The firmware stays resident at the start of RAM, below the kernel: its code serves every SBI
 * call and its stack every trap. The board's device tree describes all of RAM as free, and Linux
 * would hand those pages out, so before starting the kernel the firmware adds an entry for itself
 * to the tree's memory reservation block (/memreserve/ in dts terms, devicetree specification
 * section 5.3). Linux keeps reserved memory out of its allocators.
 */
#include "firmware.h"

#define FDT_MAGIC 0xd00dfeed
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

/* The header's fields, as offsets of big-endian 32-bit words. */
#define HEADER_MAGIC 0
#define HEADER_TOTALSIZE 4
#define HEADER_OFF_DT_STRUCT 8
#define HEADER_OFF_DT_STRINGS 12
#define HEADER_OFF_MEM_RSVMAP 16
#define HEADER_VERSION 20
#define HEADER_SIZE_DT_STRINGS 32
#define HEADER_SIZE_DT_STRUCT 36

#define RESERVATION_BYTES 16 /* a 64-bit address and a 64-bit size */

void *memmove(void *destination, const void *source, size_t count);

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t value) {
  p[0] = (uint8_t)(value >> 24);
  p[1] = (uint8_t)(value >> 16);
  p[2] = (uint8_t)(value >> 8);
  p[3] = (uint8_t)value;
}

static uint64_t get64(const uint8_t *p) {
  return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put64(uint8_t *p, uint64_t value) {
  put32(p, (uint32_t)(value >> 32));
  put32(p + 4, (uint32_t)value);
}

static uint32_t header(const uint8_t *blob, unsigned int field) {
  return get32(blob + field);
}

static bool names_equal(const char *a, const char *b) {
  while (*a != '\0' && *a == *b) a++, b++;
  return *a == *b;
}

static bool is_memory_node(const char *name) {
  const char *memory = "memory";
  while (*memory != '\0' && *name == *memory) name++, memory++;
  return *memory == '\0' && (*name == '\0' || *name == '@');
}

/* A number of 1 or 2 cells (more would not fit in 64 bits). */
static bool get_cells(const uint8_t *p, uint32_t cells, uint64_t *value) {
  if (cells == 1) *value = get32(p);
  else if (cells == 2) *value = get64(p);
  else return false;
  return true;
}

/*
 * Whether [start, end) lies in RAM as the tree's memory nodes describe it. Cell sizes are the
 * root's (their defaults are 2 and 1), as the memory nodes are the root's children.
 */
static bool in_memory(const uint8_t *blob, uint64_t start, uint64_t end) {
  const uint8_t *p = blob + header(blob, HEADER_OFF_DT_STRUCT);
  const uint8_t *limit = p + header(blob, HEADER_SIZE_DT_STRUCT);
  const char *strings = (const char *)blob + header(blob, HEADER_OFF_DT_STRINGS);
  uint32_t address_cells = 2;
  uint32_t size_cells = 1;
  int depth = 0;
  bool in_memory_node = false;
  while (p + 4 <= limit) {
    uint32_t token = get32(p);
    p += 4;
    if (token == FDT_BEGIN_NODE) {
      const char *name = (const char *)p;
      depth++;
      in_memory_node = depth == 2 && is_memory_node(name);
      while (p < limit && *p != '\0') p++;
      p = (const uint8_t *)(((uintptr_t)p + 4) & ~(uintptr_t)3); /* past the NUL, 4-aligned */
    } else if (token == FDT_END_NODE) {
      depth--;
      in_memory_node = false;
    } else if (token == FDT_PROP) {
      if (p + 8 > limit) return false;
      uint32_t length = get32(p);
      const char *name = strings + get32(p + 4);
      const uint8_t *value = p + 8;
      p = value + ((length + 3) & ~3u);
      if (p > limit) return false;
      if (depth == 1 && length == 4 && names_equal(name, "#address-cells")) address_cells = get32(value);
      if (depth == 1 && length == 4 && names_equal(name, "#size-cells")) size_cells = get32(value);
      if (!in_memory_node || !names_equal(name, "reg")) continue;
      uint32_t pair_bytes = 4 * (address_cells + size_cells);
      for (uint32_t offset = 0; pair_bytes != 0 && offset + pair_bytes <= length; offset += pair_bytes) {
        uint64_t base, size;
        if (!get_cells(value + offset, address_cells, &base) ||
            !get_cells(value + offset + 4 * address_cells, size_cells, &size))
          return false;
        if (start >= base && end <= base + size) return true;
      }
    } else if (token != FDT_NOP) {
      return false; /* FDT_END, or not a device tree */
    }
  }
  return false;
}

void reserve_firmware_memory(unsigned long device_tree) {
  uint8_t *blob = (uint8_t *)device_tree;
  uint64_t start = (uintptr_t)_firmware_start;
  uint64_t size = (uintptr_t)_firmware_end - (uintptr_t)_firmware_start;
  if (device_tree == 0 || device_tree % 8 != 0 || header(blob, HEADER_MAGIC) != FDT_MAGIC ||
      header(blob, HEADER_VERSION) < 17) {
    print(FIRMWARE_NAME ": warning: no device tree at 0x%08lx to reserve the firmware's memory in\n",
          device_tree);
    return;
  }
  uint32_t total = header(blob, HEADER_TOTALSIZE);
  uint32_t reservations = header(blob, HEADER_OFF_MEM_RSVMAP);
  uint32_t structure = header(blob, HEADER_OFF_DT_STRUCT);
  uint32_t strings = header(blob, HEADER_OFF_DT_STRINGS);
  /* The layout dtc and libfdt write (and QEMU and ftvm pass): header, reservations, structure,
     strings. The new entry goes before the reservations' terminating (0, 0) entry, and everything
     from there on moves up by one entry. */
  bool usual_layout = reservations % 8 == 0 && reservations < structure &&
                      structure + header(blob, HEADER_SIZE_DT_STRUCT) <= strings &&
                      strings + header(blob, HEADER_SIZE_DT_STRINGS) <= total;
  uint32_t terminator = reservations;
  while (usual_layout && terminator + RESERVATION_BYTES <= structure &&
         (get64(blob + terminator) != 0 || get64(blob + terminator + 8) != 0))
    terminator += RESERVATION_BYTES;
  if (!usual_layout || terminator + RESERVATION_BYTES > structure) {
    print(FIRMWARE_NAME ": warning: the device tree at 0x%08lx has a layout this firmware does not edit; "
                        "the firmware's memory is not reserved\n",
          device_tree);
    return;
  }
  if (!in_memory(blob, device_tree, (uint64_t)device_tree + total + RESERVATION_BYTES)) {
    print(FIRMWARE_NAME ": warning: no room to grow the device tree at 0x%08lx; the firmware's memory is not "
                        "reserved\n",
          device_tree);
    return;
  }
  memmove(blob + terminator + RESERVATION_BYTES, blob + terminator, total - terminator);
  put64(blob + terminator, start);
  put64(blob + terminator + 8, size);
  put32(blob + HEADER_TOTALSIZE, total + RESERVATION_BYTES);
  put32(blob + HEADER_OFF_DT_STRUCT, structure + RESERVATION_BYTES);
  put32(blob + HEADER_OFF_DT_STRINGS, strings + RESERVATION_BYTES);
}
