import type { SeededRandom } from '@ftvm/kv-client';

/**
 * The nemesis's schedule: which faults each trial injects, and when, drawn from a seeded PRNG
 * only (the same seed, the same schedule). Faults name roles, not hosts ("the primary's host"):
 * which host that is is resolved when the fault is injected.
 *
 * A trial is one or two steps. A step injects one fault, or a host fault together with a fault of
 * the control plane (an orchestrator, or an etcd member). Two host faults never overlap: the
 * design tolerates one failed host at a time, and the next step starts only once the VM is fault
 * tolerant again.
 */

export type HostRole = 'primary' | 'backup' | 'spare';

export type Fault =
  /** `kill -9` of the host running `role`; the host is restarted (same --name, --data) after `restartAfterMs`. */
  | { readonly kind: 'kill-host'; readonly role: 'primary' | 'backup'; readonly restartAfterMs: number }
  /** `SIGSTOP` of the host running `role` for `pauseMs` (longer than the failure timeout), then `SIGCONT`. */
  | { readonly kind: 'pause-host'; readonly role: HostRole; readonly pauseMs: number }
  /**
   * A partition of the logging channel between the primary and its backup for `ms` (through the
   * primary's host's fault-injection proxy): each side suspects the other, both ask the arbiter,
   * exactly one wins and the other halts.
   */
  | { readonly kind: 'partition'; readonly ms: number }
  /** `kill -9` of orchestrator `index` (1-based), restarted with its command after `restartAfterMs`. */
  | { readonly kind: 'kill-orchestrator'; readonly index: number; readonly restartAfterMs: number }
  /** `kill -9` of etcd member `index` (1-based), restarted after `restartAfterMs` (etcd mode only). */
  | { readonly kind: 'kill-etcd'; readonly index: number; readonly restartAfterMs: number }
  /**
   * The data directory of the host running `role` fills up for `ms` (a filler file on its own
   * tmpfs, written until ENOSPC), then space comes back (the filler is deleted). Only when the
   * nemesis could mount the hosts' data directories on tmpfs (root).
   */
  | { readonly kind: 'disk-full'; readonly role: 'primary' | 'backup'; readonly ms: number };

export type FaultKind = Fault['kind'];
export const FAULT_KINDS: readonly FaultKind[] = [
  'kill-host',
  'pause-host',
  'partition',
  'disk-full',
  'kill-orchestrator',
  'kill-etcd',
];

export interface Step {
  /** How long to wait before injecting (after the load runs, or after the previous step healed). */
  readonly delayMs: number;
  /** Injected together. */
  readonly faults: readonly Fault[];
}

export interface TrialPlan {
  readonly trial: number;
  /** Seeds the trial's kv load. */
  readonly loadSeed: number;
  readonly steps: readonly Step[];
}

export interface ScheduleShape {
  readonly orchestrators: number;
  /** etcd members (0 with the embedded store). */
  readonly etcdMembers: number;
  /** Whether `disk-full` can be injected (the hosts' data directories are tmpfs mounts). */
  readonly diskFull?: boolean;
  /** Only these kinds are drawn (default: every kind the shape allows). */
  readonly kinds?: readonly FaultKind[];
}

/**
 * A SIGSTOP lasts from well over the VM's failure timeout (300 ms) to past the orchestrator's host
 * lease: sometimes the orchestrator sees the host die, sometimes only its VM role's peer does.
 */
export const PAUSE_MS_MIN = 2_000;
export const PAUSE_MS_MAX = 6_000;
const RESTART_AFTER_MS_MIN = 200;
const RESTART_AFTER_MS_MAX = 3_000;

function between(random: SeededRandom, min: number, max: number): number {
  return min + random.below(max - min + 1);
}

/** A partition lasts from past the failure timeout to a few seconds. */
export const PARTITION_MS_MIN = 1_000;
export const PARTITION_MS_MAX = 4_000;

/** A full data directory lasts from a few heartbeats to several seconds. */
export const DISK_FULL_MS_MIN = 2_000;
export const DISK_FULL_MS_MAX = 8_000;

/** The host faults a shape allows, as the indices `hostFault` draws from (kept stable: the same seed, the same schedule). */
function hostChoices(shape: ScheduleShape): number[] {
  const kinds: FaultKind[] = ['kill-host', 'kill-host', 'pause-host', 'partition'];
  if (shape.diskFull) kinds.push('disk-full');
  return kinds.flatMap((kind, index) => (allowed(shape, kind) ? [index] : []));
}

function allowed(shape: ScheduleShape, kind: FaultKind): boolean {
  if (kind === 'disk-full' && !shape.diskFull) return false;
  if (kind === 'kill-etcd' && shape.etcdMembers === 0) return false;
  return shape.kinds === undefined || shape.kinds.includes(kind);
}

function hostFault(random: SeededRandom, choices: readonly number[]): Fault {
  // With the four classic kinds this is `random.below(4)`, as before disk-full existed.
  const choice = choices[random.below(choices.length)] as number;
  if (choice === 4)
    return {
      kind: 'disk-full',
      role: random.below(2) === 0 ? 'primary' : 'backup',
      ms: between(random, DISK_FULL_MS_MIN, DISK_FULL_MS_MAX),
    };
  if (choice === 3) return { kind: 'partition', ms: between(random, PARTITION_MS_MIN, PARTITION_MS_MAX) };
  if (choice === 0)
    return {
      kind: 'kill-host',
      role: 'primary',
      restartAfterMs: between(random, RESTART_AFTER_MS_MIN, RESTART_AFTER_MS_MAX),
    };
  if (choice === 1)
    return {
      kind: 'kill-host',
      role: 'backup',
      restartAfterMs: between(random, RESTART_AFTER_MS_MIN, RESTART_AFTER_MS_MAX),
    };
  const roles: HostRole[] = ['primary', 'primary', 'backup', 'backup', 'spare'];
  return {
    kind: 'pause-host',
    role: roles[random.below(roles.length)] as HostRole,
    pauseMs: between(random, PAUSE_MS_MIN, PAUSE_MS_MAX),
  };
}

function controlPlaneFault(random: SeededRandom, shape: ScheduleShape): Fault {
  const restartAfterMs = between(random, RESTART_AFTER_MS_MIN, RESTART_AFTER_MS_MAX);
  const etcd = allowed(shape, 'kill-etcd');
  if (etcd && (!allowed(shape, 'kill-orchestrator') || random.below(2) === 0))
    return { kind: 'kill-etcd', index: 1 + random.below(shape.etcdMembers), restartAfterMs };
  return { kind: 'kill-orchestrator', index: 1 + random.below(shape.orchestrators), restartAfterMs };
}

/** The plan of trial `trial` (1-based), from `random` (a stream of its own for this trial). */
export function planTrial(trial: number, random: SeededRandom, shape: ScheduleShape): TrialPlan {
  const choices = hostChoices(shape);
  const controlPlane = allowed(shape, 'kill-orchestrator') || allowed(shape, 'kill-etcd');
  if (choices.length === 0 && !controlPlane) throw new Error('the schedule allows no fault kind');
  const loadSeed = random.uint32();
  const stepCount = random.below(10) < 6 ? 1 : 2;
  const steps: Step[] = [];
  for (let index = 0; index < stepCount; index++) {
    const delayMs = random.below(1_500);
    const faults: Fault[] = [];
    // The draws of the schedule before disk-full existed: without it, a seed keeps its schedule.
    const hostStep = random.below(10) < 7;
    if ((hostStep || !controlPlane) && choices.length > 0) {
      faults.push(hostFault(random, choices));
      if (random.below(10) < 3 && controlPlane) faults.push(controlPlaneFault(random, shape));
    } else {
      faults.push(controlPlaneFault(random, shape));
    }
    steps.push({ delayMs, faults });
  }
  return { trial, loadSeed, steps };
}

/** A fault as the trial's line shows it. */
export function describeFault(fault: Fault, target?: string): string {
  const on = target ? ` ${target}` : '';
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  switch (fault.kind) {
    case 'kill-host':
      return `kill -9 ${fault.role}'s host${on} (restart after ${seconds(fault.restartAfterMs)})`;
    case 'pause-host':
      return `SIGSTOP ${fault.role}'s host${on} for ${seconds(fault.pauseMs)}`;
    case 'partition':
      return `partition the logging channel at${on || ' the primary'} for ${seconds(fault.ms)}`;
    case 'kill-orchestrator':
      return `kill -9 orchestrator o${fault.index} (restart after ${seconds(fault.restartAfterMs)})`;
    case 'kill-etcd':
      return `kill -9 etcd e${fault.index} (restart after ${seconds(fault.restartAfterMs)})`;
    case 'disk-full':
      return `fill the data directory of the ${fault.role}'s host${on} for ${seconds(fault.ms)}`;
  }
}
