import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReport, writeReport } from '../src/report/index.js';
import { reportPlots } from '../src/report/plots.js';
import type { DemoReportData, HostSample, Sample, TimelineEvent } from '../src/report/report-data.js';

const hostileScript = '</script><script>alert(1)</script>';
const hostileImage = '<img src=x onerror="alert(2)">';

/** A seeded stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * A run as the demo records it: 120 samples 250 ms apart; host-a primary until killed at 7.9 s,
 * host-b going live at 8.4 s (no primary in between, and no answers), host-c cloned from 10 s to
 * 14 s then backup; paused at 20 s; halted at the end. Event texts carry injection attempts.
 */
function exampleData(seed = 7): DemoReportData {
  const next = random(seed);
  const jitter = (base: number, spread: number) => base + (next() - 0.5) * 2 * spread;
  const samples: Sample[] = [];
  for (let i = 0; i < 120; i++) {
    const atMs = i * 250;
    const t = atMs / 1000;
    const hosts: HostSample[] = [];
    const host = (name: string, role: string, epoch: number): HostSample => {
      const primary = role === 'primary';
      return {
        name,
        role,
        epoch,
        mips: role === 'dead' ? 0 : jitter(primary ? 42 : 38, 3),
        executionLagMs: primary ? jitter(1.2, 0.8) : 0,
        logBytesPerSecond: primary ? jitter(220_000, 40_000) : 0,
        heldOutputs: primary ? Math.floor(next() * 6) : 0,
        oldestHeldOutputMs: primary ? jitter(1.5, 1.2) : 0,
      };
    };
    if (t < 8) hosts.push(host('host-a', 'primary', 1));
    else if (t < 12) hosts.push(host('host-a', 'dead', 1));
    if (t < 8.5) hosts.push(host('host-b', 'backup', 1));
    else hosts.push(host('host-b', 'primary', 2));
    if (t >= 10 && t < 14) hosts.push(host('host-c', 'clone', 2));
    else if (t >= 14) hosts.push(host('host-c', 'backup', 2));
    const failingOver = t >= 8 && t < 8.5;
    samples.push({
      atMs,
      hosts,
      client: failingOver
        ? { opsPerSecond: 0, latencyP50Ms: 0, latencyP99Ms: 0, inFlight: 16 }
        : {
            opsPerSecond: jitter(t < 10.5 && t > 8 ? 900 : 1500, 120),
            latencyP50Ms: jitter(2.1, 0.4),
            latencyP99Ms: t > 8 && t < 9 ? jitter(480, 40) : jitter(9, 3),
            inFlight: Math.floor(next() * 16),
          },
    });
  }
  const events: TimelineEvent[] = [
    { atMs: 7_900, kind: 'fault', text: `kill host-a (primary) ${hostileScript}` },
    { atMs: 8_400, kind: 'go-live', text: 'host-b went live as epoch 2 in 3.1 ms' },
    { atMs: 10_000, kind: 'clone-started', text: `clone host-b to host-c ${hostileImage}` },
    { atMs: 14_000, kind: 'clone-finished', text: 'host-c is host-b’s backup (4.0 s, 12 MiB) & "quoted"' },
    { atMs: 20_000, kind: 'fault', text: 'pause host-c (backup) for 2 s' },
    { atMs: 29_900, kind: 'halted', text: 'the guest halted: all clients done' },
  ];
  return {
    title: 'ftvm demo: kv under failover',
    command: `npm run demo -- --seed ${seed} --hosts 3 --duration 30s --note '${hostileScript}'`,
    startedAt: '2025-01-02T03:04:05.678Z',
    durationMs: 30_000,
    seed,
    settings: {
      hosts: 3,
      clients: 16,
      'log channel': 'tls',
      'backup reads': true,
      '<b>key</b>': hostileImage,
    },
    samples,
    events,
    verdict: {
      ok: false,
      checks: [
        { name: 'no split brain', ok: true, detail: 'one primary per epoch' },
        { name: 'output rule', ok: true, detail: 'no output before its log entry was acknowledged' },
        { name: 'linearizable kv', ok: false, detail: `1 lost write ${hostileScript}` },
      ],
    },
  };
}

function emptyData(): DemoReportData {
  return {
    ...exampleData(),
    title: 'ftvm demo: nothing sampled',
    samples: [],
    events: [],
    verdict: { ok: true, checks: [] },
  };
}

/** What each plot must draw, counted from the data on its own (not from the page's plot spec). */
function expectedPoints(data: DemoReportData): Record<string, number> {
  const primaries = data.samples.filter((sample) => sample.hosts.some((host) => host.role === 'primary'));
  const positive = (value: number) => (value > 0 ? 1 : 0);
  return {
    throughput: data.samples.length,
    latency: data.samples.reduce(
      (sum, sample) => sum + positive(sample.client.latencyP50Ms) + positive(sample.client.latencyP99Ms),
      0,
    ),
    'execution-lag': primaries.length,
    'log-bandwidth': primaries.length,
    mips: data.samples.reduce((sum, sample) => sum + sample.hosts.length, 0),
    'held-outputs': 2 * primaries.length,
  };
}

const uplotScript = readFileSync(
  createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'),
  'utf8',
);

function jsonBlock(html: string, id: string): unknown {
  const match = new RegExp(`<script type="application/json" id="${id}">([^<]*)</script>`).exec(html);
  expect(match, `JSON block ${id}`).not.toBeNull();
  return JSON.parse(match![1]!);
}

describe('renderReport', () => {
  const data = exampleData();
  const html = renderReport(data);

  it('needs no network: uPlot inlined, no resource references at all', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(`<script>${uplotScript}</script>`);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<script[^>]*\ssrc\s*=/i);
    expect(html).not.toMatch(/@import|url\(/i);
    // Apart from uPlot's own source (its licence comment names its home page), no URL anywhere.
    const rest = html.replace(uplotScript, '');
    expect(rest).not.toMatch(/https?:|\/\/[a-z0-9.-]+\.[a-z]{2,}/i);
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;;/);
  });

  it('embeds the data as JSON that parses back equal', () => {
    expect(jsonBlock(html, 'report-data')).toEqual(data);
    const plots = jsonBlock(html, 'report-plots') as ReturnType<typeof reportPlots>;
    expect(plots.x).toHaveLength(120);
    expect(plots.events.map((event) => event.kind)).toEqual(data.events.map((event) => event.kind));
  });

  it('escapes everything from the data: the page has exactly its own four scripts', () => {
    expect(html.match(/<script\b/gi)).toHaveLength(4);
    expect(html.match(/<\/script/gi)).toHaveLength(4);
    expect(html.match(/<img\b/gi)).toBeNull();
    expect(html.match(/<b>/gi)).toBeNull();
    expect(html).toContain('kill host-a (primary) &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(2)&quot;&gt;');
    expect(html).toContain('&amp; &quot;quoted&quot;');
    // In the JSON blocks, every < is escaped.
    expect(html).toContain('\\u003c/script>\\u003cscript>alert(1)\\u003c/script>');
  });

  it('shows the title, command, start, duration, seed, settings, verdict and events', () => {
    expect(html).toContain('<title>ftvm demo: kv under failover</title>');
    expect(html).toContain('<h1>ftvm demo: kv under failover</h1>');
    expect(html).toMatch(/<pre><code>npm run demo -- --seed 7 --hosts 3 --duration 30s --note /);
    expect(html).toContain('2025-01-02T03:04:05.678Z');
    expect(html).toContain('30.0 s (30,000 ms)');
    expect(html).toContain('<dt>Seed</dt><dd><code>7</code></dd>');
    expect(html).toContain('<tr><th scope="row">backup reads</th><td>true</td></tr>');
    expect(html).toMatch(/class="verdict fail"[^>]*>FAIL: 1 of 3 checks failed</);
    expect(html).toContain('<tr><th scope="row">linearizable kv</th><td class="bad">✗ FAIL</td>');
    expect(html.match(/<tr><td class="num">\d+<\/td>/g)).toHaveLength(6);
    expect(html.match(/<div class="plot" id="plot-[a-z-]+"/g)).toHaveLength(6);
    const passing = renderReport({ ...data, verdict: { ok: true, checks: [] } });
    expect(passing).toMatch(/class="verdict pass"[^>]*>PASS: all 0 checks held</);
  });

  it('derives each plot from the samples: the primary’s figures, a line per host, gaps', () => {
    const { plots } = reportPlots(data);
    const expected = expectedPoints(data);
    expect(Object.fromEntries(plots.map((plot) => [plot.id, plot.points]))).toEqual(expected);
    const lag = plots.find((plot) => plot.id === 'execution-lag')!;
    // 8.0 s and 8.25 s: host-a dead, host-b not yet live: no primary.
    expect(lag.series[0]!.values.slice(31, 35).map((value) => value === null)).toEqual([
      false,
      true,
      true,
      false,
    ]);
    const mips = plots.find((plot) => plot.id === 'mips')!;
    expect(mips.series.map((series) => series.label)).toEqual(['host-a', 'host-b', 'host-c']);
    const bandwidth = plots.find((plot) => plot.id === 'log-bandwidth')!;
    expect(bandwidth.series[0]!.values[0]).toBeCloseTo(data.samples[0]!.hosts[0]!.logBytesPerSecond / 1024);
  });

  it('says "no data" for plots without data', () => {
    const empty = renderReport(emptyData());
    expect(empty.match(/data-drawn="true" data-points="0"><p class="no-data">no data<\/p>/g)).toHaveLength(6);
    expect(empty).toContain('<p>No events.</p>');
  });
});

describe('writeReport', () => {
  it('writes the report atomically, leaving no temporary file', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'ftvm-report-write-'));
    try {
      const path = join(directory, 'nested', 'report.html');
      await writeReport(path, exampleData());
      await writeReport(path, emptyData());
      expect(readFileSync(path, 'utf8')).toBe(renderReport(emptyData()));
      expect(readdirSync(join(directory, 'nested'))).toEqual(['report.html']);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

const chromiumPath = '/usr/bin/chromium';
const hasChromium = existsSync(chromiumPath);
if (!hasChromium)
  console.warn(
    `report browser tests skipped: ${chromiumPath} does not exist (node scripts/setup.mjs installs Debian's chromium)`,
  );

interface Opened {
  readonly page: Page;
  readonly problems: string[];
  readonly networkRequests: string[];
  readonly dialogs: string[];
}

describe.skipIf(!hasChromium)('the report in headless Chromium', () => {
  let browser: Browser;
  let directory: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'ftvm-report-browser-'));
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (directory && !process.env.FTVM_KEEP_REPORT) rmSync(directory, { recursive: true, force: true });
    else if (directory) console.log(`report browser test files kept in ${directory}`);
  });

  async function open(name: string, data: DemoReportData, width = 1280): Promise<Opened> {
    const path = join(directory, `${name}.html`);
    await writeReport(path, data);
    const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 2 });
    const page = await context.newPage();
    const problems: string[] = [];
    const networkRequests: string[] = [];
    const dialogs: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning')
        problems.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      networkRequests.push(url);
      return route.abort('blockedbyclient');
    });
    await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('.plot')].every((plot) => plot.getAttribute('data-drawn') === 'true'),
      undefined,
      { timeout: 20_000 },
    );
    return { page, problems, networkRequests, dialogs };
  }

  const drawnPoints = (page: Page) =>
    page.$$eval('.plot', (plots) =>
      Object.fromEntries(
        plots.map((plot) => [plot.getAttribute('data-plot'), plot.getAttribute('data-points')]),
      ),
    );

  it('draws every plot with all its points and the events, offline and without errors', async () => {
    const data = exampleData();
    const { page, problems, networkRequests, dialogs } = await open('report', data);
    const expected = expectedPoints(data);
    expect(await drawnPoints(page)).toEqual(
      Object.fromEntries(Object.entries(expected).map(([id, points]) => [id, String(points)])),
    );

    // The canvases hold the lines: pixels in each series' colour and in the event colours.
    const { plots, events } = reportPlots(data);
    for (const plot of plots) {
      const colours = [...plot.series.map((series) => series.color), ...new Set(events.map((e) => e.color))];
      const counts = await page.$eval(
        `#plot-${plot.id} canvas`,
        (element, wanted) => {
          const canvas = element as HTMLCanvasElement;
          const context = canvas.getContext('2d')!;
          const { data: pixels } = context.getImageData(0, 0, canvas.width, canvas.height);
          const targets = wanted.map((hex) =>
            [1, 3, 5].map((at) => Number.parseInt(hex.slice(at, at + 2), 16)),
          );
          const found = targets.map(() => 0);
          for (let i = 0; i < pixels.length; i += 4) {
            if (pixels[i + 3]! < 200) continue;
            targets.forEach(([r, g, b], which) => {
              const distance =
                Math.abs(pixels[i]! - r!) + Math.abs(pixels[i + 1]! - g!) + Math.abs(pixels[i + 2]! - b!);
              if (distance < 30) found[which]!++;
            });
          }
          return found;
        },
        colours,
      );
      for (const [index, count] of counts.entries())
        expect(count, `${plot.id}: pixels of ${colours[index]}`).toBeGreaterThan(20);
    }

    // The hostile texts are shown as text, not run.
    const eventTexts = await page.$$eval('table.events tbody tr td:last-child', (cells) =>
      cells.map((cell) => cell.textContent),
    );
    expect(eventTexts[0]).toBe(`kill host-a (primary) ${hostileScript}`);
    expect(await page.$$eval('script', (scripts) => scripts.length)).toBe(4);
    expect(await page.$$eval('img', (images) => images.length)).toBe(0);
    expect(dialogs).toEqual([]);

    // Widths from 1000 to 1600 px: nothing wider than the window, plots redrawn to fit.
    for (const width of [1000, 1600]) {
      await page.setViewportSize({ width, height: 900 });
      await page.waitForFunction(
        (w) =>
          [...document.querySelectorAll('.plot .uplot')].every(
            (chart) =>
              Math.abs(chart.getBoundingClientRect().width - (chart.parentElement?.clientWidth ?? 0)) < 2,
          ) && document.documentElement.scrollWidth <= w,
        width,
        { timeout: 10_000 },
      );
      expect(await drawnPoints(page)).toEqual(
        Object.fromEntries(Object.entries(expected).map(([id, points]) => [id, String(points)])),
      );
    }

    const screenshot = join(directory, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true, scale: 'css' });
    expect(statSync(screenshot).size).toBeGreaterThan(0);

    expect(problems).toEqual([]);
    expect(networkRequests).toEqual([]);
  });

  it('shows "no data" for a run with no samples, without errors', async () => {
    const { page, problems, networkRequests } = await open('empty', emptyData());
    expect(await drawnPoints(page)).toEqual({
      throughput: '0',
      latency: '0',
      'execution-lag': '0',
      'log-bandwidth': '0',
      mips: '0',
      'held-outputs': '0',
    });
    expect(await page.$$eval('.plot .no-data', (notes) => notes.map((note) => note.textContent))).toEqual(
      Array(6).fill('no data'),
    );
    expect(await page.$$eval('.plot canvas', (canvases) => canvases.length)).toBe(0);
    expect(problems).toEqual([]);
    expect(networkRequests).toEqual([]);
  });
});
