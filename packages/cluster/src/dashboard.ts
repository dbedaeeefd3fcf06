import { createServer, type Server } from 'node:http';
import { type Listening, listening } from './http.js';

/**
 * The orchestrator's dashboard: one self-contained page (no network needed) that polls the
 * orchestrator's state every second and shows hosts, VMs, roles, epochs, execution lag, log
 * bandwidth, and failovers and clones over time. It is served read-only over plain HTTP on its
 * own address (`--dashboard`, loopback by default), since a browser does not present the
 * cluster's client certificates.
 */
export function dashboardPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ftvm cluster</title><link rel="icon" href="data:,">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em} h2{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f0f0f0} .ok{color:#070} .bad{color:#b00} .muted{color:#888}
svg{background:#fff;border:1px solid #ddd} .legend span{margin-right:1em}
</style></head><body>
<h1>ftvm cluster</h1><div id="meta" class="muted">connecting…</div>
<h2>Virtual machines</h2><table id="vms"><thead><tr><th>VM</th><th>state</th><th>fault tolerant</th><th>primary</th><th>epoch</th><th>backup</th><th>MIPS</th><th>lag ms</th><th>log KiB/s</th><th>held</th><th>failovers</th><th>clones</th></tr></thead><tbody></tbody></table>
<h2>Hosts</h2><table id="hosts"><thead><tr><th>host</th><th>address</th><th>alive</th><th>roles</th></tr></thead><tbody></tbody></table>
<h2>Over time</h2><div class="legend"><span style="color:#1f77b4">■ MIPS</span><span style="color:#d62728">■ execution lag (ms)</span><span style="color:#2ca02c">■ log KiB/s</span><span>| failover</span><span style="color:#9467bd">| clone</span></div>
<svg id="chart" width="900" height="220" data-points="0"></svg>
<h2>Events</h2><table id="events"><thead><tr><th>time</th><th>VM</th><th>event</th><th>detail</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const history = [];
const marks = [];
const seenEvents = new Set();
function cell(text, cls) { const td = document.createElement('td'); td.textContent = String(text); if (cls) td.className = cls; return td; }
function fill(id, rows) { const body = document.querySelector('#' + id + ' tbody'); body.replaceChildren(...rows.map((cells) => { const tr = document.createElement('tr'); tr.append(...cells); return tr; })); }
function draw() {
  const svg = document.getElementById('chart'); const w = 900, h = 220, pad = 30;
  const parts = [];
  if (history.length > 1) {
    const t0 = history[0].t, t1 = history[history.length - 1].t, span = Math.max(1, t1 - t0);
    const x = (t) => pad + ((t - t0) / span) * (w - 2 * pad);
    for (const [key, color] of [['mips', '#1f77b4'], ['lag', '#d62728'], ['log', '#2ca02c']]) {
      const max = Math.max(1, ...history.map((p) => p[key]));
      const pts = history.map((p) => x(p.t).toFixed(1) + ',' + (h - pad - (p[key] / max) * (h - 2 * pad)).toFixed(1)).join(' ');
      parts.push('<polyline fill="none" stroke="' + color + '" stroke-width="1.5" points="' + pts + '"/>');
    }
    for (const m of marks) if (m.t >= t0) parts.push('<line x1="' + x(m.t) + '" x2="' + x(m.t) + '" y1="' + pad + '" y2="' + (h - pad) + '" stroke="' + (m.kind === 'failover' ? '#000' : '#9467bd') + '"/>');
    parts.push('<text x="' + pad + '" y="' + (h - 8) + '" font-size="11">' + new Date(t0).toLocaleTimeString() + '</text><text x="' + (w - pad - 60) + '" y="' + (h - 8) + '" font-size="11">' + new Date(t1).toLocaleTimeString() + '</text>');
  }
  svg.innerHTML = parts.join('');
  svg.dataset.points = String(history.length);
}
async function tick() {
  try {
    const response = await fetch('state', { cache: 'no-store' });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const state = await response.json();
    document.getElementById('meta').textContent = (state.leader ? 'leader' : 'follower') + ' · store: ' + state.store + ' · ' + new Date(state.nowMs).toLocaleTimeString();
    fill('vms', state.vms.map((vm) => [cell(vm.name), cell(vm.state), cell(vm.faultTolerant ? 'yes' : 'no', vm.faultTolerant ? 'ok' : 'bad'),
      cell(vm.primary ? vm.primary.host : '—'), cell(vm.primary ? vm.primary.epoch : '—'), cell(vm.backup ? vm.backup.host : (vm.cloning ? 'cloning to ' + vm.cloning.host : '—')),
      cell(vm.figures ? vm.figures.mips.toFixed(1) : '—'), cell(vm.figures ? vm.figures.executionLagMs.toFixed(1) : '—'),
      cell(vm.figures ? (vm.figures.logBytesPerSecond / 1024).toFixed(1) : '—'), cell(vm.figures ? vm.figures.heldOutputs : '—'), cell(vm.failovers), cell(vm.clones)]));
    fill('hosts', state.hosts.map((host) => [cell(host.name), cell(host.address), cell(host.alive ? 'yes' : 'no (' + Math.round(host.lastSeenMsAgo / 1000) + ' s)', host.alive ? 'ok' : 'bad'),
      cell(host.roles.map((r) => r.vm + ':' + r.role + '@' + r.epoch).join(', ') || '—')]));
    const vm = state.vms[0];
    if (vm && vm.figures) history.push({ t: state.nowMs, mips: vm.figures.mips, lag: vm.figures.executionLagMs, log: vm.figures.logBytesPerSecond / 1024 });
    if (history.length > 600) history.shift();
    const events = state.vms.flatMap((v) => v.events).sort((a, b) => a.atMs - b.atMs);
    for (const e of events) { const key = e.atMs + e.vm + e.kind + e.detail; if (!seenEvents.has(key)) { seenEvents.add(key); if (e.kind === 'failover' || e.kind === 'clone-finished') marks.push({ t: e.atMs, kind: e.kind }); } }
    fill('events', events.slice(-30).reverse().map((e) => [cell(new Date(e.atMs).toLocaleTimeString()), cell(e.vm), cell(e.kind), cell(e.detail)]));
    draw();
  } catch (error) {
    document.getElementById('meta').textContent = 'orchestrator unreachable: ' + error.message;
  }
}
tick();
setInterval(tick, 1000);
</script></body></html>`;
}

/** Serves the dashboard and its state read-only on `host:port`. */
export async function serveDashboard(
  address: { host: string; port: number },
  state: () => unknown,
): Promise<Listening<Server>> {
  const page = dashboardPage();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname;
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    } else if (path === '/state') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify(state()));
    } else {
      res.writeHead(404).end();
    }
  });
  return listening(server, address);
}
