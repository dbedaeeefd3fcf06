// The primary's end of the benchmark's logging channel, in a worker thread: sends a log message,
// waits for its acknowledgement, sends the next; posts its wall time when done. Run by
// round-trip.ts (through tsx's loader, so it runs from the sources).

import { parentPort, workerData } from 'node:worker_threads';
import type { FtMessage } from '@ftvm/core';
import { connectTcp } from '../src/node/index.js';

/**
 * What one kv PUT puts in the log (read off a running pair): the request frame, a clock sample,
 * the disk write's completion and the progress mark that covers the reply.
 */
export function kvPutLogMessage(seq: number, icount: number): FtMessage {
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
      { kind: 'progress', seq: seq + 3, icount: icount + 32_000 },
    ],
  };
}

export const KV_PUT_ENTRIES = 4;

if (parentPort && workerData?.kind === 'channel') {
  const port = parentPort;
  const { serverPort, roundTrips, handshake } = workerData;
  const channel = await connectTcp({ host: '127.0.0.1', port: serverPort, handshake });
  let seq = 0;
  let icount = 1000;
  let left: number = roundTrips;
  port.postMessage('ready');
  const started = performance.now();
  const send = (): void => {
    channel.send(kvPutLogMessage(seq, icount));
    seq += KV_PUT_ENTRIES;
    icount += 40_000;
  };
  channel.onMessage((message) => {
    if (message.type !== 'ack') return;
    if (--left > 0) {
      send();
      return;
    }
    port.postMessage(performance.now() - started);
    channel.close();
  });
  send();
}
