import { DISK_MODES, isDiskMode } from '../disk-modes.js';
import {
  type DiskMode,
  reportUnhandledRejection,
  runSeed,
  SABOTAGES,
  type Sabotage,
  type SeedResult,
  type SimulatorOptions,
} from './simulator.js';

/**
 * `npm run simulate -- --seeds N [--from S]`: runs seeds S..S+N-1 and ends with exactly the line
 * `simulate: N seeds, F failed`. A failing seed prints its failures, configuration, fault schedule,
 * the end of its trace and the command that reproduces it.
 */

export interface SimulateArguments {
  readonly seeds: number;
  readonly from: number;
  readonly durationMs: number | undefined;
  /** Print every seed's trace as it runs. */
  readonly verbose: boolean;
  /** Print only failing seeds and the summary. */
  readonly quiet: boolean;
  /** Fence the shared disk by epoch (`--no-fencing` turns it off). */
  readonly fencing: boolean;
  /** Print a failing seed's whole trace, not its end. */
  readonly fullTrace: boolean;
  /** The most faults a seed draws (default 8). */
  readonly faultsMax: number | undefined;
  /** Force the disk mode (default: drawn with the seed). */
  readonly diskMode: DiskMode | undefined;
  /** Break every run on purpose (to see the checkers catch it). */
  readonly sabotage: Sabotage | undefined;
}

const USAGE = [
  'usage: npm run simulate -- --seeds N [--from S] [options]',
  '  runs seeds S..S+N-1 (S defaults to 1) and ends with "simulate: N seeds, F failed"',
  '  --duration MS       virtual ms of client load per seed (default 6000)',
  '  --faults-max N      the most faults a seed draws (default 8)',
  '  --quiet             print only failing seeds and the summary',
  "  --verbose           print every seed's trace as it runs",
  "  --full-trace        print a failing seed's whole trace (default: its last 60 lines)",
  '  --no-fencing        let writes of deposed primaries reach the shared disk',
  '  --disk-mode MODE    shared | backup-reads | separate (default: drawn; one seed in four reads,',
  '                      one in four has a disk per host)',
  '  --sabotage KIND     break every run on purpose: release-early | lost-write | disk-copy',
  '                      (disk-copy: separate disks, no final failover)',
].join('\n');

export function parseArguments(argv: readonly string[]): SimulateArguments | string {
  let seeds = 1;
  let from = 1;
  let durationMs: number | undefined;
  let faultsMax: number | undefined;
  let verbose = false;
  let quiet = false;
  let fencing = true;
  let fullTrace = false;
  let sabotage: Sabotage | undefined;
  let diskMode: DiskMode | undefined;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index] as string;
    const [flag, inline] = argument.includes('=') ? argument.split('=', 2) : [argument, undefined];
    const value = (): number | string => {
      const text = inline ?? argv[++index];
      const number = Number(text);
      if (text === undefined || !Number.isSafeInteger(number) || number < 0)
        return `${flag} needs a whole number`;
      return number;
    };
    switch (flag) {
      case '--seeds': {
        const parsed = value();
        if (typeof parsed === 'string') return parsed;
        seeds = parsed;
        break;
      }
      case '--from':
      case '--seed': {
        const parsed = value();
        if (typeof parsed === 'string') return parsed;
        from = parsed;
        break;
      }
      case '--duration': {
        const parsed = value();
        if (typeof parsed === 'string') return parsed;
        durationMs = parsed;
        break;
      }
      case '--faults-max': {
        const parsed = value();
        if (typeof parsed === 'string') return parsed;
        faultsMax = parsed;
        break;
      }
      case '--verbose':
        verbose = true;
        break;
      case '--quiet':
        quiet = true;
        break;
      case '--no-fencing':
        fencing = false;
        break;
      case '--full-trace':
        fullTrace = true;
        break;
      case '--disk-mode': {
        const mode = inline ?? argv[++index];
        if (!isDiskMode(mode)) return `--disk-mode needs one of ${DISK_MODES.join(', ')}`;
        diskMode = mode;
        break;
      }
      case '--sabotage': {
        const kind = inline ?? argv[++index];
        if (!(SABOTAGES as readonly unknown[]).includes(kind))
          return `--sabotage needs one of ${SABOTAGES.join(', ')}`;
        sabotage = kind as Sabotage;
        break;
      }
      case '--help':
      case '-h':
        return USAGE;
      default:
        return `unknown argument ${argument}\n${USAGE}`;
    }
  }
  if (sabotage === 'disk-copy' && diskMode !== undefined && diskMode !== 'separate')
    return '--sabotage disk-copy needs separate disks (each host its own copy)';
  return { seeds, from, durationMs, faultsMax, verbose, quiet, fencing, fullTrace, sabotage, diskMode };
}

/** The flags besides --seeds/--from that change what a seed does (for the reproduce line). */
function reproduceFlags(parsed: SimulateArguments): string {
  const flags: string[] = [];
  if (parsed.durationMs !== undefined) flags.push(`--duration ${parsed.durationMs}`);
  if (parsed.faultsMax !== undefined) flags.push(`--faults-max ${parsed.faultsMax}`);
  if (!parsed.fencing) flags.push('--no-fencing');
  if (parsed.sabotage !== undefined) flags.push(`--sabotage ${parsed.sabotage}`);
  if (parsed.diskMode !== undefined) flags.push(`--disk-mode ${parsed.diskMode}`);
  return flags.join(' ');
}

/** The report of a failing seed: what failed, its configuration and schedule, how to run it again. */
export function formatSeedReport(result: SeedResult, traceLines = 60, extraFlags = ''): string {
  const lines = [`seed ${result.seed} FAILED`];
  for (const failure of result.failures) lines.push(`  failure: ${failure}`);
  lines.push(`  config: ${result.config}`);
  lines.push(`  fault schedule (${result.schedule.length}):`);
  for (const fault of result.schedule) lines.push(`    ${fault}`);
  if (result.schedule.length === 0) lines.push('    (none)');
  const trace = Number.isFinite(traceLines) ? result.trace.slice(-traceLines) : result.trace;
  lines.push(`  trace (last ${trace.length} of ${result.trace.length} lines):`);
  for (const line of trace) lines.push(`    ${line}`);
  lines.push(
    `  reproduce: npm run simulate -- --seeds 1 --from ${result.seed}${extraFlags === '' ? '' : ` ${extraFlags}`}`,
  );
  return lines.join('\n');
}

function summary(result: SeedResult): string {
  const s = result.statistics;
  return (
    `seed ${result.seed}: ${result.ok ? 'ok' : 'FAILED'} [${result.digest}] (${s.virtualMs} ms virtual, ${s.realMs} ms real, ` +
    `${s.faultsApplied} faults, ${s.failovers} failovers, ${s.clones} clones, ${s.answered}/${s.requests} requests answered)`
  );
}

/** Runs the command; resolves with the exit status. */
export async function main(
  argv: readonly string[],
  write: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
): Promise<number> {
  const parsed = parseArguments(argv);
  if (typeof parsed === 'string') {
    write(parsed);
    return parsed === USAGE ? 0 : 64;
  }
  const onRejection = (reason: unknown) => {
    if (!reportUnhandledRejection(reason))
      write(`simulate: an unhandled rejection between seeds: ${String(reason)}`);
  };
  process.on('unhandledRejection', onRejection);
  let failed = 0;
  const started = performance.now();
  try {
    for (let seed = parsed.from; seed < parsed.from + parsed.seeds; seed++) {
      const options: SimulatorOptions = {
        fencing: parsed.fencing,
        ...(parsed.sabotage === undefined ? {} : { sabotage: parsed.sabotage }),
        ...(parsed.diskMode === undefined ? {} : { diskMode: parsed.diskMode }),
        ...(parsed.durationMs === undefined ? {} : { durationMs: parsed.durationMs }),
        ...(parsed.faultsMax === undefined ? {} : { faultsMax: parsed.faultsMax }),
        ...(parsed.verbose ? { onTrace: (line: string) => write(`  ${line}`) } : {}),
      };
      const result = await runSeed(seed, options);
      if (!parsed.quiet || !result.ok) write(summary(result));
      if (!result.ok) {
        failed++;
        write(
          formatSeedReport(result, parsed.fullTrace ? Number.POSITIVE_INFINITY : 60, reproduceFlags(parsed)),
        );
      }
    }
  } finally {
    process.off('unhandledRejection', onRejection);
  }
  if (!parsed.quiet && parsed.seeds > 0) {
    write(`(${((performance.now() - started) / 1000).toFixed(1)} s for ${parsed.seeds} seeds)`);
  }
  write(`simulate: ${parsed.seeds} seeds, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}
