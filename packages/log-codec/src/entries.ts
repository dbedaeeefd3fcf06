import type { LogEntry, PlainValue } from '@ftvm/core';
import { isPlainValue, LOG_ENTRY_KINDS, LogFormatError } from '@ftvm/core';

/**
 * The compact form of one entry inside a frame: a MessagePack array whose first element is the
 * kind's number and second the icount as a delta from the previous entry of the frame (the first
 * entry's is from the frame's base icount). Sequence numbers are implicit: consecutive from the
 * frame's first. Names (device, event type, read key, output stream) are indexes into the frame's
 * name table, so a name repeated across a frame costs one byte after its first use.
 *
 *     event       [0, icountDelta, device#, type#]  or  [0, icountDelta, device#, type#, data]
 *     nondet      [1, icountDelta, device#, key#, value]
 *     progress    [2, icountDelta]
 *     checkpoint  [3, icountDelta, stateHash]
 *     stop        [4, icountDelta, exitStatus]
 *     output      [5, icountDelta, device#, stream#, data]
 */
export type CompactEntry = readonly PlainValue[];

const KIND_CODE: Record<LogEntry['kind'], number> = Object.fromEntries(
  LOG_ENTRY_KINDS.map((kind, index) => [kind, index]),
) as Record<LogEntry['kind'], number>;

/** Names are short strings; a longer one is refused as hostile. */
export const NAME_BYTES_MAX = 256;
/** A state hash is a few dozen bytes (a part per machine component); a longer one is hostile. */
export const STATE_HASH_BYTES_MAX = 1024;

/** The names of one frame: each distinct name gets the next index. */
export class NameTable {
  private readonly indexes = new Map<string, number>();
  readonly names: string[] = [];

  intern(name: string): number {
    let index = this.indexes.get(name);
    if (index === undefined) {
      index = this.names.length;
      this.indexes.set(name, index);
      this.names.push(name);
    }
    return index;
  }
}

export function compactEntry(entry: LogEntry, previousIcount: number, names: NameTable): CompactEntry {
  const delta = entry.icount - previousIcount;
  const code = KIND_CODE[entry.kind];
  switch (entry.kind) {
    case 'event': {
      const device = names.intern(entry.device);
      const type = names.intern(entry.event.type);
      return entry.event.data === undefined
        ? [code, delta, device, type]
        : [code, delta, device, type, entry.event.data];
    }
    case 'nondet':
      return [code, delta, names.intern(entry.device), names.intern(entry.key), entry.value];
    case 'progress':
      return [code, delta];
    case 'checkpoint':
      return [code, delta, entry.stateHash];
    case 'stop':
      return [code, delta, entry.exitStatus];
    case 'output':
      return [code, delta, names.intern(entry.device), names.intern(entry.stream), entry.data];
  }
}

/** Checks a frame's name table: short, non-empty strings. */
export function checkNames(value: unknown): readonly string[] {
  if (!Array.isArray(value)) malformed('the frame has no name table');
  for (const item of value as unknown[]) checkName(item, 'a name');
  return value as string[];
}

function malformed(why: string, offset?: number): never {
  throw new LogFormatError('malformed-entry', `malformed log entry: ${why}`, offset);
}

function checkName(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > NAME_BYTES_MAX) {
    malformed(`${what} is not a short string`);
  }
  return value as string;
}

/** The name at index `value` of a frame's name table. */
function nameAt(names: readonly string[], value: unknown, what: string): string {
  const found = typeof value === 'number' ? names[value] : undefined;
  if (found === undefined) malformed(`${what} refers to no name of the frame`);
  return found as string;
}

/**
 * Turns a decoded compact entry back into a LogEntry, checking every field: a hostile frame gets a
 * LogFormatError, never an entry a device would choke on.
 */
export function expandEntry(
  compact: unknown,
  seq: number,
  previousIcount: number,
  names: readonly string[],
): LogEntry {
  if (!Array.isArray(compact) || compact.length < 2) malformed('not an array of at least two items');
  const [code, delta] = compact as unknown[];
  if (typeof delta !== 'number' || !Number.isSafeInteger(delta) || delta < 0) {
    throw new LogFormatError(
      'out-of-order',
      `log entry ${seq}: icount delta ${String(delta)} is not a count`,
    );
  }
  const icount = previousIcount + delta;
  if (!Number.isSafeInteger(icount)) malformed(`icount ${icount} is out of range`);
  const items = compact as unknown[];
  switch (code) {
    case 0: {
      if (items.length !== 4 && items.length !== 5) malformed('event has the wrong number of fields');
      const device = nameAt(names, items[2], 'device');
      const type = nameAt(names, items[3], 'event type');
      if (items.length === 5) {
        if (!isPlainValue(items[4])) malformed('event data is not plain data');
        return { kind: 'event', seq, icount, device, event: { type, data: items[4] as PlainValue } };
      }
      return { kind: 'event', seq, icount, device, event: { type } };
    }
    case 1: {
      if (items.length !== 5) malformed('read has the wrong number of fields');
      if (!isPlainValue(items[4])) malformed('read value is not plain data');
      return {
        kind: 'nondet',
        seq,
        icount,
        device: nameAt(names, items[2], 'device'),
        key: nameAt(names, items[3], 'key'),
        value: items[4] as PlainValue,
      };
    }
    case 2:
      if (items.length !== 2) malformed('progress mark has extra fields');
      return { kind: 'progress', seq, icount };
    case 3:
      if (items.length !== 3 || !(items[2] instanceof Uint8Array) || items[2].length > STATE_HASH_BYTES_MAX) {
        malformed('checkpoint has no state hash');
      }
      return { kind: 'checkpoint', seq, icount, stateHash: new Uint8Array(items[2] as Uint8Array) };
    case 4:
      if (items.length !== 3 || typeof items[2] !== 'number' || !Number.isInteger(items[2])) {
        malformed('stop has no exit status');
      }
      return { kind: 'stop', seq, icount, exitStatus: items[2] as number };
    case 5:
      if (items.length !== 5 || !(items[4] instanceof Uint8Array)) malformed('output has no data');
      return {
        kind: 'output',
        seq,
        icount,
        device: nameAt(names, items[2], 'device'),
        stream: nameAt(names, items[3], 'stream'),
        data: new Uint8Array(items[4] as Uint8Array),
      };
    default:
      return malformed(`unknown kind ${String(code)}`);
  }
}
