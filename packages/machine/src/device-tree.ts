import type { DeviceTreeNode, DeviceTreeValue } from '@ftvm/core';

/**
 * Flattened device tree (DTB) writer, per the Devicetree Specification v0.4, chapter 5: a header,
 * an empty memory reservation block, the structure block and the strings block, big-endian.
 */

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_END = 9;
const FDT_VERSION = 17;
const FDT_LAST_COMPATIBLE_VERSION = 16;
const HEADER_BYTES = 40;
const RESERVATION_BLOCK_BYTES = 16; // one all-zero terminating entry

const textEncoder = new TextEncoder();

function encodeValue(value: DeviceTreeValue): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return textEncoder.encode(`${value}\0`);
  if (value.length > 0 && typeof value[0] === 'string') {
    return textEncoder.encode((value as readonly string[]).map((item) => `${item}\0`).join(''));
  }
  const cells = value as readonly number[];
  const bytes = new Uint8Array(cells.length * 4);
  const view = new DataView(bytes.buffer);
  cells.forEach((cell, index) => {
    view.setUint32(index * 4, cell >>> 0);
  });
  return bytes;
}

class ByteWriter {
  private bytes = new Uint8Array(1024);
  length = 0;

  private reserve(count: number): void {
    if (this.length + count <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + count));
    grown.set(this.bytes);
    this.bytes = grown;
  }

  u32(value: number): void {
    this.reserve(4);
    new DataView(this.bytes.buffer).setUint32(this.length, value >>> 0);
    this.length += 4;
  }

  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  align4(): void {
    const padding = (4 - (this.length % 4)) % 4;
    this.reserve(padding);
    this.length += padding; // the buffer is zero-filled
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/** Serialises a tree (the root node's name is ignored: it is always empty) into a DTB blob. */
export function buildDeviceTreeBlob(root: DeviceTreeNode, bootCpuId = 0): Uint8Array {
  const structure = new ByteWriter();
  const strings = new ByteWriter();
  const stringOffsets = new Map<string, number>();
  const stringOffset = (name: string): number => {
    let offset = stringOffsets.get(name);
    if (offset === undefined) {
      offset = strings.length;
      stringOffsets.set(name, offset);
      strings.raw(textEncoder.encode(`${name}\0`));
    }
    return offset;
  };
  const writeNode = (node: DeviceTreeNode, isRoot: boolean): void => {
    structure.u32(FDT_BEGIN_NODE);
    structure.raw(textEncoder.encode(`${isRoot ? '' : node.name}\0`));
    structure.align4();
    for (const [name, value] of Object.entries(node.properties)) {
      const data = encodeValue(value);
      structure.u32(FDT_PROP);
      structure.u32(data.length);
      structure.u32(stringOffset(name));
      structure.raw(data);
      structure.align4();
    }
    for (const child of node.children ?? []) writeNode(child, false);
    structure.u32(FDT_END_NODE);
  };
  writeNode(root, true);
  structure.u32(FDT_END);

  const structureBytes = structure.result();
  const stringBytes = strings.result();
  const reservationOffset = HEADER_BYTES;
  const structureOffset = reservationOffset + RESERVATION_BLOCK_BYTES;
  const stringsOffset = structureOffset + structureBytes.length;
  const totalSize = stringsOffset + stringBytes.length;
  const blob = new Uint8Array(totalSize);
  const view = new DataView(blob.buffer);
  const header = [
    FDT_MAGIC,
    totalSize,
    structureOffset,
    stringsOffset,
    reservationOffset,
    FDT_VERSION,
    FDT_LAST_COMPATIBLE_VERSION,
    bootCpuId,
    stringBytes.length,
    structureBytes.length,
  ];
  header.forEach((value, index) => {
    view.setUint32(index * 4, value);
  });
  blob.set(structureBytes, structureOffset);
  blob.set(stringBytes, stringsOffset);
  return blob;
}

/** Formats a tree as dts-like text (for tests, `ftvm` diagnostics and comparing with `dtc -O dts`). */
export function formatDeviceTree(node: DeviceTreeNode, depth = 0, isRoot = true): string {
  const indent = '\t'.repeat(depth);
  const lines = [`${indent}${isRoot ? '/' : node.name} {`];
  for (const [name, value] of Object.entries(node.properties)) {
    lines.push(`${indent}\t${name}${formatValue(value)};`);
  }
  for (const child of node.children ?? []) lines.push('', formatDeviceTree(child, depth + 1, false));
  lines.push(`${indent}};`);
  return lines.join('\n');
}

function formatValue(value: DeviceTreeValue): string {
  if (value instanceof Uint8Array) {
    return value.length === 0
      ? ''
      : ` = [${Array.from(value, (byte) => byte.toString(16).padStart(2, '0')).join(' ')}]`;
  }
  if (typeof value === 'string') return ` = "${value}"`;
  if (value.length === 0) return '';
  if (typeof value[0] === 'string') return ` = "${(value as readonly string[]).join('\\0')}"`;
  return ` = <${(value as readonly number[]).map((cell) => `0x${(cell >>> 0).toString(16).padStart(2, '0')}`).join(' ')}>`;
}
