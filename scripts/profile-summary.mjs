#!/usr/bin/env node
// Where a `node --cpu-prof` profile of ftvm spent its time, by part of the system: guest code in
// compiled regions, the CPU's dispatch and interpreter, the devices, the network model, host
// sockets and disk, the machine's loop, GC, idle. Each sample goes to the innermost frame that
// belongs to a part (so Node internals called by a device count as the device's), except host
// socket sends and disk writes, which count as host I/O. docs/benchmarks.md quotes it.
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof apps/cli/bin/ftvm.js run …
//   node scripts/profile-summary.mjs /tmp/prof/CPU.*.cpuprofile [FROM_S TO_S]
//
// FROM_S and TO_S keep the samples in that window of the profile (seconds from its start): the
// cold and the warm phase of a run, say.
import { readFileSync } from 'node:fs';

const [file, fromText, toText] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: node scripts/profile-summary.mjs FILE.cpuprofile [FROM_S TO_S]');
  process.exit(64);
}
const from = Number(fromText ?? 0) * 1e6;
const to = toText === undefined ? Number.POSITIVE_INFINITY : Number(toText) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
const parents = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);

const COMPILER = new Set(['compileBlock', 'compileBlockAt', 'emit', 'emitUnit', 'jump', 'staticTargets']);
const DISPATCH = new Set(['executeSteps', 'run', 'executeRare', 'fetchPage', 'decodeSlot']);

/** The part a frame belongs to, or undefined for frames of no part (Node's own, anonymous). */
function partOf({ functionName: name, url }) {
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8 and native code (program)';
  if (name.startsWith('region')) return 'guest code: compiled regions';
  if (url.includes('cpu-riscv')) {
    if (COMPILER.has(name)) return 'region compiler';
    if (DISPATCH.has(name)) return 'CPU dispatch and interpreter';
    return 'CPU slow paths (MMIO, TLB, CSRs, traps)';
  }
  if (url.includes('file-block-backend')) return 'host disk I/O';
  if (url.includes('packages/devices')) return 'devices (virtio, UART, PLIC, …)';
  if (url.includes('packages/net')) return 'network model (switch, NAT, forwards)';
  if (url.includes('packages/machine')) return 'machine loop (slices, guest time, events, outputs)';
  if (url.includes('packages/log-codec') || url.includes('msgpackr')) return 'log codec';
  if (url.includes('packages/ft') || url.includes('packages/transport')) return 'fault tolerance (log, acks)';
  if (url.includes('apps/cli')) return 'CLI';
  return undefined;
}

const totals = new Map();
let time = 0;
profile.samples.forEach((sample, index) => {
  const delta = profile.timeDeltas[index] ?? 0;
  time += delta;
  if (time < from || time > to) return;
  const leaf = nodes.get(sample).callFrame;
  let part;
  if (leaf.url === 'node:dgram' || (leaf.functionName === 'doSend' && leaf.url.includes('dgram'))) {
    part = 'host UDP sockets (node:dgram)';
  } else if (
    ['writeBuffer', 'writeSync', 'readSync', 'fsync'].includes(leaf.functionName) &&
    leaf.url === ''
  ) {
    part = 'host disk I/O';
  } else {
    for (let id = sample; id !== undefined && part === undefined; id = parents.get(id)) {
      part = partOf(nodes.get(id).callFrame);
    }
    part ??= 'Node internals (timers, modules, promises)';
  }
  totals.set(part, (totals.get(part) ?? 0) + delta);
});
const total = [...totals.values()].reduce((sum, value) => sum + value, 0);
console.log(`${(total / 1000).toFixed(0)} ms of samples`);
for (const [part, value] of [...totals].sort((a, b) => b[1] - a[1])) {
  console.log(
    `${(value / 1000).toFixed(0).padStart(8)} ms ${((100 * value) / total).toFixed(1).padStart(5)} %  ${part}`,
  );
}
