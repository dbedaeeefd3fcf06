import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededRandom } from '@ftvm/kv-client';
import { afterAll, describe, expect, it } from 'vitest';
import { runNemesis } from '../nemesis/nemesis.js';
import { planTrial } from '../nemesis/schedule.js';
import { isMounted, tmpfsSkipReason } from '../nemesis/tmpfs.js';
import { clusterSkipReason } from './harness.js';

/**
 * The nemesis's `disk-full` fault: each host's data directory on a tmpfs of its own, the
 * primary's filled up until ENOSPC for a few seconds under kv load, with the VM's disk copies in
 * the data directories (`--disk-mode separate`). The history must pass the checker, the host must
 * live through it, and no mount may be left behind. Needs root (mount -t tmpfs): skipped, with the
 * reason in its name, where mounting is not possible.
 */

const SEED = 1;
const skip = clusterSkipReason() ?? (await tmpfsSkipReason());

describe.skipIf(skip !== undefined)(
  skip ? `the disk-full fault (skipped: ${skip})` : 'the disk-full fault',
  () => {
    const results = mkdtempSync(join(tmpdir(), 'ftvm-nemesis-results-'));
    afterAll(() => rmSync(results, { recursive: true, force: true }));

    it("fills the primary's data directory under load: a clean verdict, the host alive, no mount left", async () => {
      const shape = { orchestrators: 1, etcdMembers: 0, diskFull: true, kinds: ['disk-full'] as const };
      // The seed's first trial is one step: the primary's host's data directory, full for 3 s.
      const plan = planTrial(1, seededRandom(SEED).fork(1), shape);
      expect(plan.steps.map((step) => step.faults)).toEqual([
        [{ kind: 'disk-full', role: 'primary', ms: expect.any(Number) }],
      ]);
      const lines: string[] = [];
      const outcome = await runNemesis({
        trials: 1,
        seed: SEED,
        memory: '16M',
        diskMode: 'separate',
        faults: ['disk-full'],
        results,
        log: (line) => lines.push(line),
      });
      expect(outcome.diskFullSkipped).toBeUndefined();
      expect(outcome.failed, lines.join('\n')).toBe(0);
      const [trial] = outcome.results;
      const [fault] = trial?.faults ?? [];
      expect(fault?.kind).toBe('disk-full');
      // Filled for real: megabytes of filler, no space left.
      expect(fault?.detail, lines.join('\n')).toMatch(/^\d+\.\d MiB filler, 0 bytes left/);
      expect(trial?.aliveHosts).toContain(fault?.target);
      // Three data directories were mounted, and none is any more.
      expect(outcome.mounts).toHaveLength(3);
      for (const path of outcome.mounts) expect(await isMounted(path), path).toBe(false);
    }, 240_000);
  },
);
