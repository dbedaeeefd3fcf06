/* Flattened device tree reader (Devicetree Specification v0.4, chapter 5), bounds-checked. */
#include <string.h>

#include "ftvm.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE 2u
#define FDT_PROP 3u
#define FDT_NOP 4u
#define FDT_END 9u
#define FDT_MAX_DEPTH 32

uint32_t ftvm_fdt_read_be32(const void *bytes) {
  const uint8_t *b = bytes;
  return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

bool ftvm_fdt_open(struct ftvm_fdt *fdt, const void *blob) {
  if (blob == NULL || ((uintptr_t)blob & 3u) != 0) return false;
  const uint8_t *header = blob;
  if (ftvm_fdt_read_be32(header) != FDT_MAGIC) return false;
  uint32_t total = ftvm_fdt_read_be32(header + 4);
  uint32_t structure_offset = ftvm_fdt_read_be32(header + 8);
  uint32_t strings_offset = ftvm_fdt_read_be32(header + 12);
  uint32_t version = ftvm_fdt_read_be32(header + 20);
  uint32_t last_compatible_version = ftvm_fdt_read_be32(header + 24);
  uint32_t strings_size = ftvm_fdt_read_be32(header + 32);
  uint32_t structure_size = ftvm_fdt_read_be32(header + 36);
  if (version < 16 || last_compatible_version > 17 || total < 40 || total > 0x1000000u) return false;
  if (structure_offset < 40 || strings_offset < 40) return false; /* inside the header */
  if (structure_offset > total || structure_size > total - structure_offset) return false;
  if (strings_offset > total || strings_size > total - strings_offset) return false;
  if ((structure_offset & 3u) != 0) return false;
  fdt->structure = header + structure_offset;
  fdt->structure_size = structure_size;
  fdt->strings = (const char *)header + strings_offset;
  fdt->strings_size = strings_size;
  fdt->total_size = total;
  return true;
}

const struct ftvm_fdt *ftvm_fdt_boot(void) {
  static struct ftvm_fdt boot;
  static int state; /* 0 unknown, 1 valid, 2 invalid */
  if (state == 0) state = ftvm_fdt_open(&boot, ftvm_boot_device_tree) ? 1 : 2;
  return state == 1 ? &boot : NULL;
}

static bool read_token(const struct ftvm_fdt *fdt, uint32_t offset, uint32_t *token) {
  if (offset > fdt->structure_size || fdt->structure_size - offset < 4) return false;
  *token = ftvm_fdt_read_be32(fdt->structure + offset);
  return true;
}

/* Length of a NUL-terminated string at offset in the structure block, or -1. */
static int32_t string_length(const struct ftvm_fdt *fdt, uint32_t offset) {
  for (uint32_t i = offset; i < fdt->structure_size; i++) {
    if (fdt->structure[i] == 0) return (int32_t)(i - offset);
  }
  return -1;
}

static uint32_t align4(uint32_t value) {
  return (value + 3u) & ~3u;
}

/* The offset just past the token at `offset` (and its payload), or 0 on error; sets *token. */
static uint32_t skip_token(const struct ftvm_fdt *fdt, uint32_t offset, uint32_t *token) {
  if (!read_token(fdt, offset, token)) return 0;
  switch (*token) {
    case FDT_BEGIN_NODE: {
      int32_t length = string_length(fdt, offset + 4);
      if (length < 0) return 0;
      return align4(offset + 4 + (uint32_t)length + 1);
    }
    case FDT_PROP: {
      if (offset + 12 > fdt->structure_size) return 0;
      uint32_t length = ftvm_fdt_read_be32(fdt->structure + offset + 4);
      if (length > fdt->structure_size - offset - 12) return 0;
      return align4(offset + 12 + length);
    }
    case FDT_END_NODE:
    case FDT_NOP:
      return offset + 4;
    default:
      return 0;
  }
}

static int first_node(const struct ftvm_fdt *fdt) {
  uint32_t offset = 0;
  for (;;) {
    uint32_t token;
    if (!read_token(fdt, offset, &token)) return -1;
    if (token == FDT_BEGIN_NODE) return (int)offset;
    if (token != FDT_NOP) return -1;
    offset += 4;
  }
}

/* The node after `node` in document order, tracking depth (node's depth in, result's depth out). */
static int next_node_with_depth(const struct ftvm_fdt *fdt, int node, int *depth) {
  if (node < 0) {
    *depth = 0;
    return first_node(fdt);
  }
  uint32_t token;
  uint32_t offset = skip_token(fdt, (uint32_t)node, &token);
  if (offset == 0 || token != FDT_BEGIN_NODE) return -1;
  for (;;) {
    if (!read_token(fdt, offset, &token)) return -1;
    if (token == FDT_BEGIN_NODE) {
      *depth += 1;
      return (int)offset;
    }
    if (token == FDT_END) return -1;
    if (token == FDT_END_NODE) *depth -= 1;
    offset = skip_token(fdt, offset, &token);
    if (offset == 0) return -1;
  }
}

int ftvm_fdt_next_node(const struct ftvm_fdt *fdt, int node) {
  int depth = 0;
  return next_node_with_depth(fdt, node, &depth);
}

const char *ftvm_fdt_node_name(const struct ftvm_fdt *fdt, int node) {
  uint32_t token;
  if (node < 0 || !read_token(fdt, (uint32_t)node, &token) || token != FDT_BEGIN_NODE) return "";
  if (string_length(fdt, (uint32_t)node + 4) < 0) return "";
  return (const char *)fdt->structure + node + 4;
}

int ftvm_fdt_parent(const struct ftvm_fdt *fdt, int node) {
  int stack[FDT_MAX_DEPTH];
  int depth = 0;
  for (int current = next_node_with_depth(fdt, -1, &depth); current >= 0;
       current = next_node_with_depth(fdt, current, &depth)) {
    if (depth < 0 || depth >= FDT_MAX_DEPTH) return -1;
    stack[depth] = current;
    if (current == node) return depth == 0 ? -1 : stack[depth - 1];
  }
  return -1;
}

/* Does node name `name` match path component `component` (of `length` bytes)? */
static bool name_matches(const char *name, const char *component, size_t length) {
  if (strncmp(name, component, length) != 0) return false;
  if (name[length] == '\0') return true;
  return name[length] == '@' && memchr(component, '@', length) == NULL;
}

int ftvm_fdt_find_path(const struct ftvm_fdt *fdt, const char *path) {
  if (path[0] != '/') return -1;
  int depth = 0;
  int node = next_node_with_depth(fdt, -1, &depth);
  const char *component = path + 1;
  int matched_depth = 0;
  while (node >= 0) {
    while (*component == '/') component++;
    if (*component == '\0') return node;
    size_t length = strcspn(component, "/");
    int child = node;
    int child_depth = depth;
    bool found = false;
    for (child = next_node_with_depth(fdt, child, &child_depth); child >= 0 && child_depth > matched_depth;
         child = next_node_with_depth(fdt, child, &child_depth)) {
      if (child_depth == matched_depth + 1 && name_matches(ftvm_fdt_node_name(fdt, child), component, length)) {
        found = true;
        break;
      }
    }
    if (!found) return -1;
    node = child;
    depth = child_depth;
    matched_depth = child_depth;
    component += length;
  }
  return -1;
}

const void *ftvm_fdt_property(const struct ftvm_fdt *fdt, int node, const char *name, uint32_t *length) {
  uint32_t token;
  if (node < 0) return NULL;
  uint32_t offset = skip_token(fdt, (uint32_t)node, &token);
  if (offset == 0 || token != FDT_BEGIN_NODE) return NULL;
  for (;;) {
    if (!read_token(fdt, offset, &token)) return NULL;
    if (token == FDT_PROP) {
      uint32_t next = skip_token(fdt, offset, &token);
      if (next == 0) return NULL;
      uint32_t value_length = ftvm_fdt_read_be32(fdt->structure + offset + 4);
      uint32_t name_offset = ftvm_fdt_read_be32(fdt->structure + offset + 8);
      if (name_offset < fdt->strings_size) {
        const char *property_name = fdt->strings + name_offset;
        size_t room = fdt->strings_size - name_offset;
        size_t wanted = strlen(name);
        if (wanted < room && memcmp(property_name, name, wanted + 1) == 0) {
          if (length != NULL) *length = value_length;
          return fdt->structure + offset + 12;
        }
      }
      offset = next;
    } else if (token == FDT_NOP) {
      offset += 4;
    } else {
      return NULL;
    }
  }
}

bool ftvm_fdt_property_u32(const struct ftvm_fdt *fdt, int node, const char *name, uint32_t index,
                           uint32_t *value) {
  uint32_t length;
  const uint8_t *bytes = ftvm_fdt_property(fdt, node, name, &length);
  if (bytes == NULL || index >= length / 4) return false;
  *value = ftvm_fdt_read_be32(bytes + 4 * index);
  return true;
}

int ftvm_fdt_find_compatible(const struct ftvm_fdt *fdt, int after, const char *compatible) {
  size_t wanted = strlen(compatible);
  for (int node = ftvm_fdt_next_node(fdt, after); node >= 0; node = ftvm_fdt_next_node(fdt, node)) {
    uint32_t length;
    const char *list = ftvm_fdt_property(fdt, node, "compatible", &length);
    if (list == NULL) continue;
    /* A list of NUL-terminated strings. */
    uint32_t position = 0;
    while (position < length) {
      const char *entry = list + position;
      size_t entry_length = strnlen(entry, length - position);
      if (entry_length == wanted && memcmp(entry, compatible, wanted) == 0) return node;
      position += (uint32_t)entry_length + 1;
    }
  }
  return -1;
}

static uint32_t cells_of(const struct ftvm_fdt *fdt, int node, const char *name, uint32_t fallback) {
  uint32_t value;
  return ftvm_fdt_property_u32(fdt, node, name, 0, &value) ? value : fallback;
}

static uint64_t read_cells(const uint8_t *bytes, uint32_t cells) {
  uint64_t value = 0;
  for (uint32_t i = 0; i < cells; i++) value = (value << 32) | ftvm_fdt_read_be32(bytes + 4 * i);
  return value;
}

bool ftvm_fdt_reg(const struct ftvm_fdt *fdt, int node, uint32_t index, uint64_t *address, uint64_t *size) {
  int parent = ftvm_fdt_parent(fdt, node);
  if (parent < 0) return false;
  uint32_t address_cells = cells_of(fdt, parent, "#address-cells", 2);
  uint32_t size_cells = cells_of(fdt, parent, "#size-cells", 1);
  if (address_cells > 2 || size_cells > 2) return false;
  uint32_t entry_bytes = 4 * (address_cells + size_cells);
  uint32_t length;
  const uint8_t *bytes = ftvm_fdt_property(fdt, node, "reg", &length);
  if (bytes == NULL || entry_bytes == 0 || index >= length / entry_bytes) return false;
  bytes += index * entry_bytes;
  *address = read_cells(bytes, address_cells);
  *size = read_cells(bytes + 4 * address_cells, size_cells);
  return true;
}

bool ftvm_fdt_interrupt(const struct ftvm_fdt *fdt, int node, uint32_t index, uint32_t *interrupt) {
  return ftvm_fdt_property_u32(fdt, node, "interrupts", index, interrupt);
}
