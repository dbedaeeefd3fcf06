import { ConfigError } from '@ftvm/core';
import type { FtSabotage } from '@ftvm/ft';

/** Which host a fault hits, named by the role it holds when the fault comes. */
export type FaultTarget = 'primary' | 'backup';

/** An injected failure at a time since the start of the run. */
export type Fault =
  /** The host dies: its thread is terminated, its connections drop. */
  | { readonly kind: 'kill'; readonly target: FaultTarget; readonly atMs: number }
  /** The host stands still for a while (a paused process or VM), then goes on with a stale view. */
  | { readonly kind: 'pause'; readonly target: FaultTarget; readonly atMs: number; readonly forMs: number }
  /** The logging channel between primary and backup carries nothing for a while, both ways. */
  | { readonly kind: 'partition'; readonly atMs: number; readonly forMs: number };

export type DiskMode = 'shared' | 'backup-reads' | 'separate';
export type DemoTransport = 'memory' | 'tcp' | 'tls';

export interface DemoOptions {
  readonly seconds: number;
  readonly faults: readonly Fault[];
  readonly seed: number;
  readonly clients: number;
  /** The guest image; the kv service by default. */
  readonly kernel: string | undefined;
  /** A firmware that boots the kernel (QEMU's `-bios`), e.g. the SBI firmware for Linux. */
  readonly bios?: string;
  readonly diskMode: DiskMode;
  readonly transport: DemoTransport;
  readonly failureTimeoutMs: number;
  /** Where to write the HTML report; undefined: none. */
  readonly report: string | undefined;
  /** Expose the gateway's kv port to outside clients here (host:port; port 0 picks one). */
  readonly listen: { readonly host: string; readonly port: number };
  /** The built-in load: false with `--load 0`. */
  readonly load: boolean;
  /** The command line, for the report. */
  readonly command: string;
  /** Break the output rule on purpose (`--sabotage release-early`), to see the verdict catch it. */
  readonly sabotage?: FtSabotage;
}

/** The default run: about 30 s, the primary dies, then the new backup, redundancy restored after each. */
export const DEFAULT_FAULTS: readonly Fault[] = [
  { kind: 'kill', target: 'primary', atMs: 10_000 },
  { kind: 'kill', target: 'backup', atMs: 20_000 },
];

/** `12s`, `1500ms`, `2.5s`, `3` (seconds) → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (!match) throw new ConfigError(`${what}: "${text}" is not a duration (like 12s or 500ms)`);
  const value = Number(match[1]);
  const ms = match[2] === 'ms' ? value : value * 1000;
  if (!Number.isFinite(ms) || ms > 24 * 3600 * 1000)
    throw new ConfigError(`${what}: "${text}" is out of range`);
  return Math.round(ms);
}

function parseTarget(text: string, flag: string): FaultTarget {
  if (text === 'primary' || text === 'backup') return text;
  throw new ConfigError(`${flag}: the target must be primary or backup, not "${text}"`);
}

/** `--kill primary@12s` */
export function parseKill(text: string): Fault {
  const [target, at, ...rest] = text.split('@');
  if (target === undefined || at === undefined || rest.length > 0) {
    throw new ConfigError(`--kill ${text}: expected ROLE@TIME, e.g. primary@12s`);
  }
  return { kind: 'kill', target: parseTarget(target, '--kill'), atMs: parseDuration(at, '--kill') };
}

/** `--pause primary@5s+1s` */
export function parsePause(text: string): Fault {
  const match = /^([a-z]+)@([^+]+)\+(.+)$/.exec(text);
  if (!match) throw new ConfigError(`--pause ${text}: expected ROLE@TIME+DURATION, e.g. primary@5s+1s`);
  return {
    kind: 'pause',
    target: parseTarget(match[1] as string, '--pause'),
    atMs: parseDuration(match[2] as string, '--pause'),
    forMs: parseDuration(match[3] as string, '--pause'),
  };
}

/** `--partition 8s+2s` */
export function parsePartition(text: string): Fault {
  const match = /^([^+]+)\+(.+)$/.exec(text);
  if (!match) throw new ConfigError(`--partition ${text}: expected TIME+DURATION, e.g. 8s+2s`);
  return {
    kind: 'partition',
    atMs: parseDuration(match[1] as string, '--partition'),
    forMs: parseDuration(match[2] as string, '--partition'),
  };
}

/** `127.0.0.1:5555`, `:5555`, `5555` → host and port. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:(.*):)?(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`--listen ${text}: expected HOST:PORT, e.g. 127.0.0.1:5555`);
  }
  return { host: match[1] || '127.0.0.1', port };
}

export function parseChoice<T extends string>(text: string, choices: readonly T[], flag: string): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new ConfigError(`${flag}: "${text}" is not one of ${choices.join(', ')}`);
}

export function parseInteger(text: string, flag: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${flag}: "${text}" is not a whole number from ${min} to ${max}`);
  }
  return value;
}

/** Checks a schedule against the run's length: every fault inside it, in time order. */
export function checkFaults(faults: readonly Fault[], seconds: number): Fault[] {
  const sorted = [...faults].sort((a, b) => a.atMs - b.atMs);
  for (const fault of sorted) {
    if (fault.atMs >= seconds * 1000) {
      throw new ConfigError(
        `a fault at ${fault.atMs / 1000}s comes after the run ends (--seconds ${seconds})`,
      );
    }
  }
  return sorted;
}
