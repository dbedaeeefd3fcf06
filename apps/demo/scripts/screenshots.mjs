#!/usr/bin/env node
/**
 * The README's two pictures of the demo: its live view on a terminal and its HTML report, both
 * from one real default run (`npm run build` first; Debian's chromium, which `node
 * scripts/setup.mjs` installs). Usage: node apps/demo/scripts/screenshots.mjs [OUT_DIR]
 * (default docs/images). The terminal is emulated just far enough for the view's own escape codes
 * (cursor up, clear line, bold and colours), then drawn as HTML.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { DEFAULT_FAULTS, runDemo, writeReport } from '../dist/index.js';

const out = resolve(process.argv[2] ?? 'docs/images');
mkdirSync(out, { recursive: true });

const ESC = '\u001b';

/** The screen the view draws on: lines of text that keep their SGR codes. */
const screen = [];
let row = 0;
let pending = '';
const terminal = new Writable({
  write(chunk, _encoding, done) {
    pending += chunk.toString();
    // Cursor up N lines (to column 0), clear the line, or a newline; anything else is text.
    const pattern = new RegExp(`${ESC}\\[(\\d+)F|${ESC}\\[2K|\\n|([^${ESC}\\n]+|${ESC}\\[[0-9;]*m)`, 'gy');
    let match = pattern.exec(pending);
    let consumed = 0;
    while (match) {
      consumed = pattern.lastIndex;
      if (match[1] !== undefined) row = Math.max(0, row - Number(match[1]));
      else if (match[0] === `${ESC}[2K`) screen[row] = '';
      else if (match[0] === '\n') row += 1;
      else screen[row] = (screen[row] ?? '') + match[0];
      match = pattern.exec(pending);
    }
    pending = pending.slice(consumed);
    done();
  },
});
terminal.isTTY = true;

const seconds = 30;
const options = {
  seconds,
  faults: DEFAULT_FAULTS,
  seed: 1,
  clients: 4,
  kernel: undefined,
  diskMode: 'shared',
  transport: 'tcp',
  failureTimeoutMs: 300,
  report: undefined,
  listen: { host: '127.0.0.1', port: 0 },
  load: true,
  command: 'ftvm demo',
};
const result = await runDemo(options, terminal);
console.log(`demo: verdict ${result.ok ? 'PASS' : 'FAIL'}`);

const escapeHtml = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const colours = { 1: 'font-weight:bold', 31: 'color:#ff6b6b', 32: 'color:#69db7c' };
function toHtml(line) {
  let html = '';
  let open = 0;
  for (const part of line.split(new RegExp(`(${ESC}\\[[0-9;]*m)`))) {
    const sgr = new RegExp(`^${ESC}\\[([0-9;]*)m$`).exec(part);
    if (!sgr) html += escapeHtml(part);
    else if (sgr[1] === '0' || sgr[1] === '') {
      html += '</span>'.repeat(open);
      open = 0;
    } else {
      html += `<span style="${colours[sgr[1]] ?? ''}">`;
      open += 1;
    }
  }
  return html + '</span>'.repeat(open);
}
const page = `<!doctype html><meta charset="utf-8"><style>
body{margin:0;background:#1e1e1e}
pre{margin:0;padding:16px 20px;color:#e0e0e0;font:14px/1.35 "DejaVu Sans Mono",monospace;display:inline-block}
</style><pre>${screen.map((line) => toHtml(line ?? '')).join('\n')}</pre>`;

const work = mkdtempSync(join(tmpdir(), 'ftvm-screenshots-'));
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});
try {
  const viewPath = join(work, 'view.html');
  const reportPath = join(work, 'report.html');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(viewPath, page);
  await writeReport(reportPath, result.report);
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, deviceScaleFactor: 1 });
  const tab = await context.newPage();
  await tab.goto(pathToFileURL(viewPath).href);
  await (await tab.$('pre')).screenshot({ path: join(out, 'demo-live-view.png') });
  await tab.goto(pathToFileURL(reportPath).href);
  await tab.waitForFunction(() =>
    [...document.querySelectorAll('.plot')].every((plot) => plot.getAttribute('data-drawn') === 'true'),
  );
  // The top of the report: the run, its verdict and the first plots.
  await tab.screenshot({
    path: join(out, 'demo-report.png'),
    fullPage: true,
    clip: { x: 0, y: 0, width: 1200, height: 1750 },
  });
  console.log(`screenshots: ${join(out, 'demo-live-view.png')}, ${join(out, 'demo-report.png')}`);
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
