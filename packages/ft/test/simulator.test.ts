// The seeded simulator (src/simulator): a batch of seeds with faults must find nothing wrong, a
// seed must replay exactly, and deliberately broken runs must be caught.
import { describe, expect, it } from 'vitest';
import {
  FOUND_BUGS,
  formatSeedReport,
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

  for (const seed of [1, 2, 3]) {
    it(
      `seed ${seed}, the backup reading the shared disk itself`,
      async () => {
        const result = await runSeed(seed, { diskMode: 'backup-reads' });
        expect(result.failures, report(result)).toEqual([]);
        expect(result.config).toMatch(/diskMode=backup-reads/);
      },
      TIMEOUT_MS,
    );
  }

  // Seeds that clone (seed 3's only failover is the final one).
  for (const seed of [1, 2, 4]) {
    it(
      `seed ${seed}, each host with a disk of its own (clones get the primary's copy)`,
      async () => {
        const result = await runSeed(seed, { diskMode: 'separate' });
        expect(result.failures, report(result)).toEqual([]);
        expect(result.config).toMatch(/diskMode=separate/);
        expect(result.statistics.clones).toBeGreaterThan(0);
        // The clones' disks came over in the transfer (their copies start empty).
        expect(result.trace.some((line) => /clone-finished .*"diskBytesSent":[1-9]/.test(line))).toBe(true);
        // Without a final failover the backup replicates at the end: its copy was compared.
        if (result.config.includes('finalFailover=false')) {
          expect(
            result.trace.some((line) => /disk: the backup \S+'s copy matches its primary's/.test(line)),
          ).toBe(true);
        }
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
    "a backup's disk copy that differs from its primary's (separate disks; a byte flipped before the comparison)",
    async () => {
      // Seed 3 draws backup reads and a final failover; the sabotage makes it separate, without.
      const result = await runSeed(3, { sabotage: 'disk-copy' });
      expect(result.config).toMatch(/finalFailover=false.*diskMode=separate/);
      expect(result.ok).toBe(false);
      expect(result.failures.join('\n')).toMatch(
        /disk: the backup \S+'s copy differs from its primary \S+'s at byte/,
      );
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
 * Scenarios of the bugs the simulator found (FOUND_BUGS): each of these seeds failed, with its
 * hand-written schedule, on the code before the fix named there, and must pass now.
 */
describe('regressions: the bugs the simulator found stay fixed', () => {
  const cases: {
    bug: keyof typeof FOUND_BUGS;
    seed: number;
    options: SimulatorOptions;
    failedWith: string;
  }[] = [
    {
      // A clone of a primary under load: the last pages must include what pending inputs wrote.
      bug: 'clone-pending-input',
      seed: 1,
      options: { diskMode: 'shared', schedule: [{ atMs: 337, kind: 'drop-connection', detail: {} }] },
      failedWith: 'clone host-c does not start where host-a was at the transfer: RAM differ',
    },
    {
      // The backup's test-and-set wins but its answer is lost; asked again, it halted.
      bug: 'arbiter-lost-reply',
      seed: 1,
      options: {
        diskMode: 'shared',
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
      failedWith: 'liveness: requests unanswered; arbiter: epoch 2 owned by host-b, halted',
    },
    {
      // The same on a paused primary's check of its epoch: it halted on its own (lost) win.
      bug: 'arbiter-lost-reply',
      seed: 1,
      options: {
        diskMode: 'shared',
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
      failedWith: 'liveness: host-a (old primary: halted); arbiter: epoch 2 owned by host-a',
    },
    {
      // An acknowledgement held by a partition reached the primary, still suspecting (it could not
      // reach the arbiter), after its backup took over: its late frame took the guest's MAC back.
      bug: 'suspecting-release',
      seed: 3,
      options: {
        diskMode: 'shared',
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
      failedWith: 'liveness: requests unanswered',
    },
    {
      // A primary paused right after a log send handled the acknowledgement before the pause.
      bug: 'resume-ack-release',
      seed: 3,
      options: { diskMode: 'shared', schedule: PAUSE_AFTER_LOG },
      failedWith: 'liveness: requests unanswered',
    },
    {
      // The same, seen on an unfenced shared disk: a write of the deposed primary landed late.
      bug: 'resume-ack-release',
      seed: 2,
      options: { diskMode: 'shared', schedule: PAUSE_AFTER_LOG, fencing: false },
      failedWith: 'late write: host-a wrote 1536 bytes for epoch 1, after epoch 2 went live',
    },
  ];
  for (const { bug, seed, options, failedWith } of cases) {
    it(
      `${bug} (seed ${seed}${options.fencing === false ? ', no fencing' : ''}; failed with "${failedWith}" before ${FOUND_BUGS[bug].fixedIn})`,
      async () => {
        const result = await runSeed(seed, options);
        expect(result.failures, report(result)).toEqual([]);
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
