import type { HostView, VmView } from '../src/index.js';
import type { ProcessCluster } from '../test/harness.js';

/**
 * Watches a VM through the orchestrator's API while the nemesis works: `GET /v1/hosts` and
 * `GET /v1/vms/NAME` every ~100 ms. It checks, on every answer, that no two hosts report the
 * primary role of the VM with the same epoch (at most one primary per epoch, so at most one
 * emits output), and that the primary's epoch in the VM's view never goes back; and it tracks since
 * when the VM has been seen fault tolerant without a break (an unanswered poll is a break).
 */

export interface Violation {
  /** ms since the observer started. */
  readonly atMs: number;
  readonly kind: 'two-primaries-in-one-epoch' | 'primary-epoch-went-back';
  readonly detail: string;
}

/** A change of what the VM's view shows (or of whether the orchestrator answers). */
export interface TimelineEntry {
  readonly atMs: number;
  readonly state: string;
}

const POLL_INTERVAL_MS = 100;

export class Observer {
  readonly #cluster: ProcessCluster;
  readonly #vm: string;
  readonly #originMs = performance.now();
  #running = false;
  #loop: Promise<void> | undefined;
  #violations: Violation[] = [];
  #timeline: TimelineEntry[] = [];
  #lastState = '';
  #highestEpoch = 0;
  #reported = new Set<string>();
  /** performance.now() since when every answer said fault tolerant; undefined after a no or no answer. */
  faultTolerantSince: number | undefined;
  /** The last view answered. */
  view: VmView | undefined;
  /** The hosts alive in the last answer. */
  aliveHosts: readonly string[] = [];

  constructor(cluster: ProcessCluster, vm: string) {
    this.#cluster = cluster;
    this.#vm = vm;
  }

  /** The highest primary epoch the view has shown. */
  get highestEpoch(): number {
    return this.#highestEpoch;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** ms since the observer started (the time base of violations and the timeline). */
  now(): number {
    return performance.now() - this.#originMs;
  }

  /** The violations since the last call, and the timeline since then. */
  take(): { violations: Violation[]; timeline: TimelineEntry[] } {
    const taken = { violations: this.#violations, timeline: this.#timeline };
    this.#violations = [];
    this.#timeline = [];
    return taken;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const started = performance.now();
      try {
        const client = await this.#cluster.client();
        const [hosts, view] = await Promise.all([
          client.call<HostView[]>('GET', '/v1/hosts'),
          client.call<VmView>('GET', `/v1/vms/${this.#vm}`),
        ]);
        this.#check(hosts, view);
      } catch (error) {
        this.faultTolerantSince = undefined;
        this.#cluster.forgetClient();
        this.#note(`no answer (${(error as Error).message.slice(0, 80)})`);
      }
      const elapsed = performance.now() - started;
      await new Promise((resolve) => setTimeout(resolve, Math.max(10, POLL_INTERVAL_MS - elapsed)));
    }
  }

  #check(hosts: readonly HostView[], view: VmView): void {
    const at = performance.now();
    this.view = view;
    this.aliveHosts = hosts.filter((host) => host.alive).map((host) => host.name);
    // At most one primary per epoch, over every host the orchestrator knows (alive or not).
    const primaries = new Map<number, string[]>();
    for (const host of hosts) {
      for (const role of host.roles) {
        if (role.vm !== this.#vm || role.role !== 'primary') continue;
        primaries.set(role.epoch, [...(primaries.get(role.epoch) ?? []), host.name]);
      }
    }
    for (const [epoch, names] of primaries) {
      if (names.length < 2) continue;
      const key = `two:${epoch}:${names.join(',')}`;
      if (this.#reported.has(key)) continue;
      this.#reported.add(key);
      this.#violations.push({
        atMs: this.now(),
        kind: 'two-primaries-in-one-epoch',
        detail: `hosts ${names.join(' and ')} both report the primary of ${this.#vm} at epoch ${epoch}: ${JSON.stringify(
          hosts.map((host) => ({
            name: host.name,
            alive: host.alive,
            roles: host.roles.filter((role) => role.vm === this.#vm),
          })),
        )}`,
      });
    }
    // The primary's epoch in the VM's view only ever increases.
    if (view.primary) {
      if (view.primary.epoch < this.#highestEpoch) {
        const key = `back:${view.primary.epoch}:${this.#highestEpoch}`;
        if (!this.#reported.has(key)) {
          this.#reported.add(key);
          this.#violations.push({
            atMs: this.now(),
            kind: 'primary-epoch-went-back',
            detail: `the view shows the primary on ${view.primary.host} at epoch ${view.primary.epoch}, after epoch ${this.#highestEpoch}`,
          });
        }
      }
      this.#highestEpoch = Math.max(this.#highestEpoch, view.primary.epoch);
    }
    if (view.faultTolerant) this.faultTolerantSince ??= at;
    else this.faultTolerantSince = undefined;
    const role = (part: VmView['primary']) => (part ? `${part.host}@${part.epoch}` : '-');
    this.#note(
      `${view.state}${view.faultTolerant ? ' fault-tolerant' : ''} primary ${role(view.primary)} backup ${role(
        view.backup,
      )}${view.cloning ? ` cloning to ${view.cloning.host}` : ''}; alive ${this.aliveHosts.join(',')}`,
    );
  }

  #note(state: string): void {
    if (state === this.#lastState) return;
    this.#lastState = state;
    this.#timeline.push({ atMs: Math.round(this.now()), state });
  }
}
