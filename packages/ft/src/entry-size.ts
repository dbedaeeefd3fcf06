import type { LogEntry, PlainValue } from '@ftvm/core';

/**
 * About how many bytes an entry takes in a frame: what the primary's log buffer counts. Cheaper
 * than encoding, and close enough for flow control (the codec's compact form is a few bytes per
 * entry plus the data it carries).
 */
export function entrySizeBytes(entry: LogEntry): number {
  switch (entry.kind) {
    case 'event':
      return 8 + valueSizeBytes(entry.event.data);
    case 'nondet':
      return 8 + valueSizeBytes(entry.value);
    case 'checkpoint':
      return 4 + entry.stateHash.length;
    case 'output':
      return 8 + entry.data.length;
    default:
      return 4;
  }
}

function valueSizeBytes(value: PlainValue | undefined): number {
  if (value === undefined || value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 9;
  if (typeof value === 'string') return 2 + value.length;
  if (value instanceof Uint8Array) return 5 + value.length;
  if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + valueSizeBytes(item), 3);
  let sum = 3;
  for (const key of Object.keys(value))
    sum += 2 + key.length + valueSizeBytes((value as Record<string, PlainValue>)[key]);
  return sum;
}
