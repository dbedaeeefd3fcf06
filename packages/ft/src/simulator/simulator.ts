import { readFileSync } from 'node:fs';
import { MemoryArbiter, MemoryArbiterStore } from '@ftvm/arbiter';
import type { ArbiterResult, FtMessage } from '@ftvm/core';
import { MemoryBlockBackend, VirtioBlock, VirtioMmioTransport, VirtioNet } from '@ftvm/devices';
import { imagePath } from '@ftvm/guests';
import { Machine, type MachineOutput } from '@ftvm/machine';
import type { SwitchLink } from '@ftvm/net';
import { type BackupEnd, type BackupMachineHooks, FtBackup } from '../backup.js';
import type { FtConfig } from '../config.js';
import { blockOptionsFor, type DiskMode, holdUntilAppliedFor } from '../disk-modes.js';
import type { FtEvent } from '../events.js';
import { FtPrimary, type PrimaryEnd, type PrimaryMachineHooks } from '../primary.js';
import { TrackedDisk } from '../tracked-disk.js';
import { SimLink } from './channel.js';
import { checkKvHistory, ReleaseChecker } from './checkers.js';
import { SimDisk, SimSharedDisk } from './disk.js';
import { formatFault, type PlannedFault, planFaults } from './faults.js';
import { COUNTER_KEYS, KvClient, type KvRequest, REGISTER_KEYS } from './kv-client.js';
import { readKvDisk } from './kv-disk.js';
import { EventLoop, SimHost } from './loop.js';
import { SimNetwork } from './network.js';
import { Prng } from './prng.js';

/**
 * A seeded simulation of a fault-tolerant kv VM, in the style of TigerBeetle's VOPR: one seed, one
 * pseudo-random generator, one virtual-time event loop, and everything real — `FtPrimary` and
 * `FtBackup` with their cores, `Machine`s running kv.elf with a virtio-net NIC and a virtio-blk
 * disk shared by every host, the `MemoryArbiter`, the `UserGateway` and `VirtualSwitch` — except
 * the hosts, the logging channels, the disk's latency and the clients, which are simulated. The
 * seed draws a configuration and a fault schedule; the simulator plays the orchestrator (it clones
 * a new backup whenever the primary runs alone) and checkers watch every output and the clients'
 * history. The same seed replays exactly.
 */

/** Ways to break a run on purpose, to see the checkers catch it. */
export type Sabotage =
  /** The first frame the primary produces leaves before the backup acknowledged its log. */
  | 'release-early'
  /** The history gets an acknowledged PUT that the server never saw (a fabricated lost write). */
  | 'lost-write'
  /**
   * One byte of the backup's own disk is flipped just before it is compared with its primary's (a
   * write the backup never applied). The run has separate disks and no final failover.
   */
  | 'disk-copy';

/** Every {@link Sabotage}, for the command line. */
export const SABOTAGES: readonly Sabotage[] = ['release-early', 'lost-write', 'disk-copy'];

export interface SimulatorOptions {
  /** Virtual time the clients make requests, ms (default 6000). Faults fall in its first two thirds. */
  readonly durationMs?: number;
  /** Inject faults (default true). */
  readonly faults?: boolean;
  /** How many faults at most (default 8; the seed draws 0..this). */
  readonly faultsMax?: number;
  /**
   * The paper's disk mode: `shared` (the backup's device does no IO, read data travels in the
   * log), `backup-reads` (the backup reads the shared disk itself; the primary's writes wait
   * until the backup executed past them) or `separate` (each host has a disk of its own; the
   * backup applies the guest's writes to its copy, and a clone gets the primary's copy in the
   * state transfer). Default: drawn with the seed (one seed in four reads, one in four separate).
   */
  readonly diskMode?: DiskMode;
  /** A fault schedule to play instead of the one the seed draws (a scenario written by hand). */
  readonly schedule?: readonly PlannedFault[];
  readonly sabotage?: Sabotage;
  /** kv.elf's bytes (default: read from @ftvm/guests). */
  readonly image?: Uint8Array;
  /** Called with each trace line as it happens (the trace is kept in the result anyway). */
  readonly onTrace?: (line: string) => void;
  /**
   * Fence the shared disk by epoch, as the node deployment does (default true): a backup that goes
   * live refuses writes from older epochs. False lets such late writes land, and they fail the seed.
   */
  readonly fencing?: boolean;
}

/**
 * Bugs of @ftvm/ft the simulator found, all fixed since (test/simulator.test.ts keeps a scenario of
 * each that failed before the fix).
 */
export const FOUND_BUGS = {
  'clone-pending-input': {
    fixedIn: '8efa157',
    what: "primary.ts #cloneStep collected the clone's last dirty pages before machine.saveTransferState(), which applies pending host inputs (a received frame's DMA into guest RAM): those pages never reached the clone, which diverged.",
  },
  'arbiter-lost-reply': {
    fixedIn: 'a1642d8',
    what: 'primary-core.ts / backup-core.ts: a test-and-set that won but whose answer was lost, asked again, answered won: false with the record naming this very host, and the role halted as if the other side had won (also a paused primary checking its epoch): the VM was lost.',
  },
  'suspecting-release': {
    fixedIn: 'a1642d8',
    what: "primary-core.ts: a primary suspecting its backup still released what a late acknowledgement covered (one held by a partition); after a takeover its late frame moved the guest's MAC in the switch back to its port, and the new primary got no more requests.",
  },
  'resume-ack-release': {
    fixedIn: 'a1642d8',
    what: 'primary.ts / primary-core.ts: a paused primary noticed the pause only in tick(); an acknowledgement handled first released outputs although the backup had taken over: a late frame as above, a late write on an unfenced shared disk.',
  },
} as const;

export interface SeedStatistics {
  readonly virtualMs: number;
  readonly realMs: number;
  readonly events: number;
  readonly guestSteps: number;
  readonly requests: number;
  readonly answered: number;
  readonly retries: number;
  readonly failovers: number;
  readonly clones: number;
  readonly faultsApplied: number;
  readonly outputsReleased: number;
  readonly datagramsLost: number;
  /** Outputs a primary released after the arbiter had moved the epoch past its own. */
  readonly lateReleases: number;
}

export interface SeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failures: readonly string[];
  /** The drawn configuration, one line. */
  readonly config: string;
  /** The fault schedule, each line with what became of it. */
  readonly schedule: readonly string[];
  readonly statistics: SeedStatistics;
  /** A digest of the run: the same seed gives the same digest. */
  readonly digest: string;
  /** What happened, with virtual times. */
  readonly trace: readonly string[];
}

export type { DiskMode };

/** What a seed draws before the run. */
interface SeedConfig {
  readonly clock: 'host' | 'icount';
  readonly checkpointIntervalSteps: number;
  readonly ft: Partial<FtConfig>;
  readonly linkLatencyNs: readonly [number, number];
  readonly nsPerByte: number;
  readonly clientLatencyNs: readonly [number, number];
  readonly nicLatencyNs: number;
  readonly datagramLossRate: number;
  readonly arbiterLatencyMs: number;
  readonly diskLatencyNs: readonly [number, number];
  readonly clients: number;
  readonly thinkNs: number;
  readonly retryNs: number;
  readonly finalFailover: boolean;
  readonly diskMode: DiskMode;
}

const VM_ID = 'vm1';
const RAM_SIZE_BYTES = 8 * 1024 * 1024;
/** kv.elf needs 1537 sectors. */
const DISK_SIZE_BYTES = 1600 * 512;
/** The disk mode a seed runs, by its checkpoint interval in thousands of steps, modulo 4. */
const DISK_MODE_BY_RESIDUE: readonly DiskMode[] = ['shared', 'separate', 'shared', 'backup-reads'];
const NET_SLOT = 6;
const DISK_SLOT = 7;
/** How long after the load ends outstanding requests may take, ms. */
const DRAIN_MS = 8000;
/** How long after the faults end redundancy may take to come back, ms. */
const REDUNDANCY_MS = 6000;
/** How long a backup may take to go live in the final failover, ms. */
const TAKEOVER_MS = 4000;
const AUDIT_MS = 6000;
/** The go-live announcements (gratuitous ARP), as QEMU's self-announce rounds, ms after go-live. */
const ANNOUNCE_AT_MS = [0, 50, 150, 300, 550];

let cachedImage: Uint8Array | undefined;

function kvImage(): Uint8Array {
  cachedImage ??= new Uint8Array(readFileSync(imagePath('kv')));
  return cachedImage;
}

/** Runs one seed: a whole simulated run with its checks. Never throws: a crash is a failure. */
export async function runSeed(seed: number, options: SimulatorOptions = {}): Promise<SeedResult> {
  const started = performance.now();
  const simulation = new Simulation(seed, options);
  const previous = current;
  current = simulation;
  try {
    await simulation.run();
  } catch (error) {
    simulation.fail(`the simulation crashed: ${describeError(error)}`);
  } finally {
    current = previous;
    simulation.dispose();
  }
  return simulation.result(performance.now() - started);
}

/** The simulation running now: where an unhandled rejection is reported. */
let current: Simulation | undefined;

/** For a process's `unhandledRejection` handler: pins it on the running seed. Returns false if none runs. */
export function reportUnhandledRejection(reason: unknown): boolean {
  if (current === undefined) return false;
  current.fail(`an unhandled promise rejection: ${describeError(reason)}`);
  return true;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return String(error);
}

/** A VM host: a simulated host with its devices, its NIC's switch port and its arbiter client. */
interface VmHost {
  readonly host: SimHost;
  readonly nic: VirtioNet;
  readonly block: VirtioBlock;
  readonly disk: SimDisk;
  /** Separate disks: this host's own copy (its bytes, and the clone's view of it). */
  readonly ownDisk: { readonly memory: MemoryBlockBackend; readonly tracked: TrackedDisk } | undefined;
  readonly nicLink: SwitchLink;
  readonly arbiter: MemoryArbiter;
  /** Set once this host runs the primary: whom its released outputs belong to. */
  primary: FtPrimary | undefined;
  machine: Machine | undefined;
  /** The host this one is cloning onto, while it does. */
  cloneTarget: VmHost | undefined;
  /** A clone: its primary's state hash where the transfer was taken. */
  expectedTransfer: { icount: number; stateHash: Uint8Array; from: string } | undefined;
}

/** A role's `disks` option: a host's own copy, which live cloning copies (separate disks only). */
function disksOf(vm: VmHost): { disks?: TrackedDisk[] } {
  return vm.ownDisk ? { disks: [vm.ownDisk.tracked] } : {};
}

interface PrimaryRole {
  readonly vm: VmHost;
  readonly driver: FtPrimary;
  /** The link to its current backup (or clone). */
  link: SimLink | undefined;
  ended: PrimaryEnd | undefined;
}

interface BackupRole {
  readonly vm: VmHost;
  readonly driver: FtBackup;
  readonly link: SimLink;
  readonly cloned: boolean;
  ended: BackupEnd | undefined;
}

class Simulation {
  readonly seed: number;
  readonly #options: SimulatorOptions;
  readonly #rng: Prng;
  readonly #loop = new EventLoop();
  readonly #config: SeedConfig;
  readonly #faults: PlannedFault[];
  readonly #outcomes: string[];
  readonly #failures: string[] = [];
  readonly #trace: string[] = [];
  readonly #network: SimNetwork;
  readonly #disk = new MemoryBlockBackend(DISK_SIZE_BYTES);
  readonly #sharedDisk: SimSharedDisk;
  readonly #store: MemoryArbiterStore;
  readonly #releases: ReleaseChecker;
  readonly #clients: KvClient[] = [];
  readonly #vms: VmHost[] = [];
  readonly #durationMs: number;
  readonly #faultsEndMs: number;
  #primary: PrimaryRole | undefined;
  #backup: BackupRole | undefined;
  #hostCount = 0;
  #cloneInFlight = false;
  #cloneAtNs: number | undefined;
  #failovers = 0;
  #clones = 0;
  #faultsApplied = 0;
  #slowDiskNs = 0;
  /** Arbiter faults that new hosts' clients get too. */
  #arbiterFault: { unreachable: boolean; loseReplies: boolean } = { unreachable: false, loseReplies: false };
  #sabotaged = false;
  #lateReleases = 0;
  /** Faults waiting for a primary's next log message. */
  #triggers: { vm: VmHost; type: 'log' | 'ack'; deadline: number; fire: () => void }[] = [];
  #console = '';
  #disposed = false;

  constructor(seed: number, options: SimulatorOptions) {
    this.seed = seed;
    this.#options = options;
    this.#rng = new Prng(seed);
    this.#durationMs = options.durationMs ?? 6000;
    this.#sharedDisk = new SimSharedDisk(this.#disk, options.fencing ?? true);
    this.#faultsEndMs = Math.round((this.#durationMs * 2) / 3);
    this.#config = this.#drawConfig();
    // A schedule written by hand draws nothing here, so it plays the same whatever the drawing does.
    if (options.schedule) this.#faults = [...options.schedule].sort((a, b) => a.atMs - b.atMs);
    else {
      const faultCount = options.faults === false ? 0 : this.#rng.int(0, options.faultsMax ?? 8);
      this.#faults = planFaults(this.#rng, faultCount, 300, this.#faultsEndMs);
    }
    this.#outcomes = this.#faults.map(() => 'not reached');
    this.#network = new SimNetwork(this.#loop, this.#rng, {
      clientLatencyNs: this.#config.clientLatencyNs,
      nicLatencyNs: this.#config.nicLatencyNs,
      datagramLossRate: this.#config.datagramLossRate,
    });
    this.#releases = new ReleaseChecker(() => this.#loop.now);
    const releases = this.#releases;
    this.#store = new (class extends MemoryArbiterStore {
      override testAndSet(vmId: string, fromEpoch: number, owner: string): ArbiterResult {
        const result = super.testAndSet(vmId, fromEpoch, owner);
        if (result.won) releases.epochWon(owner, result.record.epoch);
        return result;
      }
    })();
  }

  #drawConfig(): SeedConfig {
    const rng = this.#rng;
    const failureTimeoutMs = rng.int(100, 400);
    const heartbeatIntervalMs = rng.int(10, Math.min(60, Math.floor(failureTimeoutMs / 3)));
    const linkLow = rng.int(20, 300) * 1000;
    const ft: Partial<FtConfig> = {
      failureTimeoutMs,
      heartbeatIntervalMs,
      arbiterRetryMs: rng.int(20, 200),
      executionLagMsMax: rng.int(20, 200),
      appliedAckIntervalMs: rng.int(2, 20),
      ...(rng.chance(0.3) ? { logBufferBytesMax: rng.int(16, 256) * 1024 } : {}),
      ...(rng.chance(0.3)
        ? { cloneFinalPagesMax: rng.int(4, 64), clonePagesPerMessage: rng.int(16, 256) }
        : {}),
    };
    const clock = rng.chance(0.5) ? 'host' : 'icount';
    const checkpointIntervalSteps = rng.int(50, 500) * 1000;
    return {
      clock,
      checkpointIntervalSteps,
      ft,
      linkLatencyNs: [linkLow, linkLow + rng.int(0, 2000) * 1000],
      nsPerByte: rng.pick([1, 8, 80]),
      clientLatencyNs: [100_000, rng.int(200, 5000) * 1000],
      nicLatencyNs: rng.int(5, 50) * 1000,
      datagramLossRate: rng.chance(0.5) ? 0 : rng.between(0.001, 0.05),
      arbiterLatencyMs: rng.between(0.1, 10),
      diskLatencyNs: [rng.int(20, 200) * 1000, rng.int(200, 2000) * 1000],
      clients: rng.int(1, 4),
      thinkNs: (rng.chance(0.2) ? rng.int(2, 20) : rng.int(20, 200)) * 1e6,
      retryNs: rng.int(80, 500) * 1e6,
      // (Drawn in every case, so the sabotage changes no other draw.) The disk-copy sabotage needs
      // the backup replicating at the end, with a disk of its own.
      finalFailover: rng.chance(0.6) && this.#options.sabotage !== 'disk-copy',
      // From a value drawn already (so adding the mode changed no seed's other draws).
      diskMode:
        this.#options.diskMode ??
        (this.#options.sabotage === 'disk-copy' ? 'separate' : undefined) ??
        DISK_MODE_BY_RESIDUE[(checkpointIntervalSteps % 4000) / 1000] ??
        'shared',
    };
  }

  // ---- reporting ----

  fail(message: string): void {
    this.#failures.push(message);
    this.#log(`FAILURE: ${message}`);
  }

  #log(line: string): void {
    const text = `[${(this.#loop.now / 1e6).toFixed(3).padStart(10)} ms] ${line}`;
    this.#trace.push(text);
    this.#loop.mix(line);
    this.#options.onTrace?.(text);
  }

  result(realMs: number): SeedResult {
    const requests = this.#clients.flatMap((client) => client.requests);
    return {
      seed: this.seed,
      ok: this.#failures.length === 0,
      failures: [...this.#failures],
      config: formatConfig(this.#config),
      schedule: this.#faults.map((fault, index) => `${formatFault(fault)}: ${this.#outcomes[index]}`),
      statistics: {
        virtualMs: Math.round(this.#loop.now / 1e6),
        realMs: Math.round(realMs),
        events: this.#loop.eventsRun,
        guestSteps: this.#vms.reduce((sum, vm) => sum + vm.host.steps, 0),
        requests: requests.length,
        answered: requests.filter((request) => request.response !== undefined).length,
        retries: requests.reduce((sum, request) => sum + Math.max(0, request.attempts - 1), 0),
        failovers: this.#failovers,
        clones: this.#clones,
        faultsApplied: this.#faultsApplied,
        outputsReleased: [...this.#releases.releasedByKind.values()].reduce((sum, count) => sum + count, 0),
        datagramsLost: this.#network.datagramsLost,
        lateReleases: this.#lateReleases,
      },
      digest: this.#loop.digest,
      trace: [...this.#trace],
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const vm of this.#vms) {
      vm.host.dead = true;
      vm.machine?.dispose();
    }
  }

  // ---- the run ----

  async run(): Promise<void> {
    const loop = this.#loop;
    this.#log(`seed ${this.seed}: ${formatConfig(this.#config)}`);
    this.#store.testAndSet(VM_ID, 0, 'host-a');
    this.#startPair();
    this.#faults.forEach((fault, index) => {
      loop.at(fault.atMs * 1e6, () => this.#inject(fault, index));
    });
    loop.at(this.#faultsEndMs * 1e6, () => this.#healAll());
    this.#every(10e6, () => this.#orchestrate());
    this.#every(100e6, () => this.#network.tick());
    for (let index = 0; index < this.#config.clients; index++) {
      const client = new KvClient(loop, this.#rng, this.#network, {
        name: `client${index}`,
        endpoint: { address: `192.0.2.${10 + index}`, port: 40_000 + index },
        retryNs: this.#config.retryNs,
        thinkNs: this.#config.thinkNs,
      });
      this.#clients.push(client);
      loop.at(this.#rng.between(50, 250) * 1e6, () => client.startGenerating());
    }
    const stopped = () => this.#failures.length > 0;

    // The load, with the faults in its first two thirds.
    await loop.runUntil(this.#durationMs * 1e6, stopped);
    if (stopped()) return;
    for (const client of this.#clients) client.stopGenerating();
    this.#log('the load ends; outstanding requests drain');
    const drainEnd = loop.now + DRAIN_MS * 1e6;
    await loop.runUntil(drainEnd, () => stopped() || this.#clients.every((client) => !client.outstanding));
    if (stopped()) return;
    const unanswered = this.#clients.flatMap((client) => (client.outstanding ? [client.outstanding] : []));
    if (unanswered.length > 0) {
      this.#failNoProgress(
        `${unanswered.length} request(s) still unanswered ${DRAIN_MS} ms after the load ended (the last fault healed at ${this.#faultsEndMs} ms): ${unanswered.map((request) => `${request.client}#${request.id} ${request.operation} ${request.key} (${request.attempts} sends)`).join(', ')}`,
      );
      return;
    }

    // Redundancy comes back after the faults.
    const redundancyEnd = loop.now + REDUNDANCY_MS * 1e6;
    await loop.runUntil(redundancyEnd, () => stopped() || this.#redundant());
    if (stopped()) return;
    if (!this.#redundant()) {
      this.#failNoProgress(`redundancy was not restored ${REDUNDANCY_MS} ms after the load ended`);
      return;
    }
    this.#log(`redundant: ${this.#primary?.vm.host.name} replicates to ${this.#backup?.vm.host.name}`);

    // The pair is fault tolerant again: the backup (often a clone) takes over when the primary dies.
    if (this.#config.finalFailover) {
      const dying = this.#primary as PrimaryRole;
      this.#log(`final failover: ${dying.vm.host.name} dies`);
      this.#crash(dying.vm, this.#rng.chance(0.5) ? 'cut' : 'silent');
      const takeoverEnd = loop.now + TAKEOVER_MS * 1e6;
      await loop.runUntil(takeoverEnd, () => stopped() || this.#primaryServing(dying));
      if (stopped()) return;
      if (!this.#primaryServing(dying)) {
        this.#failNoProgress(
          `the primary ${dying.vm.host.name} died with its backup replicating, and no backup went live within ${TAKEOVER_MS} ms`,
        );
        return;
      }
    }

    // The audit: one more client reads every key.
    const auditor = new KvClient(loop, this.#rng, this.#network, {
      name: 'audit',
      endpoint: { address: '192.0.2.99', port: 49_999 },
      retryNs: this.#config.retryNs,
      thinkNs: 0,
    });
    this.#clients.push(auditor);
    let audited = false;
    auditor.audit([...REGISTER_KEYS, ...COUNTER_KEYS], () => {
      audited = true;
    });
    const auditEnd = loop.now + AUDIT_MS * 1e6;
    await loop.runUntil(auditEnd, () => stopped() || audited);
    if (stopped()) return;
    if (!audited) {
      this.#failNoProgress(`the final reads were not all answered within ${AUDIT_MS} ms`);
      return;
    }
    if (this.#config.diskMode === 'separate' && this.#redundant()) {
      await this.#checkBackupDiskCopy();
      if (stopped()) return;
    }
    this.#check();
  }

  /**
   * Separate disks, a backup replicating at the end: once it applied all the log its primary sent
   * and neither host has disk IO in flight, its copy of the disk must be the primary's, byte for
   * byte (it applied the same writes, in the same order; a clone started from a copy).
   */
  async #checkBackupDiskCopy(): Promise<void> {
    const primary = this.#primary as PrimaryRole;
    const backup = this.#backup as BackupRole;
    const primaryMachine = primary.driver.machine;
    const backupMachine = backup.driver.machine;
    const quiet = () =>
      backupMachine.logPosition.nextSeq === primaryMachine.logPosition.nextSeq &&
      primary.vm.disk.inFlight === 0 &&
      backup.vm.disk.inFlight === 0 &&
      primaryMachine.hostWorkPendingSince() === undefined &&
      backupMachine.hostWorkPendingSince() === undefined;
    const end = this.#loop.now + AUDIT_MS * 1e6;
    await this.#loop.runUntil(end, () => this.#failures.length > 0 || !this.#redundant() || quiet());
    if (this.#failures.length > 0 || !this.#redundant()) return;
    if (!quiet()) {
      this.#failNoProgress(
        `the backup ${backup.vm.host.name} did not catch up with its primary's log and disk within ${AUDIT_MS} ms of the audit`,
      );
      return;
    }
    const primaryBytes = primary.vm.ownDisk?.memory.bytes;
    const backupBytes = backup.vm.ownDisk?.memory.bytes;
    if (!primaryBytes || !backupBytes) {
      this.fail('disk: a host of the pair has no disk of its own (separate disks)');
      return;
    }
    if (this.#options.sabotage === 'disk-copy') {
      const middle = backupBytes.length >> 1;
      backupBytes[middle] = (backupBytes[middle] as number) ^ 1;
    }
    const differs = primaryBytes.findIndex((byte, index) => byte !== backupBytes[index]);
    if (differs >= 0) {
      this.fail(
        `disk: the backup ${backup.vm.host.name}'s copy differs from its primary ${primary.vm.host.name}'s at byte ${differs} (sector ${Math.floor(differs / 512)}), with the backup caught up`,
      );
    } else {
      this.#log(`disk: the backup ${backup.vm.host.name}'s copy matches its primary's`);
    }
  }

  /** Checks at the end: the kv history and the shared disk against the final reads. */
  #check(): void {
    for (const client of this.#clients) for (const anomaly of client.anomalies) this.fail(anomaly);
    const requests = this.#clients.flatMap((client) => client.requests);
    if (this.#options.sabotage === 'lost-write') requests.push(this.#fabricatedLostWrite(requests));
    const complete = requests.every((request) => request.response !== undefined);
    for (const failure of checkKvHistory(requests, { complete })) this.fail(`kv: ${failure}`);
    // kv.elf writes through: every answered write is on the disk, and nothing else (separate
    // disks: on the copy of the primary that answered the final reads).
    const separate = this.#config.diskMode === 'separate';
    const diskBytes = separate ? this.#primary?.vm.ownDisk?.memory.bytes : this.#disk.bytes;
    if (diskBytes === undefined) {
      this.fail('disk: no primary whose own disk to read');
      return;
    }
    const onDisk = readKvDisk(diskBytes);
    if (typeof onDisk === 'string') {
      this.fail(`disk: ${onDisk}`);
      return;
    }
    for (const read of requests.filter((request) => request.audit)) {
      const expected = read.response?.status === 'OK' ? read.response.value : undefined;
      const stored = onDisk.get(read.key);
      if (stored !== expected) {
        this.fail(
          `disk: key ${read.key} holds ${stored === undefined ? 'nothing' : JSON.stringify(stored)} on the ${separate ? "primary's" : 'shared'} disk, but the VM answers ${expected === undefined ? 'NOTFOUND' : JSON.stringify(expected)}`,
        );
      }
    }
  }

  /** A PUT "acknowledged" just before the audit, which the server never saw. */
  #fabricatedLostWrite(requests: readonly KvRequest[]): KvRequest {
    const audit = requests.find((request) => request.audit && request.key === REGISTER_KEYS[0]) as KvRequest;
    return {
      client: 'sabotage',
      id: 1,
      operation: 'PUT',
      key: REGISTER_KEYS[0],
      value: 'fabricated',
      invokedNs: audit.invokedNs - 2e6,
      respondedNs: audit.invokedNs - 1e6,
      response: { status: 'OK', value: undefined },
      attempts: 1,
    };
  }

  /** Progress stopped: say what the roles were doing, for the report. */
  #failNoProgress(what: string): void {
    const roles = this.#vms
      .map((vm) => {
        const role =
          this.#primary?.vm === vm
            ? 'primary'
            : this.#backup?.vm === vm
              ? 'backup'
              : vm.primary
                ? 'old primary'
                : 'host';
        const state = vm.host.dead
          ? 'dead'
          : vm.primary
            ? vm.primary.state
            : this.#backupOf(vm)?.driver.state;
        return `${vm.host.name} (${role}: ${state ?? 'gone'})`;
      })
      .join(', ');
    const record = this.#store.get(VM_ID);
    this.fail(`liveness: ${what}; hosts: ${roles}; arbiter: epoch ${record.epoch} owned by ${record.owner}`);
  }

  #backupOf(vm: VmHost): BackupRole | undefined {
    return this.#backup?.vm === vm ? this.#backup : undefined;
  }

  #redundant(): boolean {
    const primary = this.#primary;
    const backup = this.#backup;
    return (
      primary !== undefined &&
      backup !== undefined &&
      primary.ended === undefined &&
      backup.ended === undefined &&
      primary.driver.state === 'replicating' &&
      backup.driver.state === 'replicating' &&
      !this.#cloneInFlight
    );
  }

  /** A primary other than `dead` runs. */
  #primaryServing(dead: PrimaryRole): boolean {
    const primary = this.#primary;
    return primary !== undefined && primary !== dead && primary.ended === undefined;
  }

  #every(intervalNs: number, run: () => void): void {
    const tick = () => {
      run();
      this.#loop.after(intervalNs, tick);
    };
    this.#loop.after(intervalNs, tick);
  }

  // ---- hosts and roles ----

  #newVm(role: 'primary' | 'backup', epoch: number): VmHost {
    const name = `host-${String.fromCharCode(97 + (this.#hostCount % 26))}${this.#hostCount >= 26 ? Math.floor(this.#hostCount / 26) : ''}`;
    this.#hostCount++;
    const host = new SimHost(this.#loop, name);
    const [diskLow, diskHigh] = this.#config.diskLatencyNs;
    const separate = this.#config.diskMode === 'separate';
    // Separate disks: a disk of this host's own, empty at first (a first backup's copy matches
    // its primary's, both new; a clone's gets the primary's copy in the transfer). No other
    // host writes it, so it needs no fence.
    const ownBytes = separate ? new MemoryBlockBackend(DISK_SIZE_BYTES) : undefined;
    const disk = new SimDisk(
      ownBytes ? new SimSharedDisk(ownBytes, false) : this.#sharedDisk,
      host,
      epoch,
      () => this.#slowDiskNs + this.#rng.between(diskLow, diskHigh),
      (writer, offset, length) =>
        this.fail(
          `late write: ${name} wrote ${length} bytes at offset ${offset} of the shared disk for epoch ${writer}, after epoch ${this.#sharedDisk.fenceEpoch} went live (no fencing): it may overwrite newer data`,
        ),
    );
    const ownDisk = ownBytes
      ? { memory: ownBytes, tracked: new TrackedDisk(`virtio${DISK_SLOT}`, disk) }
      : undefined;
    // Configured as the node hosts configure theirs.
    const block = new VirtioBlock({
      backend: ownDisk?.tracked ?? disk,
      ...blockOptionsFor(this.#config.diskMode, role === 'backup'),
    });
    const nic = new VirtioNet();
    const arbiter = new MemoryArbiter({
      store: this.#store,
      latencyMs: this.#config.arbiterLatencyMs,
      schedule: (delayMs, run) => host.after(delayMs * 1e6, run),
    });
    arbiter.setUnreachable(this.#arbiterFault.unreachable);
    arbiter.setLoseReplies(this.#arbiterFault.loseReplies);
    const vm: VmHost = {
      host,
      nic,
      block,
      disk,
      ownDisk,
      nicLink: this.#network.attachNic(host, nic),
      arbiter,
      primary: undefined,
      machine: undefined,
      cloneTarget: undefined,
      expectedTransfer: undefined,
    };
    this.#vms.push(vm);
    return vm;
  }

  #createMachine(vm: VmHost, hooks: PrimaryMachineHooks | BackupMachineHooks, load: boolean): Machine {
    const slots: (VirtioMmioTransport | undefined)[] = new Array(8).fill(undefined);
    slots[DISK_SLOT] = new VirtioMmioTransport(vm.block);
    slots[NET_SLOT] = new VirtioMmioTransport(vm.nic);
    let onOutput = hooks.onOutput;
    if (this.#options.sabotage === 'release-early' && hooks.mode === 'record') {
      const held = hooks.onOutput;
      onOutput = (output) => {
        if (!this.#sabotaged && output.kind === 'frame') {
          // Broken on purpose: the frame leaves before its log is acknowledged.
          this.#sabotaged = true;
          this.#deliver(vm, output);
        }
        held(output);
      };
    }
    const machine = new Machine({
      ...hooks,
      onOutput,
      clock: this.#config.clock,
      hostClock: vm.host,
      ramSizeBytes: RAM_SIZE_BYTES,
      checkpointIntervalSteps: this.#config.checkpointIntervalSteps,
      virtioSlots: slots,
    });
    vm.host.meter(machine);
    if (!load) {
      // A clone: its state right after the transfer must be its primary's at the transfer point.
      const restore = machine.restoreTransferState.bind(machine);
      machine.restoreTransferState = (state) => {
        restore(state);
        const expected = vm.expectedTransfer;
        if (expected === undefined) return;
        const actual = machine.stateHash();
        if (machine.cpu.icount !== expected.icount || !sameBytes(actual, expected.stateHash)) {
          this.fail(
            `clone ${vm.host.name} does not start where ${expected.from} was at the transfer (icount ${machine.cpu.icount} vs ${expected.icount}): ${machine.describeStateHashDifference(expected.stateHash, actual)} differ`,
          );
        }
      };
    }
    if (load) machine.loadImage(this.#options.image ?? kvImage(), 'kv');
    vm.machine = machine;
    return machine;
  }

  /** What a primary on `vm` releases: frames to the switch, console text to the trace. */
  #deliver(vm: VmHost, output: MachineOutput): void {
    const epoch = vm.primary?.epoch ?? -1;
    const record = this.#store.get(VM_ID);
    if (record.epoch > epoch && record.owner !== vm.host.name) {
      // Allowed (its log was acknowledged), but late: the epoch moved on meanwhile.
      this.#lateReleases++;
      this.#log(
        `${vm.host.name} (epoch ${epoch}) released a ${output.kind} output after epoch ${record.epoch} went to ${record.owner}`,
      );
    }
    this.#releases.outputReleased(vm.host.name, epoch, output);
    for (const failure of this.#releases.failures.splice(0)) this.fail(failure);
    if (output.kind === 'frame') vm.nicLink.send(output.data.slice());
    else if (output.kind === 'console') {
      this.#console += new TextDecoder().decode(output.data);
      let newline = this.#console.indexOf('\n');
      while (newline >= 0) {
        this.#log(`${vm.host.name} console: ${this.#console.slice(0, newline)}`);
        this.#console = this.#console.slice(newline + 1);
        newline = this.#console.indexOf('\n');
      }
    }
  }

  #onEvent(vm: VmHost, event: FtEvent): void {
    const { type, ...rest } = event;
    this.#log(`${vm.host.name} ${type} ${JSON.stringify(rest)}`);
    if (event.type === 'clone-finished') {
      this.#releases.backupAttached(vm.host.name);
      this.#clones++;
      const machine = vm.machine;
      const target = vm.cloneTarget;
      if (machine && target) {
        // The clone must start from exactly this state (checked when it restores the transfer).
        target.expectedTransfer = {
          icount: machine.cpu.icount,
          stateHash: machine.stateHash(),
          from: vm.host.name,
        };
      }
    }
  }

  #newLink(primary: VmHost, backup: VmHost, epoch: number): SimLink {
    const link = new SimLink(this.#loop, this.#rng, {
      name: `${primary.host.name}→${backup.host.name}`,
      vmId: VM_ID,
      epoch,
      hostA: primary.host,
      hostB: backup.host,
      latencyNs: this.#config.linkLatencyNs,
      nsPerByte: this.#config.nsPerByte,
    });
    // What reaches the primary: acknowledgements for the output-rule checker.
    const onMessage = link.a.onMessage.bind(link.a);
    link.a.onMessage = (listener) =>
      onMessage((message) => {
        if (message.type === 'ack') {
          this.#releases.ackDelivered(primary.host.name, message.receivedSeq);
        }
        // A backup that says goodbye has halted for good: the primary may go on alone.
        if (message.type === 'goodbye') this.#releases.backupLeft(primary.host.name);
        listener(message);
      });
    for (const [end, vm] of [
      [link.a, primary],
      [link.b, backup],
    ] as const) {
      const send = end.send.bind(end);
      end.send = (message) => {
        send(message);
        this.#sent(vm, message);
      };
    }
    return link;
  }

  #startPair(): void {
    const primaryVm = this.#newVm('primary', 1);
    const backupVm = this.#newVm('backup', 1);
    const link = this.#newLink(primaryVm, backupVm, 1);
    const primary = new FtPrimary({
      vmId: VM_ID,
      host: primaryVm.host.name,
      epoch: 1,
      config: this.#config.ft,
      scheduler: primaryVm.host,
      arbiter: primaryVm.arbiter,
      createMachine: (hooks) => this.#createMachine(primaryVm, hooks, true),
      deliver: (output) => this.#deliver(primaryVm, output),
      holdUntilApplied: holdUntilAppliedFor(this.#config.diskMode),
      onEvent: (event) => this.#onEvent(primaryVm, event),
      ...disksOf(primaryVm),
    });
    primaryVm.primary = primary;
    const backup = this.#newBackup(backupVm, link, 1, false);
    primary.attachBackup(link.a);
    this.#releases.backupAttached(primaryVm.host.name);
    this.#runPrimary({ vm: primaryVm, driver: primary, link, ended: undefined });
    this.#runBackup(backup);
    this.#log(`${primaryVm.host.name} is the primary, ${backupVm.host.name} its backup`);
  }

  #newBackup(vm: VmHost, link: SimLink, epoch: number, cloning: boolean): BackupRole {
    const driver = new FtBackup({
      vmId: VM_ID,
      host: vm.host.name,
      epoch,
      config: this.#config.ft,
      scheduler: vm.host,
      arbiter: vm.arbiter,
      channel: link.b,
      cloning,
      createMachine: (hooks) => this.#createMachine(vm, hooks, !cloning),
      deliver: (output) => this.#deliver(vm, output),
      holdUntilApplied: holdUntilAppliedFor(this.#config.diskMode),
      onEvent: (event) => this.#onEvent(vm, event),
      beforeGoLive: (epoch) => vm.disk.fence(epoch),
      ...disksOf(vm),
    });
    return { vm, driver, link, cloned: cloning, ended: undefined };
  }

  #runPrimary(role: PrimaryRole): void {
    this.#primary = role;
    role.driver.run().then(
      (end) => {
        role.ended = end;
        this.#log(`${role.vm.host.name} primary run ended: ${JSON.stringify(end)}`);
        if (end.end === 'powered-off')
          this.fail(`the primary ${role.vm.host.name} powered off: ${JSON.stringify(end)}`);
        if (end.end !== 'stopped') role.vm.machine?.dispose();
        if (this.#primary === role) this.#primary = undefined;
      },
      (error) => this.fail(`the primary ${role.vm.host.name}'s run threw: ${describeError(error)}`),
    );
  }

  #runBackup(role: BackupRole): void {
    this.#backup = role;
    role.driver.run().then(
      (end) => {
        role.ended = end;
        if (this.#backup === role) this.#backup = undefined;
        const name = role.vm.host.name;
        switch (end.end) {
          case 'went-live':
            this.#wentLive(role, end.primary);
            return;
          case 'diverged':
            this.fail(`the backup ${name} diverged from its primary: ${end.error.message}`);
            break;
          case 'powered-off':
            this.fail(`the backup ${name} powered off: ${end.exitStatus}`);
            break;
          default:
            this.#log(`${name} backup run ended: ${JSON.stringify(end)}`);
        }
        role.vm.machine?.dispose();
      },
      (error) => this.fail(`the backup ${role.vm.host.name}'s run threw: ${describeError(error)}`),
    );
  }

  #wentLive(role: BackupRole, primary: FtPrimary): void {
    const vm = role.vm;
    this.#failovers++;
    vm.primary = primary;
    this.#log(`${vm.host.name} went live as the primary of epoch ${primary.epoch}`);
    const old = this.#primary;
    if (old !== undefined && old.ended === undefined)
      this.#log(`the former primary ${old.vm.host.name} still runs (${old.driver.state})`);
    this.#runPrimary({ vm, driver: primary, link: undefined, ended: undefined });
    this.#cloneAtNs = undefined;
    // The host tells the network where the guest is now (the switch moves its MAC).
    for (const atMs of ANNOUNCE_AT_MS) {
      vm.host.after(atMs * 1e6, () => {
        if (!vm.host.dead && this.#primary?.vm === vm) this.#network.announce(vm.nicLink);
      });
    }
  }

  /** The orchestrator: restores redundancy by cloning a new backup when the primary runs alone. */
  #orchestrate(): void {
    const primary = this.#primary;
    if (primary === undefined || primary.ended !== undefined || primary.vm.host.dead) return;
    if (this.#cloneInFlight || primary.driver.state !== 'alone') {
      this.#cloneAtNs = undefined;
      return;
    }
    if (this.#backup !== undefined && this.#backup.ended === undefined) return;
    if (this.#cloneAtNs === undefined) {
      this.#cloneAtNs = this.#loop.now + this.#rng.between(20, 400) * 1e6;
      return;
    }
    if (this.#loop.now < this.#cloneAtNs) return;
    this.#cloneAtNs = undefined;
    this.#cloneInFlight = true;
    // The command reaches the primary's host as an event there (a paused host takes it later).
    primary.vm.host.after(0, () => this.#startClone(primary));
  }

  #startClone(primary: PrimaryRole): void {
    if (primary.ended !== undefined || this.#primary !== primary || primary.driver.state !== 'alone') {
      this.#cloneInFlight = false;
      return;
    }
    const vm = this.#newVm('backup', primary.driver.epoch);
    const link = this.#newLink(primary.vm, vm, primary.driver.epoch);
    primary.link = link;
    const backup = this.#newBackup(vm, link, primary.driver.epoch, true);
    primary.vm.cloneTarget = vm;
    this.#log(`cloning ${primary.vm.host.name} onto ${vm.host.name}`);
    this.#runBackup(backup);
    primary.driver.cloneTo(link.a).then(
      (report) => {
        this.#cloneInFlight = false;
        this.#log(`clone onto ${vm.host.name} done: ${JSON.stringify(report)}`);
      },
      (error) => {
        this.#cloneInFlight = false;
        this.#log(
          `clone onto ${vm.host.name} failed: ${error instanceof Error ? error.message : String(error)}`,
        );
        link.a.close({ flush: false });
      },
    );
  }

  // ---- faults ----

  #inject(fault: PlannedFault, index: number): void {
    const outcome = this.#apply(fault);
    this.#outcomes[index] = outcome;
    if (!outcome.startsWith('skipped')) this.#faultsApplied++;
    this.#log(`fault ${formatFault(fault)}: ${outcome}`);
  }

  /** Carries out a fault on whoever holds the role now; says what it did. */
  #apply(fault: PlannedFault): string {
    const primary = this.#primary?.ended === undefined ? this.#primary : undefined;
    const backup = this.#backup?.ended === undefined ? this.#backup : undefined;
    const link = backup?.link;
    const durationNs = (fault.durationMs ?? 0) * 1e6;
    switch (fault.kind) {
      case 'crash-primary': {
        if (fault.detail.when === 'after-log-send' && primary) {
          return this.#afterSend(primary.vm, 'log', () =>
            this.#apply({ ...fault, detail: { ...fault.detail, when: 'now' } }),
          );
        }
        if (
          !primary ||
          !backup ||
          primary.driver.state !== 'replicating' ||
          backup.driver.state !== 'replicating'
        )
          return 'skipped (no backup replicating: the VM would be lost)';
        this.#crash(primary.vm, fault.detail.link as 'cut' | 'silent');
        return `${primary.vm.host.name} died`;
      }
      case 'crash-backup': {
        if (!backup) return 'skipped (no backup)';
        if (!primary || primary.vm.host.dead)
          return 'skipped (the primary is gone: the backup is the last copy of the VM)';
        if (backup.driver.state !== 'replicating' && backup.driver.state !== 'receiving-state')
          return `skipped (the backup is ${backup.driver.state}: it may be taking over, the last copy of the VM)`;
        this.#crash(backup.vm, fault.detail.link as 'cut' | 'silent');
        return `${backup.vm.host.name} died`;
      }
      case 'partition': {
        if (!link || link.isCut) return 'skipped (no link)';
        if (fault.detail.when === 'after-ack-send' && backup) {
          return this.#afterSend(backup.vm, 'ack', () =>
            this.#apply({ ...fault, detail: { ...fault.detail, when: 'now' } }),
          );
        }
        link.partition();
        this.#loop.after(durationNs, () => link.heal());
        return `${link.name} partitioned`;
      }
      case 'drop-connection': {
        if (!link || link.isCut) return 'skipped (no link)';
        link.cut('dropped (injected)');
        return `${link.name} dropped`;
      }
      case 'corrupt-frame': {
        if (!link || link.isCut) return 'skipped (no link)';
        link.corruptNext(fault.detail.direction === 'primary→backup' ? 'a' : 'b');
        return `the next frame ${fault.detail.direction} on ${link.name} is damaged`;
      }
      case 'delay-spike': {
        if (!link || link.isCut) return 'skipped (no link)';
        link.spike(Number(fault.detail.extraMs) * 1e6, durationNs);
        return `${link.name} slow`;
      }
      case 'arbiter-outage': {
        const lose = fault.detail.mode === 'lost-replies';
        const whom = fault.detail.clients;
        const vms =
          whom === 'all'
            ? this.#vms.filter((vm) => !vm.host.dead)
            : whom === 'primary'
              ? primary
                ? [primary.vm]
                : []
              : backup
                ? [backup.vm]
                : [];
        if (vms.length === 0) return `skipped (no ${whom})`;
        const set = (on: boolean) => {
          for (const vm of vms) {
            if (lose) vm.arbiter.setLoseReplies(on);
            else vm.arbiter.setUnreachable(on);
          }
          if (whom === 'all') {
            if (lose) this.#arbiterFault.loseReplies = on;
            else this.#arbiterFault.unreachable = on;
          }
        };
        set(true);
        this.#loop.after(durationNs, () => set(false));
        return `${fault.detail.mode} for ${vms.map((vm) => vm.host.name).join(', ')}`;
      }
      case 'pause-host': {
        const role = fault.detail.role === 'primary' ? primary : backup;
        if (!role) return `skipped (no ${fault.detail.role})`;
        if (fault.detail.when === 'after-log-send' && primary) {
          return this.#afterSend(primary.vm, 'log', () =>
            this.#apply({ ...fault, detail: { ...fault.detail, when: 'now' } }),
          );
        }
        const host = role.vm.host;
        if (host.paused) return `skipped (${host.name} is paused already)`;
        host.pause();
        this.#loop.after(durationNs, () => {
          if (!host.paused) return;
          host.resume();
          this.#log(`${host.name} resumes`);
        });
        return `${host.name} paused`;
      }
      case 'slow-disk': {
        this.#slowDiskNs = Number(fault.detail.latencyMs) * 1e6;
        this.#loop.after(durationNs, () => {
          this.#slowDiskNs = 0;
        });
        return this.#config.diskMode === 'separate' ? "every host's disk is slow" : 'the shared disk is slow';
      }
    }
  }

  /**
   * Carries out `apply` right after `vm` sends its next message of `type` (within 1 s): a primary's
   * log, a backup's acknowledgement. So the fault lands while log or acknowledgements are in flight.
   */
  #afterSend(vm: VmHost, type: 'log' | 'ack', apply: () => string): string {
    this.#triggers.push({
      vm,
      type,
      deadline: this.#loop.now + 1e9,
      fire: () =>
        this.#log(
          `  (after ${vm.host.name} sent ${type === 'log' ? 'log' : 'an acknowledgement'}) ${apply()}`,
        ),
    });
    return `armed: after ${vm.host.name}'s next ${type === 'log' ? 'log message' : 'acknowledgement'}`;
  }

  /** `vm` sent `message` on a logging link: faults waiting for that happen now. */
  #sent(vm: VmHost, message: FtMessage): void {
    if (this.#triggers.length === 0 || (message.type !== 'log' && message.type !== 'ack')) return;
    const now = this.#loop.now;
    const due = this.#triggers.filter(
      (trigger) => (trigger.vm === vm && trigger.type === message.type) || trigger.deadline < now,
    );
    this.#triggers = this.#triggers.filter((trigger) => !due.includes(trigger));
    for (const trigger of due) {
      if (trigger.deadline < now || trigger.vm.host.dead) this.#log('  (an armed fault expired)');
      else trigger.fire();
    }
  }

  /** A host dies (fail-stop); its logging links drop or just go silent. */
  #crash(vm: VmHost, mode: 'cut' | 'silent'): void {
    const links = [
      this.#primary?.vm === vm ? this.#primary.link : undefined,
      this.#backup?.vm === vm ? this.#backup.link : undefined,
    ];
    vm.primary?.kill();
    if (this.#backup?.vm === vm) this.#backup.driver.kill();
    vm.host.dead = true;
    vm.host.resume();
    vm.nicLink.detach();
    if (mode === 'cut') for (const link of links) link?.cut(`${vm.host.name} died`);
  }

  /** The end of the fault window: every transient fault is over. */
  #healAll(): void {
    for (const vm of this.#vms) {
      if (vm.host.paused) {
        vm.host.resume();
        this.#log(`${vm.host.name} resumes (faults over)`);
      }
      vm.arbiter.setUnreachable(false);
      vm.arbiter.setLoseReplies(false);
    }
    this.#arbiterFault = { unreachable: false, loseReplies: false };
    this.#slowDiskNs = 0;
    const link = this.#backup?.link;
    link?.heal();
    this.#log('faults over');
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, index) => byte === b[index]);
}

function formatConfig(config: SeedConfig): string {
  const us = (ns: number) => Math.round(ns / 1000);
  return [
    `clock=${config.clock}`,
    `checkpoint=${config.checkpointIntervalSteps}`,
    `ft=${JSON.stringify(config.ft)}`,
    `link=${us(config.linkLatencyNs[0])}-${us(config.linkLatencyNs[1])}us@${config.nsPerByte}ns/B`,
    `clientLatency=${us(config.clientLatencyNs[0])}-${us(config.clientLatencyNs[1])}us`,
    `loss=${config.datagramLossRate.toFixed(3)}`,
    `arbiter=${config.arbiterLatencyMs.toFixed(2)}ms`,
    `disk=${us(config.diskLatencyNs[0])}-${us(config.diskLatencyNs[1])}us`,
    `clients=${config.clients}`,
    `think=${Math.round(config.thinkNs / 1e6)}ms`,
    `retry=${Math.round(config.retryNs / 1e6)}ms`,
    `finalFailover=${config.finalFailover}`,
    `diskMode=${config.diskMode}`,
  ].join(' ');
}
