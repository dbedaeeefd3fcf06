import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo.js';
import { main } from '../src/index.js';
import { checkFaults, parseKill, parseListen, parsePartition, parsePause } from '../src/options.js';

/** Collects what the demo's view writes (not a terminal: JSON lines). */
function sink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return {
    stream,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}

describe('the demo', () => {
  it('kills the primary, then the new backup: the backup goes live, redundancy comes back, the verdict is clean', async () => {
    const out = sink();
    const result = await runDemo(
      {
        seconds: 22,
        faults: [parseKill('primary@4s'), parseKill('backup@14s')],
        seed: 3,
        clients: 3,
        kernel: undefined,
        diskMode: 'shared',
        transport: 'memory',
        failureTimeoutMs: 500,
        report: undefined,
        listen: { host: '127.0.0.1', port: 0 },
        load: true,
        command: 'ftvm demo --seconds 22 --kill primary@4s --kill backup@14s',
      },
      out.stream,
    );
    const kinds = result.report.events.map((event) => event.kind);
    expect(kinds).toEqual(expect.arrayContaining(['fault', 'go-live', 'clone-finished']));
    expect(result.verdict?.acknowledged).toBeGreaterThan(100);
    expect(result.report.verdict.checks.filter((check) => !check.ok)).toEqual([]);
    expect(result.ok).toBe(true);
    expect(result.report.samples.length).toBeGreaterThan(20);
    // Not a terminal: structured lines, the verdict last.
    const lines = out.lines();
    expect(lines.at(-1)).toMatchObject({ msg: 'verdict: PASS', ok: true });
  }, 120_000);

  it('npm run demo writes the report it is asked for, and exits 0 on a clean verdict', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftvm-demo-'));
    const report = join(dir, 'report.html');
    const status = await main([
      'node',
      'demo',
      '--seconds',
      '8',
      '--kill',
      'primary@3s',
      '--transport',
      'tcp',
      '--report',
      report,
    ]);
    expect(status).toBe(0);
    expect(existsSync(report)).toBe(true);
    expect(readFileSync(report, 'utf8')).toContain('<html');
  }, 90_000);

  // The same schedule twice: the logging channel holds everything for 1.5 s (shorter than the
  // failure timeout, so nobody is suspected) and the primary dies in the middle of it. Built
  // right, the outputs of that second wait for acknowledgements that never come, so the clients
  // lose nothing; with the rule broken on purpose they were told of writes the backup never saw,
  // and the verdict must say so: the checker can fail.
  const brokenOrNot = (sabotage: 'release-early' | undefined) =>
    runDemo(
      {
        seconds: 12,
        faults: [parsePartition('4s+1500ms'), parseKill('primary@5s')],
        seed: 5,
        clients: 3,
        kernel: undefined,
        diskMode: 'shared',
        transport: 'tcp',
        failureTimeoutMs: 2000,
        report: undefined,
        listen: { host: '127.0.0.1', port: 0 },
        load: true,
        command: 'ftvm demo --seconds 12 --partition 4s+1500ms --kill primary@5s --failure-timeout 2000',
        ...(sabotage === undefined ? {} : { sabotage }),
      },
      sink().stream,
    );

  it('a primary that dies during a partition loses nothing: its outputs waited for the log', async () => {
    const result = await brokenOrNot(undefined);
    expect(result.report.events.map((event) => event.kind)).toContain('go-live');
    expect(result.report.verdict.checks.filter((check) => !check.ok)).toEqual([]);
    expect(result.ok).toBe(true);
  }, 120_000);

  it('the verdict catches a build that releases outputs before their log is acknowledged', async () => {
    const result = await brokenOrNot('release-early');
    expect(result.report.events.map((event) => event.kind)).toContain('go-live');
    expect(result.ok).toBe(false);
    const failed = result.report.verdict.checks.filter((check) => !check.ok).map((check) => check.name);
    expect(failed.some((name) => name === 'acknowledged writes lost' || name === 'INCR exactly once')).toBe(
      true,
    );
  }, 120_000);

  it('refuses a bad schedule with a usage error', async () => {
    expect(await main(['node', 'demo', '--seconds', '5', '--kill', 'primary@30s'])).toBe(64);
    expect(await main(['node', 'demo', '--kill', 'nobody@3s'])).toBe(64);
    expect(await main(['node', 'demo', '--transport', 'carrier-pigeon'])).toBe(64);
  });
});

describe('fault schedules as the issue spells them', () => {
  it('parses kill, pause, partition and listen', () => {
    expect(parseKill('primary@12s')).toEqual({ kind: 'kill', target: 'primary', atMs: 12_000 });
    expect(parseKill('backup@20s')).toEqual({ kind: 'kill', target: 'backup', atMs: 20_000 });
    expect(parsePause('primary@5s+1s')).toEqual({
      kind: 'pause',
      target: 'primary',
      atMs: 5000,
      forMs: 1000,
    });
    expect(parsePartition('8s+2s')).toEqual({ kind: 'partition', atMs: 8000, forMs: 2000 });
    expect(parsePartition('500ms+1.5s')).toEqual({ kind: 'partition', atMs: 500, forMs: 1500 });
    expect(parseListen('127.0.0.1:5555')).toEqual({ host: '127.0.0.1', port: 5555 });
    expect(() => parseKill('primary')).toThrow(/ROLE@TIME/);
    expect(() => parsePause('primary@5s')).toThrow(/ROLE@TIME\+DURATION/);
    expect(() => checkFaults([parseKill('primary@40s')], 30)).toThrow(/after the run ends/);
  });
});
