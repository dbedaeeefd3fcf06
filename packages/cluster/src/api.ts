import { z } from 'zod';

/**
 * The control API's messages, as zod schemas: every request body is parsed with these before it
 * is acted on, and an error names the field. Shared by the orchestrator, the host daemon, the
 * gateway and the `ftvm vm` command.
 */

export const NAME = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, . _ - (at most 63, not starting with . _ -)');

/** `HOST:PORT` (an IPv4 address or a name; IPv6 in brackets). */
export const ADDRESS = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'an address HOST:PORT');

export const DISK_MODE = z.enum(['shared', 'backup-reads', 'separate']);
export type DiskMode = z.infer<typeof DISK_MODE>;

/** A UDP port the gateway opens for a VM: `hostAddress:hostPort` → the guest's `guestPort`. */
export const FORWARD = z.object({
  protocol: z.literal('udp'),
  hostAddress: z.string().max(64).optional(),
  hostPort: z.number().int().min(0).max(65535),
  guestPort: z.number().int().min(1).max(65535),
});
export type Forward = z.infer<typeof FORWARD>;

/** What `ftvm vm create` asks for. */
export const VM_CREATE = z.object({
  name: NAME,
  /** The guest image, base64. */
  image: z.string().min(1),
  /** A firmware that boots the image (QEMU's `-bios`), base64. */
  firmware: z.string().min(1).optional(),
  ramBytes: z
    .number()
    .int()
    .min(1 << 20)
    .max(1 << 30),
  diskBytes: z
    .number()
    .int()
    .min(0)
    .max(2 ** 40),
  diskMode: DISK_MODE.default('shared'),
  forwards: z.array(FORWARD).max(64).default([]),
  failureTimeoutMs: z.number().int().min(20).max(60_000).default(300),
});
export type VmCreate = z.infer<typeof VM_CREATE>;

export const ROLE = z.enum(['primary', 'backup', 'clone']);

/** Where a host finds the arbiter: a directory on shared storage, or etcd. */
export const ARBITER_LOCATION = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('file'), dir: z.string().min(1) }),
  z.object({ kind: z.literal('etcd'), endpoints: z.array(z.string().min(1)).min(1) }),
]);
export type ArbiterLocation = z.infer<typeof ARBITER_LOCATION>;

/** The orchestrator's order to a host: run this role of this VM. */
export const START_ROLE = z.object({
  vm: NAME,
  role: ROLE,
  epoch: z.number().int().min(1),
  /** The guest image, base64 (absent for a clone, which receives memory from its primary). */
  image: z.string().optional(),
  /** The firmware that boots the image, base64, if the VM has one (absent for a clone too). */
  firmware: z.string().optional(),
  ramBytes: z.number().int().min(1),
  disk: z.object({ bytes: z.number().int().min(0), mode: DISK_MODE, path: z.string().optional() }),
  arbiter: ARBITER_LOCATION,
  /** A primary connects its logging channel to its backup here. */
  peer: z.object({ host: z.string(), port: z.number().int().min(1).max(65535) }).optional(),
  /** Where the VM's network plugs in. */
  gateway: ADDRESS.optional(),
  failureTimeoutMs: z.number().int().min(20).max(60_000),
});
export type StartRole = z.infer<typeof START_ROLE>;

/** A host's answer to START_ROLE: a backup or clone listens for its primary here. */
export const STARTED = z.object({ port: z.number().int().optional() });

export const CLONE_TO = z.object({ host: z.string(), port: z.number().int().min(1).max(65535) });

/** One role a host runs, as it reports it. */
export const ROLE_STATUS = z.object({
  vm: NAME,
  /** `backup` includes a clone that finished; `clone` is one still receiving state. */
  role: z.enum(['primary', 'backup', 'clone', 'ended']),
  epoch: z.number().int().min(0),
  state: z.string(),
  icount: z.number().min(0),
  mips: z.number().min(0),
  executionLagMs: z.number(),
  logBytesPerSecond: z.number().min(0),
  heldOutputs: z.number().int().min(0),
  oldestHeldOutputMs: z.number().min(0),
  /** The VM thread's share of one core over the last interval (absent: the host cannot say). */
  threadCpuShare: z.number().min(0).optional(),
  /** The share of the last interval the VM thread was ready to run but waited for a core. */
  runQueueWaitShare: z.number().min(0).optional(),
  failovers: z.number().int().min(0),
  clones: z.number().int().min(0),
  lastClone: z.object({ totalMs: z.number(), pauseMs: z.number() }).optional(),
  ended: z.string().optional(),
});
export type RoleStatus = z.infer<typeof ROLE_STATUS>;

/** A host's heartbeat (and registration: the first one registers it). */
export const HEARTBEAT = z.object({
  name: NAME,
  /** Its control API. */
  address: ADDRESS,
  /** Started at (ms since the epoch): a restarted daemon is a new incarnation. */
  incarnation: z.number().int(),
  roles: z.array(ROLE_STATUS).max(4096),
});
export type Heartbeat = z.infer<typeof HEARTBEAT>;

/** The gateway's registration: hosts plug VMs' networks in here. */
export const GATEWAY_HEARTBEAT = z.object({ address: ADDRESS });

export const MIGRATE = z.object({ host: NAME, role: z.enum(['backup', 'primary']).default('backup') });

/** A VM as the orchestrator shows it (`ftvm vm inspect --json`). */
export interface VmView {
  readonly name: string;
  readonly state: 'placing' | 'running' | 'degraded' | 'lost' | 'stopped';
  readonly faultTolerant: boolean;
  readonly primary: { readonly host: string; readonly epoch: number; readonly state: string } | null;
  readonly backup: { readonly host: string; readonly epoch: number; readonly state: string } | null;
  readonly cloning: { readonly host: string; readonly sinceMs: number } | null;
  readonly ramBytes: number;
  readonly diskBytes: number;
  readonly diskMode: DiskMode;
  readonly forwards: readonly Forward[];
  readonly failovers: number;
  readonly clones: number;
  readonly lastClone: { readonly totalMs: number; readonly pauseMs: number } | null;
  readonly figures: {
    readonly mips: number;
    readonly executionLagMs: number;
    readonly logBytesPerSecond: number;
    readonly heldOutputs: number;
    readonly oldestHeldOutputMs: number;
    /**
     * Each side's VM thread: its share of one core, and of the time it waited for one (a host with
     * more busy threads than cores). Absent where a host cannot say.
     */
    readonly threads: {
      readonly primary?: { readonly cpuShare: number; readonly runQueueWaitShare?: number };
      readonly backup?: { readonly cpuShare: number; readonly runQueueWaitShare?: number };
    };
  } | null;
  readonly events: readonly ClusterEvent[];
}

export interface HostView {
  readonly name: string;
  readonly address: string;
  readonly alive: boolean;
  readonly lastSeenMsAgo: number;
  readonly roles: readonly RoleStatus[];
}

/** Something that happened, for the dashboard and `vm inspect`. */
export interface ClusterEvent {
  readonly atMs: number;
  readonly vm: string;
  readonly kind:
    | 'placed'
    | 'failover'
    | 'backup-lost'
    | 'clone-started'
    | 'clone-finished'
    | 'clone-failed'
    | 'halted'
    | 'lost';
  readonly detail: string;
}
