import type { MachineSnapshot } from '@ftvm/core';
import { SnapshotError } from '@ftvm/core';
import { Packr } from 'msgpackr';
import { hashBytes } from './state-hash.js';

/**
 * The snapshot file: a fixed header followed by the snapshot as MessagePack.
 *
 *     offset  size  field
 *     0       8     magic "FTVMSNAP"
 *     8       4     envelope version, u32 little-endian (1)
 *     12      4     reserved, zero
 *     16      8     body length in bytes, u64 little-endian
 *     24      8     body digest: two u32 hash lanes, little-endian
 *     32      n     body: the MachineSnapshot, MessagePack (sections carry their own versions)
 *
 * Self-describing: the body holds its field names, each component's state section its own kind and
 * version, and the machine configuration it came from.
 */

export const SNAPSHOT_MAGIC = 'FTVMSNAP';
export const SNAPSHOT_FILE_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 32;
/** The largest body accepted: 2 GiB of RAM plus room for device state. */
export const SNAPSHOT_BODY_BYTES_MAX = 2 ** 31 + 64 * 2 ** 20;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });
const magicBytes = new TextEncoder().encode(SNAPSHOT_MAGIC);

export function encodeSnapshot(snapshot: MachineSnapshot): Uint8Array {
  const body = packr.pack(snapshot);
  const file = new Uint8Array(SNAPSHOT_HEADER_BYTES + body.length);
  const view = new DataView(file.buffer);
  file.set(magicBytes, 0);
  view.setUint32(8, SNAPSHOT_FILE_VERSION, true);
  view.setBigUint64(16, BigInt(body.length), true);
  const [first, second] = hashBytes(body);
  view.setUint32(24, first, true);
  view.setUint32(28, second, true);
  file.set(body, SNAPSHOT_HEADER_BYTES);
  return file;
}

export function decodeSnapshot(file: Uint8Array): MachineSnapshot {
  if (file.length < SNAPSHOT_HEADER_BYTES) throw new SnapshotError('snapshot file is truncated (no header)');
  for (let index = 0; index < magicBytes.length; index++) {
    if (file[index] !== magicBytes[index]) throw new SnapshotError('not an ftvm snapshot file (bad magic)');
  }
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = view.getUint32(8, true);
  if (version !== SNAPSHOT_FILE_VERSION)
    throw new SnapshotError(`unsupported snapshot file version ${version}`);
  const bodyLength = Number(view.getBigUint64(16, true));
  if (bodyLength > SNAPSHOT_BODY_BYTES_MAX)
    throw new SnapshotError(`snapshot body of ${bodyLength} bytes is too large`);
  if (SNAPSHOT_HEADER_BYTES + bodyLength !== file.length) {
    throw new SnapshotError(
      `snapshot file is ${file.length} bytes, its header says ${SNAPSHOT_HEADER_BYTES + bodyLength}`,
    );
  }
  const body = file.subarray(SNAPSHOT_HEADER_BYTES);
  const [first, second] = hashBytes(body);
  if (first !== view.getUint32(24, true) || second !== view.getUint32(28, true)) {
    throw new SnapshotError('snapshot file is damaged (digest mismatch)');
  }
  let snapshot: unknown;
  try {
    snapshot = packr.unpack(body);
  } catch (error) {
    throw new SnapshotError('snapshot body is not valid MessagePack', { cause: error });
  }
  const candidate = snapshot as Partial<MachineSnapshot> | null;
  if (
    candidate?.format !== 'ftvm-machine-snapshot' ||
    typeof candidate.icount !== 'number' ||
    !candidate.cpu ||
    !candidate.devices ||
    !(candidate.ram?.pages instanceof Uint8Array)
  ) {
    throw new SnapshotError('snapshot body does not describe a machine');
  }
  return candidate as MachineSnapshot;
}
