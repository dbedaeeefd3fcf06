// What one kv PUT puts in the log (read off a running FT pair): the request frame, a clock
// sample, the disk write's completion and the progress mark that covers the reply. The codec's
// benchmark encodes it; the transport's sends it over the logging channel.

/** Entries in one message: a run of messages advances `seq` by this much each. */
export const KV_PUT_ENTRIES = 4;

/** The log message of the kv PUT whose first entry is `seq`, at `icount`. */
export function kvPutLogMessage(seq, icount) {
  return {
    type: 'log',
    entries: [
      { kind: 'event', seq, icount, device: 'virtio6', event: { type: 'frame', data: new Uint8Array(74) } },
      {
        kind: 'event',
        seq: seq + 1,
        icount,
        device: '@machine',
        event: { type: 'clock-track', data: [6_000_000_000 + seq, 4382] },
      },
      {
        kind: 'event',
        seq: seq + 2,
        icount: icount + 29_000,
        device: 'virtio7',
        event: {
          type: 'request-completed',
          data: { id: seq, status: 0, data: null, early: true, appliedThrough: seq - 1 },
        },
      },
      { kind: 'progress', seq: seq + KV_PUT_ENTRIES - 1, icount: icount + 32_000 },
    ],
  };
}
