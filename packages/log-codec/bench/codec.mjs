// Encode and decode throughput of the log codec, and bytes per entry by kind (long streams, as a
// record file holds); then the cost of one small message as the logging channel sends them (a kv
// PUT's log message and its acknowledgement, where per-message work dominates).
// Run: npm run bench -w @ftvm/log-codec   (uses the built package: npm run build first)
import { writeFileSync } from 'node:fs';
import { decodeEntries, encodeEntries, MessageDecoder, MessageEncoder } from '../dist/index.js';
import { KV_PUT_ENTRIES, kvPutLogMessage } from './kv-put-log-message.mjs';

const COUNT = 1_000_000;

function makeEntries(kind) {
  const entries = new Array(COUNT);
  let icount = 0;
  for (let seq = 0; seq < COUNT; seq++) {
    icount += 1 + (seq % 5000);
    const mixed = kind === 'mixed' ? ['nondet', 'event', 'progress'][seq % 3] : kind;
    switch (mixed) {
      case 'nondet':
        entries[seq] = {
          kind: 'nondet',
          seq,
          icount,
          device: 'clint',
          key: 'monotonic-ns',
          value: icount * 10,
        };
        break;
      case 'event':
        entries[seq] = {
          kind: 'event',
          seq,
          icount,
          device: 'clint',
          event: { type: 'timer-fired', data: icount },
        };
        break;
      case 'progress':
        entries[seq] = { kind: 'progress', seq, icount };
        break;
      case 'checkpoint':
        entries[seq] = { kind: 'checkpoint', seq, icount, stateHash: new Uint8Array(16).fill(seq & 255) };
        break;
    }
  }
  return entries;
}

function time(action) {
  const start = process.hrtime.bigint();
  const result = action();
  return { result, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

const results = {};
for (const kind of ['mixed', 'nondet', 'event', 'progress', 'checkpoint']) {
  const entries = makeEntries(kind);
  encodeEntries(entries.slice(0, 10_000)); // warm up
  const encoded = time(() => encodeEntries(entries));
  const decoded = time(() => decodeEntries(encoded.result));
  if (decoded.result.length !== COUNT) throw new Error('decode lost entries');
  const bytes = encoded.result.length;
  results[kind] = {
    entries: COUNT,
    bytesPerEntry: +(bytes / COUNT).toFixed(2),
    encodeEntriesPerSecond: Math.round(COUNT / encoded.seconds),
    encodeMegabytesPerSecond: +(bytes / encoded.seconds / 1e6).toFixed(1),
    decodeEntriesPerSecond: Math.round(COUNT / decoded.seconds),
    decodeMegabytesPerSecond: +(bytes / decoded.seconds / 1e6).toFixed(1),
  };
  const r = results[kind];
  console.log(
    `${kind.padEnd(10)} ${r.bytesPerEntry} B/entry  encode ${(r.encodeEntriesPerSecond / 1e6).toFixed(2)} M entries/s ` +
      `(${r.encodeMegabytesPerSecond} MB/s)  decode ${(r.decodeEntriesPerSecond / 1e6).toFixed(2)} M entries/s ` +
      `(${r.decodeMegabytesPerSecond} MB/s)`,
  );
}

const MESSAGES = 200_000;
/** Per-message cost: the best of three runs (a collection in the middle of one says little). */
function perMessage(make) {
  const messages = Array.from({ length: MESSAGES }, (_, index) => make(index));
  const warm = new MessageEncoder();
  const warmDecoder = new MessageDecoder();
  for (const message of messages.slice(0, 20_000)) warmDecoder.push(warm.encode(message));
  let best;
  for (let run = 0; run < 3; run++) {
    const encoder = new MessageEncoder();
    const decoder = new MessageDecoder();
    const encoded = time(() => messages.map((message) => encoder.encode(message)));
    const decoded = time(() => {
      let count = 0;
      for (const bytes of encoded.result) count += decoder.push(bytes).length;
      return count;
    });
    if (decoded.result !== MESSAGES) throw new Error('decode lost messages');
    best = {
      // The mean: the first messages' small sequence numbers encode in fewer bytes.
      bytes: +(encoded.result.reduce((sum, bytes) => sum + bytes.length, 0) / MESSAGES).toFixed(1),
      encodeMicroseconds: Math.min(
        best?.encodeMicroseconds ?? Infinity,
        +((encoded.seconds * 1e6) / MESSAGES).toFixed(2),
      ),
      decodeMicroseconds: Math.min(
        best?.decodeMicroseconds ?? Infinity,
        +((decoded.seconds * 1e6) / MESSAGES).toFixed(2),
      ),
    };
  }
  return best;
}
const messageResults = {
  kvPutLog: perMessage((index) => kvPutLogMessage(index * KV_PUT_ENTRIES, 1000 + index * 40_000)),
  ack: perMessage((index) => ({
    type: 'ack',
    receivedSeq: (index + 1) * KV_PUT_ENTRIES - 1,
    appliedSeq: index * KV_PUT_ENTRIES,
    appliedIcount: index * 40_000,
  })),
};
for (const [name, r] of Object.entries(messageResults)) {
  console.log(
    `${name.padEnd(10)} one message: ${r.bytes} B  encode ${r.encodeMicroseconds} µs  decode ${r.decodeMicroseconds} µs`,
  );
}

writeFileSync(
  new URL('./results.json', import.meta.url),
  `${JSON.stringify({ node: process.version, results, messages: messageResults }, null, 2)}\n`,
);
