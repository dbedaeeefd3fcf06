#!/usr/bin/env node
// Where one thread's CPU goes, per request, from Linux perf's on-CPU samples (which, unlike
// `node --cpu-prof`, never count a thread that waits for a core or sleeps): for each function on
// the sampled stacks, the CPU it and its callees took per request. JavaScript frames need the
// process started with `node --perf-basic-prof`. Kernel time and native frames are exact; a
// JavaScript frame's name can be stale where V8 reused the address of freed code (a compiler
// frame in a warm run is such a one). docs/benchmarks.md quotes it.
//
//   perf record -F 1999 -g -p PID -o perf.data -- sleep 5
//   perf script -i perf.data -F tid,ip,sym,dso > perf.txt
//   node scripts/perf-per-request.mjs perf.txt TID CPU_MS_PER_REQUEST [ROWS]
//
// TID and the thread's CPU per request come from packages/ft/bench/kv-load.ts.
import { readFileSync } from 'node:fs';

const [file, tid, msText, rowsText] = process.argv.slice(2);
if (file === undefined || tid === undefined || msText === undefined) {
  console.error('usage: node scripts/perf-per-request.mjs PERF_SCRIPT_OUTPUT TID CPU_MS_PER_REQUEST [ROWS]');
  process.exit(64);
}
const usPerRequest = Number(msText) * 1000;
const rows = Number(rowsText ?? 40);

/** A frame worth a row: JavaScript, or the native doors to the kernel and to other threads. */
const NATIVE = ['PostMessage', 'WriteBuffer', 'OnStreamRead', 'uv__io_poll', 'uv__run_check', 'Runtime_'];

const inclusive = new Map();
let samples = 0;
let kernelOnTop = 0;
let stack;
const finish = () => {
  if (!stack || stack.tid !== tid) return;
  samples++;
  if (stack.frames[0]?.includes('[kernel.kallsyms]')) kernelOnTop++;
  const seen = new Set();
  for (const frame of stack.frames) {
    // "addr symbol (dso)" → the symbol, without the file URL's directories and column.
    const symbol = frame
      .replace(/^\S+\s+/, '')
      .replace(/ \([^)]*\)$/, '')
      .replace(/file:\/\/\/\S*?\/packages\//, '')
      .replace(/:\d+:\d+$/, '');
    if (!symbol.startsWith('JS:') && !NATIVE.some((name) => symbol.includes(name))) continue;
    if (seen.has(symbol)) continue;
    seen.add(symbol);
    inclusive.set(symbol, (inclusive.get(symbol) ?? 0) + 1);
  }
};
for (const line of readFileSync(file, 'utf8').split('\n')) {
  if (line.trim() === '') {
    finish();
    stack = undefined;
  } else if (stack === undefined) stack = { tid: line.trim().split(/\s+/)[0], frames: [] };
  else stack.frames.push(line.trim());
}
finish();
if (samples === 0) {
  console.error(`no samples of thread ${tid} in ${file}`);
  process.exit(1);
}
const row = (count, what) =>
  `${((usPerRequest * count) / samples).toFixed(1).padStart(7)} µs ${((100 * count) / samples).toFixed(1).padStart(5)} %  ${what}`;
console.log(`thread ${tid}: ${samples} samples, ${usPerRequest.toFixed(1)} µs of CPU per request`);
console.log(row(kernelOnTop, '(in the kernel)'));
for (const [symbol, count] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
  console.log(row(count, symbol));
}
