/**
 * The demo's report: one self-contained HTML document (uPlot's script and styles inlined, no
 * network needed to open it) with the run's settings, its verdict, six plots over time with the
 * events marked, and the event list. Node-only: uPlot is read from node_modules when rendering.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pageScript } from './page-script.js';
import { eventColor, type PlotSpec, reportPlots } from './plots.js';
import type { DemoReportData } from './report-data.js';

/** Text made safe for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * JSON for a `<script type="application/json">` block: every `<` escaped, so that no text in the
 * data can close the block (`</script>`) or open a comment in it. `JSON.parse` reads it unchanged.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

interface Assets {
  readonly script: string;
  readonly style: string;
  readonly version: string;
}

let assets: Assets | undefined;

/** uPlot's browser build and styles, read once from node_modules. */
function chartAssets(): Assets {
  if (assets !== undefined) return assets;
  // `__filename` in a CommonJS build (where `import.meta` is empty), this module's URL otherwise.
  const require = createRequire(typeof __filename === 'string' ? __filename : import.meta.url);
  const read = (specifier: string) => readFileSync(require.resolve(specifier), 'utf8');
  const script = read('uplot/dist/uPlot.iife.min.js');
  const style = read('uplot/dist/uPlot.min.css');
  const version = (JSON.parse(read('uplot/package.json')) as { version: string }).version;
  // Inlined as they are: they must not be able to end their own element.
  if (/<\/script|<!--/i.test(script) || /<\/style/i.test(style))
    throw new Error('uPlot build contains text that would end its inline element');
  assets = { script, style, version };
  return assets;
}

/** The page's own styles; event kinds in the colours their lines are drawn in. */
const pageStyle = `
:root { color-scheme: light; --fg: #1d2125; --muted: #5c646c; --line: #d6dade; --pass: #1b7f3b; --fail: #b42318; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
main { max-width: 1560px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.7rem; margin: 0 0 12px; }
h2 { font-size: 1.25rem; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 0 0 2px; }
pre { margin: 0; padding: 8px 12px; background: #f4f5f7; border: 1px solid var(--line); border-radius: 4px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
code { font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { text-align: left; vertical-align: top; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); }
thead th { border-bottom: 2px solid var(--line); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.verdict { margin: 16px 0 8px; padding: 12px 16px; border-radius: 6px; color: #fff; font-size: 1.4rem; font-weight: 700; letter-spacing: 0.02em; }
.verdict.pass { background: var(--pass); }
.verdict.fail { background: var(--fail); }
.ok { color: var(--pass); font-weight: 600; }
.bad { color: var(--fail); font-weight: 600; }
.legend-events { display: flex; flex-wrap: wrap; gap: 4px 18px; margin: 4px 0 8px; padding: 0; list-style: none; color: var(--muted); }
.swatch { display: inline-block; width: 14px; height: 0; margin-right: 6px; vertical-align: middle; border-top: 3px dashed; }
${[
  ['fault', 'fault'],
  ['go-live', 'go-live'],
  ['clone', 'clone-started'],
  ['halted', 'halted'],
  ['other', 'note'],
]
  .map(([name, kind]) => `.kind-${name} { color: ${eventColor(kind!)}; }`)
  .join('\n')}
figure.plot-figure { margin: 20px 0 0; }
figure.plot-figure p { margin: 0 0 6px; color: var(--muted); font-size: 0.9rem; }
.plot { width: 100%; min-height: 60px; }
.plot .no-data, .plot .plot-pending { margin: 0; padding: 20px; border: 1px dashed var(--line); border-radius: 4px; color: var(--muted); text-align: center; }
.uplot { font-family: inherit; }
.u-legend { font-size: 13px; }
`;

function formatNumber(value: number, decimals = 0): string {
  return Number.isFinite(value)
    ? value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
    : String(value);
}

/** "2 min 5.3 s (125 300 ms)" */
function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const seconds = ms / 1000;
  const readable =
    seconds >= 60
      ? `${Math.floor(seconds / 60)} min ${formatNumber(seconds % 60, 1)} s`
      : `${formatNumber(seconds, seconds < 10 ? 3 : 1)} s`;
  return `${readable} (${formatNumber(ms)} ms)`;
}

function kindClass(kind: string): string {
  if (kind === 'fault' || kind === 'go-live' || kind === 'halted') return `kind-${kind}`;
  if (kind === 'clone-started' || kind === 'clone-finished') return 'kind-clone';
  return 'kind-other';
}

function settingsTable(settings: DemoReportData['settings']): string {
  const entries = Object.entries(settings);
  if (entries.length === 0) return '<p>No settings recorded.</p>';
  const rows = entries
    .map(
      ([name, value]) =>
        `<tr><th scope="row">${escapeHtml(name)}</th><td>${escapeHtml(String(value))}</td></tr>`,
    )
    .join('\n');
  return `<table class="settings">
<thead><tr><th scope="col">Setting</th><th scope="col">Value</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
}

function verdictSection(verdict: DemoReportData['verdict']): string {
  const failed = verdict.checks.filter((check) => !check.ok).length;
  const summary = verdict.ok
    ? `PASS: all ${verdict.checks.length} checks held`
    : `FAIL: ${failed} of ${verdict.checks.length} checks failed`;
  const rows = verdict.checks
    .map(
      (check) =>
        `<tr><th scope="row">${escapeHtml(check.name)}</th><td class="${check.ok ? 'ok' : 'bad'}">${
          check.ok ? '✓ pass' : '✗ FAIL'
        }</td><td>${escapeHtml(check.detail)}</td></tr>`,
    )
    .join('\n');
  const table =
    verdict.checks.length === 0
      ? '<p>No checks were recorded.</p>'
      : `<table class="checks">
<thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Detail</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`;
  return `<section aria-labelledby="verdict-heading">
<h2 id="verdict-heading">Verdict</h2>
<p class="verdict ${verdict.ok ? 'pass' : 'fail'}" role="status" id="verdict" data-ok="${verdict.ok}">${summary}</p>
${table}
</section>`;
}

function plotFigure(plot: PlotSpec): string {
  const body =
    plot.points === 0
      ? '<p class="no-data">no data</p>'
      : '<p class="plot-pending">This plot is drawn by the page’s script (JavaScript is needed to see it).</p>';
  // With no data there is nothing to draw: the container is complete as written.
  const state = plot.points === 0 ? 'data-drawn="true" data-points="0"' : 'data-drawn="false"';
  return `<figure class="plot-figure" aria-labelledby="plot-${plot.id}-title" aria-describedby="plot-${plot.id}-description">
<h3 id="plot-${plot.id}-title">${escapeHtml(plot.title)}</h3>
<p id="plot-${plot.id}-description">${escapeHtml(plot.description)}</p>
<div class="plot" id="plot-${plot.id}" data-plot="${plot.id}" ${state}>${body}</div>
</figure>`;
}

function eventsSection(data: DemoReportData): string {
  if (data.events.length === 0)
    return `<section aria-labelledby="events-heading">
<h2 id="events-heading">Events</h2>
<p>No events.</p>
</section>`;
  const rows = data.events
    .map(
      (event, index) =>
        `<tr><td class="num">${index + 1}</td><td class="num">${formatNumber(event.atMs / 1000, 3)}</td><td class="${kindClass(
          event.kind,
        )}">${escapeHtml(event.kind)}</td><td>${escapeHtml(event.text)}</td></tr>`,
    )
    .join('\n');
  return `<section aria-labelledby="events-heading">
<h2 id="events-heading">Events</h2>
<table class="events">
<thead><tr><th scope="col">#</th><th scope="col">Time (s)</th><th scope="col">Kind</th><th scope="col">What happened</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</section>`;
}

function eventLegend(): string {
  const kinds: [string, string][] = [
    ['fault', 'fault'],
    ['go-live', 'go-live'],
    ['clone-started', 'clone started / finished'],
    ['halted', 'halted'],
    ['note', 'other'],
  ];
  return `<ul class="legend-events" aria-label="Event line colours">
${kinds
  .map(
    ([kind, label]) => `<li><span class="swatch ${kindClass(kind)}" aria-hidden="true"></span>${label}</li>`,
  )
  .join('\n')}
</ul>`;
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The report as one HTML document. Everything from the data is escaped; the data itself is
 * embedded (`<script type="application/json" id="report-data">`) so the report can be re-read.
 * A content security policy allows only the page's own scripts and styles and no network at all.
 */
export function renderReport(data: DemoReportData): string {
  const { script: chartScript, style: chartStyle, version } = chartAssets();
  const plots = reportPlots(data);
  const styles = `${chartStyle}\n${pageStyle}`;
  const policy = [
    "default-src 'none'",
    `script-src ${sha256(chartScript)} ${sha256(pageScript)}`,
    `style-src ${sha256(styles)}`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');

  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(policy)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ftvm demo report (uPlot ${escapeHtml(version)})">
<title>${escapeHtml(data.title)}</title>
<style>${styles}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(data.title)}</h1>
<pre><code>${escapeHtml(data.command)}</code></pre>
<dl class="facts">
<dt>Started</dt><dd><time datetime="${escapeHtml(data.startedAt)}">${escapeHtml(data.startedAt)}</time></dd>
<dt>Duration</dt><dd>${escapeHtml(formatDuration(data.durationMs))}</dd>
<dt>Seed</dt><dd><code>${escapeHtml(String(data.seed))}</code></dd>
<dt>Samples</dt><dd>${data.samples.length}</dd>
<dt>Events</dt><dd>${data.events.length}</dd>
</dl>
</header>
<section aria-labelledby="settings-heading">
<h2 id="settings-heading">Settings</h2>
${settingsTable(data.settings)}
</section>
${verdictSection(data.verdict)}
<section aria-labelledby="plots-heading">
<h2 id="plots-heading">Over time</h2>
<p>x: seconds since the start. Events are marked by dashed lines, numbered as in the event list:</p>
${eventLegend()}
${plots.plots.map(plotFigure).join('\n')}
</section>
${eventsSection(data)}
</main>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
<script type="application/json" id="report-plots">${jsonForScript(plots)}</script>
<script>${chartScript}</script>
<script>${pageScript}</script>
</body>
</html>
`;
}
