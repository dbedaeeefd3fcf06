// The primary's end of the benchmark's logging channel, in a worker thread: sends a log message,
// waits for its acknowledgement, sends the next; posts its wall time when done. Run by
// round-trip.ts (through tsx's loader, so it runs from the sources).

import { parentPort, workerData } from 'node:worker_threads';
// The same message the codec's benchmark encodes.
import { KV_PUT_ENTRIES, kvPutLogMessage } from '../../log-codec/bench/kv-put-log-message.mjs';
import { connectTcp } from '../src/node/index.js';

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
