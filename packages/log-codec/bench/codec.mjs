// Encode and decode throughput of the log codec, and bytes per entry by kind.
// Run: npm run bench -w @ftvm/log-codec   (uses the built package: npm run build first)
import { writeFileSync } from 'node:fs';
import { decodeEntries, encodeEntries } from '../dist/index.js';

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
writeFileSync(
  new URL('./results.json', import.meta.url),
  `${JSON.stringify({ node: process.version, results }, null, 2)}\n`,
);
