// The seeded simulator (src/simulator): a batch of seeds with faults must find nothing wrong, a
// seed must replay exactly, and deliberately broken runs must be caught.
import { describe, expect, it } from 'vitest';
import {
  formatSeedReport,
  KNOWN_BUGS,
  main,
  type PlannedFault,
  runSeed,
  type SeedResult,
  type SimulatorOptions,
} from '../src/simulator/index.js';

/** Seeds every test run goes through (CI runs more with `npm run simulate`). */
const SEEDS = Array.from({ length: 20 }, (_, index) => index + 1);
const TIMEOUT_MS = 180_000;

const report = (result: SeedResult) => `\n${formatSeedReport(result)}`;

describe('the simulator: seeded runs of a fault-tolerant kv VM with faults', () => {
  for (const seed of SEEDS) {
    it(
      `seed ${seed}`,
      async () => {
        const result = await runSeed(seed);
        expect(result.failures, report(result)).toEqual([]);
        expect(result.statistics.answered).toBe(result.statistics.requests);
      },
      TIMEOUT_MS,
    );
  }

  it(
    'replays a seed exactly: same trace, same digest',
    async () => {
      const first = await runSeed(5);
      const second = await runSeed(5);
      expect(second.digest).toBe(first.digest);
      expect(second.trace).toEqual(first.trace);
      expect({ ...second.statistics, realMs: 0 }).toEqual({ ...first.statistics, realMs: 0 });
      expect(first.schedule.length).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );
});

describe('the checkers catch a broken run', () => {
  it(
    'an output released before the backup acknowledged its log (a wrapped deliver releases one frame early)',
    async () => {
      const result = await runSeed(3, { sabotage: 'release-early' });
      expect(result.ok).toBe(false);
      expect(result.failures.join('\n')).toMatch(/output rule: host-a \(epoch 1\) released a .*frame output/);
    },
    TIMEOUT_MS,
  );

  it(
    'an acknowledged write that later reads do not see (a fabricated lost write)',
    async () => {
      const result = await runSeed(3, { sabotage: 'lost-write' });
      expect(result.ok).toBe(false);
      expect(result.failures.join('\n')).toMatch(/kv: k0: lost write: sabotage#1 PUT k0 fabricated/);
    },
    TIMEOUT_MS,
  );
});

/** A primary that stops for 1.5 s right after it sent log (acknowledgements are in flight). */
const PAUSE_AFTER_LOG: PlannedFault[] = [
  { atMs: 1000, kind: 'pause-host', durationMs: 1500, detail: { role: 'primary', when: 'after-log-send' } },
];

/**
 * Bugs of @ftvm/ft that the simulator works around by default (KNOWN_BUGS), each shown by a
 * scenario: without the workarounds the seed fails, with them it passes. When a test here fails
 * because the seed passes without its workaround, the bug was fixed: remove the workaround from the
 * simulator and the case from here.
 */
describe('known bugs show without the workarounds', () => {
  const cases: {
    bug: keyof typeof KNOWN_BUGS;
    seed: number;
    options: SimulatorOptions;
    failure: RegExp;
  }[] = [
    {
      // The backup's test-and-set wins but its answer is lost; asked again, it halts.
      bug: 'arbiter-lost-reply',
      seed: 1,
      options: {
        schedule: [
          {
            atMs: 500,
            kind: 'arbiter-outage',
            durationMs: 1500,
            detail: { mode: 'lost-replies', clients: 'all' },
          },
          { atMs: 600, kind: 'crash-primary', detail: { link: 'cut', when: 'now' } },
        ],
      },
      failure: /liveness: .*unanswered.*arbiter: epoch 2 owned by host-b/,
    },
    {
      // The same on a paused primary's check of its epoch: it halts on its own (lost) win.
      bug: 'arbiter-lost-reply',
      seed: 1452,
      options: {
        schedule: [
          {
            atMs: 374,
            kind: 'arbiter-outage',
            durationMs: 1281,
            detail: { mode: 'unreachable', clients: 'backup' },
          },
          {
            atMs: 744,
            kind: 'arbiter-outage',
            durationMs: 993,
            detail: { mode: 'lost-replies', clients: 'all' },
          },
          { atMs: 880, kind: 'crash-backup', detail: { link: 'cut' } },
          {
            atMs: 1064,
            kind: 'arbiter-outage',
            durationMs: 1374,
            detail: { mode: 'unreachable', clients: 'primary' },
          },
          { atMs: 1146, kind: 'pause-host', durationMs: 1286, detail: { role: 'primary', when: 'now' } },
        ],
      },
      failure: /liveness: .*host-a \(old primary: halted\).*arbiter: epoch 2 owned by host-a/,
    },
    {
      // An acknowledgement held by a partition reaches the primary, still suspecting (it cannot
      // reach the arbiter), after its backup took over: its late frame takes the guest's MAC back.
      bug: 'suspecting-release',
      seed: 2,
      options: {
        schedule: [
          {
            atMs: 900,
            kind: 'arbiter-outage',
            durationMs: 2000,
            detail: { mode: 'unreachable', clients: 'primary' },
          },
          { atMs: 1000, kind: 'partition', durationMs: 1500, detail: { when: 'after-ack-send' } },
        ],
      },
      failure: /liveness: .*unanswered/,
    },
    {
      // The deposed primary's late frame takes the guest's MAC back: nobody answers any more.
      bug: 'resume-ack-release',
      seed: 6,
      options: { schedule: PAUSE_AFTER_LOG },
      failure: /liveness: .*unanswered/,
    },
    {
      // The same, seen on an unfenced shared disk: a write of the deposed primary lands late.
      bug: 'resume-ack-release',
      seed: 3,
      options: { schedule: PAUSE_AFTER_LOG, fencing: false },
      failure: /late write: host-a wrote .* for epoch 1, after epoch 2 went live/,
    },
  ];
  for (const { bug, seed, options, failure } of cases) {
    it(
      `${bug} (seed ${seed}${options.fencing === false ? ', no fencing' : ''})`,
      async () => {
        const result = await runSeed(seed, { ...options, workarounds: false });
        expect(result.failures.join('\n'), `${bug} seems fixed: ${KNOWN_BUGS[bug]}`).toMatch(failure);
        const worked = await runSeed(seed, options);
        expect(worked.failures, report(worked)).toEqual([]);
        expect(worked.statistics.workaroundsApplied).toBeGreaterThan(0);
      },
      TIMEOUT_MS,
    );
  }
});

describe('npm run simulate', () => {
  it(
    'ends with the summary line and exit status 0 when every seed passed',
    async () => {
      const lines: string[] = [];
      const status = await main(['--seeds', '1', '--from', '9'], (text) => lines.push(text));
      expect(lines.at(-1)).toBe('simulate: 1 seeds, 0 failed');
      expect(lines[0]).toMatch(/^seed 9: ok /);
      expect(status).toBe(0);
    },
    TIMEOUT_MS,
  );

  it(
    'reports a failing seed with its schedule and how to reproduce it, and exits non-zero',
    async () => {
      const lines: string[] = [];
      const status = await main(['--seeds', '1', '--from', '3', '--sabotage', 'release-early'], (text) =>
        lines.push(text),
      );
      const output = lines.join('\n');
      expect(output).toMatch(/seed 3 FAILED/);
      expect(output).toMatch(/fault schedule \(\d+\):/);
      expect(output).toMatch(/reproduce: npm run simulate -- --seeds 1 --from 3 --sabotage release-early/);
      expect(lines.at(-1)).toBe('simulate: 1 seeds, 1 failed');
      expect(status).toBe(1);
    },
    TIMEOUT_MS,
  );
});
