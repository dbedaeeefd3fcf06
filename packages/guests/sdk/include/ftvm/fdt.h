/*
 * A small reader for the flattened device tree that the boot code passes in a1.
 * Nodes are named by their offset in the structure block (the root is 0); -1 means "none".
 * Every read is bounds-checked, so a malformed tree gives "not found", never a fault.
 */
#ifndef FTVM_FDT_H
#define FTVM_FDT_H

#include <stdbool.h>
#include <stdint.h>

struct ftvm_fdt {
  const uint8_t *structure;
  uint32_t structure_size;
  const char *strings;
  uint32_t strings_size;
  uint32_t total_size;
};

/* Opens a blob; false when it is not a valid version-17 FDT. */
bool ftvm_fdt_open(struct ftvm_fdt *fdt, const void *blob);
/* The tree the board booted with (opened on first use); NULL if a1 held no valid tree. */
const struct ftvm_fdt *ftvm_fdt_boot(void);

/* The node after `node` in document order (depth-first), or -1. */
int ftvm_fdt_next_node(const struct ftvm_fdt *fdt, int node);
/* The node's name with its unit address ("serial@10000000"); "" for the root. */
const char *ftvm_fdt_node_name(const struct ftvm_fdt *fdt, int node);
int ftvm_fdt_parent(const struct ftvm_fdt *fdt, int node);
/* A node by path ("/chosen", "/soc/serial@10000000"); a component without '@' also matches "name@…". */
int ftvm_fdt_find_path(const struct ftvm_fdt *fdt, const char *path);
/* The first node after `after` (use -1 to start) whose "compatible" list holds `compatible`. */
int ftvm_fdt_find_compatible(const struct ftvm_fdt *fdt, int after, const char *compatible);

/* A property's value and length in bytes, or NULL. */
const void *ftvm_fdt_property(const struct ftvm_fdt *fdt, int node, const char *name, uint32_t *length);
/* A big-endian cell of a property; false when absent or too short. */
bool ftvm_fdt_property_u32(const struct ftvm_fdt *fdt, int node, const char *name, uint32_t index,
                           uint32_t *value);
/* Entry `index` of "reg", decoded with the parent's #address-cells / #size-cells. */
bool ftvm_fdt_reg(const struct ftvm_fdt *fdt, int node, uint32_t index, uint64_t *address, uint64_t *size);
/* Entry `index` of "interrupts" (one cell each, as for the PLIC). */
bool ftvm_fdt_interrupt(const struct ftvm_fdt *fdt, int node, uint32_t index, uint32_t *interrupt);

uint32_t ftvm_fdt_read_be32(const void *bytes);

#endif
