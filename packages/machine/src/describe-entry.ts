// How the machine names log entries and bytes in its divergence reports.
import type { LogEntry } from '@ftvm/core';

export function describeEntry(entry: LogEntry): string {
  switch (entry.kind) {
    case 'event':
      return `event ${entry.device}/${entry.event?.type} at icount ${entry.icount} (entry ${entry.seq})`;
    case 'nondet':
      return `a read of ${entry.device}/${entry.key} at icount ${entry.icount} (entry ${entry.seq})`;
    case 'checkpoint':
      return `checkpoint at icount ${entry.icount} (entry ${entry.seq})`;
    case 'progress':
      return `progress mark at icount ${entry.icount} (entry ${entry.seq})`;
    case 'stop':
      return `power-off with status ${entry.exitStatus} at icount ${entry.icount} (entry ${entry.seq})`;
    case 'output':
      return `${entry.device}/${entry.stream} output ${describeBytes(entry.data)} at icount ${entry.icount} (entry ${entry.seq})`;
    default:
      return `an entry of unknown kind (entry ${(entry as LogEntry).seq})`;
  }
}

export function describeBytes(data: Uint8Array): string {
  const printable = data.length <= 16 && data.every((byte) => byte >= 0x20 && byte < 0x7f);
  return printable
    ? JSON.stringify(new TextDecoder().decode(data))
    : `${data.length} bytes ${hex(data.subarray(0, 16))}`;
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
