import type { Prng } from './prng.js';

/**
 * The faults a seed injects, drawn before the run starts (so a failing seed prints its whole
 * schedule). Each names a role ("the primary", "the backup") rather than a host: it hits whoever
 * holds that role when it fires, and a fault whose target does not exist then (or that would take
 * the last copy of the VM) is skipped, and the schedule says so.
 */
export type FaultKind =
  /**
   * The primary's host dies (only while its backup replicates: the VM must survive); `when:
   * after-log-send` waits for the primary's next log message and kills it right after.
   */
  | 'crash-primary'
  /** The backup's host dies. */
  | 'crash-backup'
  /** The link between primary and backup is down for a while, both ways; nothing is lost. */
  | 'partition'
  /** The logging connection drops: messages in flight are lost, both ends see an error. */
  | 'drop-connection'
  /** One frame on the logging connection is damaged: the receiver closes it with an error. */
  | 'corrupt-frame'
  /** Logging messages take much longer for a while. */
  | 'delay-spike'
  /** The arbiter cannot be reached (or its answers are lost) for a while. */
  | 'arbiter-outage'
  /** A host stops running for a while (its driver gets no events), then resumes. */
  | 'pause-host'
  /** The shared disk answers slowly for a while. */
  | 'slow-disk';

export interface PlannedFault {
  readonly atMs: number;
  readonly kind: FaultKind;
  /** How long a transient fault lasts. */
  readonly durationMs?: number;
  /** Its parameters, as drawn. */
  readonly detail: Readonly<Record<string, string | number>>;
}

const WEIGHTS: readonly (readonly [FaultKind, number])[] = [
  ['crash-primary', 3],
  ['crash-backup', 2],
  ['partition', 2],
  ['drop-connection', 2],
  ['corrupt-frame', 1],
  ['delay-spike', 2],
  ['arbiter-outage', 2],
  ['pause-host', 2],
  ['slow-disk', 1],
];

/**
 * Draws `count` faults between `fromMs` and `untilMs`; transient ones end by `untilMs`. Swarm
 * testing: each seed first draws which kinds it uses and how much (a seed of only pauses and
 * partitions finds what a balanced mix dilutes).
 */
export function planFaults(rng: Prng, count: number, fromMs: number, untilMs: number): PlannedFault[] {
  const faults: PlannedFault[] = [];
  let weights = WEIGHTS.map(
    ([kind, weight]) => [kind, rng.chance(0.75) ? weight * rng.int(1, 4) : 0] as const,
  );
  if (weights.every(([, weight]) => weight === 0)) weights = [...WEIGHTS];
  for (let index = 0; index < count; index++) {
    const atMs = Math.round(rng.between(fromMs, untilMs - 50));
    const kind = rng.weighted(weights);
    const lasting = (low: number, high: number) =>
      Math.max(1, Math.min(Math.round(rng.between(low, high)), untilMs - atMs));
    switch (kind) {
      case 'crash-primary':
        faults.push({
          atMs,
          kind,
          detail: { link: rng.pick(['cut', 'silent']), when: rng.pick(['now', 'after-log-send']) },
        });
        break;
      case 'crash-backup':
        faults.push({ atMs, kind, detail: { link: rng.pick(['cut', 'silent']) } });
        break;
      case 'partition':
        // Right after an acknowledgement leaves, it is held: the primary gets it only at the end.
        faults.push({
          atMs,
          kind,
          durationMs: lasting(20, 1500),
          detail: { when: rng.pick(['now', 'after-ack-send']) },
        });
        break;
      case 'drop-connection':
        faults.push({ atMs, kind, detail: {} });
        break;
      case 'corrupt-frame':
        faults.push({ atMs, kind, detail: { direction: rng.pick(['primary→backup', 'backup→primary']) } });
        break;
      case 'delay-spike':
        faults.push({ atMs, kind, durationMs: lasting(50, 1500), detail: { extraMs: rng.int(10, 400) } });
        break;
      case 'arbiter-outage':
        faults.push({
          atMs,
          kind,
          durationMs: lasting(50, 1500),
          detail: {
            mode: rng.weighted([
              ['unreachable', 3],
              ['lost-replies', 1],
            ]),
            clients: rng.pick(['all', 'primary', 'backup']),
          },
        });
        break;
      case 'pause-host':
        faults.push({
          atMs,
          kind,
          durationMs: lasting(20, 1500),
          detail: { role: rng.pick(['primary', 'backup']) },
        });
        break;
      case 'slow-disk':
        faults.push({ atMs, kind, durationMs: lasting(100, 2000), detail: { latencyMs: rng.int(2, 60) } });
        break;
    }
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

export function formatFault(fault: PlannedFault): string {
  const parts = [`t=${fault.atMs}ms`, fault.kind];
  if (fault.durationMs !== undefined) parts.push(`for ${fault.durationMs}ms`);
  for (const [name, value] of Object.entries(fault.detail)) parts.push(`${name}=${value}`);
  return parts.join(' ');
}
