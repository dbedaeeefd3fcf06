import type { FtSabotage } from '@ftvm/ft';
import { Command, Option } from 'commander';
import {
  checkFaults,
  DEFAULT_FAULTS,
  type DemoOptions,
  type DemoTransport,
  type DiskMode,
  type Fault,
  parseChoice,
  parseInteger,
  parseKill,
  parseListen,
  parsePartition,
  parsePause,
} from './options.js';

const collect =
  (parse: (text: string) => Fault) =>
  (text: string, faults: Fault[] = []): Fault[] => [...faults, parse(text)];

/**
 * The `demo` command: `ftvm demo` and `npm run demo` both use it. `setExitStatus` gets 0 for a
 * clean verdict, 1 otherwise.
 */
export function demoCommand(
  setExitStatus: (status: number) => void,
  argv: readonly string[] = process.argv,
): Command {
  return new Command('demo')
    .description(
      'a fault-tolerant kv service under load: the primary dies, the backup goes live, a new backup is cloned; then a verdict',
    )
    .option('--seconds <n>', 'how long to run', '30')
    .option(
      '--kill <role@time>',
      'kill the primary or the backup at a time, e.g. primary@12s (repeatable)',
      collect(parseKill),
    )
    .option(
      '--pause <role@time+duration>',
      'pause a host, e.g. primary@5s+1s (repeatable)',
      collect(parsePause),
    )
    .option(
      '--partition <time+duration>',
      'cut the logging channel for a while, e.g. 8s+2s (repeatable)',
      collect(parsePartition),
    )
    .option('--seed <n>', 'the seed of the client load', '1')
    .option('--clients <n>', 'concurrent kv clients of the built-in load', '4')
    .option('--load <n>', 'the built-in load: 0 turns it off', '1')
    .option('--kernel <image>', 'the guest image (default: the kv service)')
    .option('--bios <file>', 'a firmware that boots --kernel, as QEMU -bios (Linux: its SBI firmware)')
    .addOption(
      new Option('--disk-mode <mode>', 'how the backup sees the disk')
        .choices(['shared', 'backup-reads', 'separate'])
        .default('shared'),
    )
    .addOption(
      new Option('--transport <kind>', 'the logging channel')
        .choices(['memory', 'tcp', 'tls'])
        .default('tcp'),
    )
    .option('--failure-timeout <ms>', 'silence after which a peer is suspected', '300')
    .option('--listen <host:port>', "expose the gateway's kv port here for your own clients", '127.0.0.1:0')
    .option('--report <file>', 'write an HTML report of the run here')
    .addOption(
      new Option(
        '--sabotage <kind>',
        'break the output rule on purpose, to see the verdict catch it: release-early lets every output out before the backup holds its log',
      ).choices(['release-early']),
    )
    .action(async (flags) => {
      const seconds = parseInteger(flags.seconds, '--seconds', 5, 3600);
      const given = [...(flags.kill ?? []), ...(flags.pause ?? []), ...(flags.partition ?? [])] as Fault[];
      const options: DemoOptions = {
        seconds,
        faults: checkFaults(
          given.length > 0 ? given : DEFAULT_FAULTS.filter((fault) => fault.atMs < seconds * 1000),
          seconds,
        ),
        seed: parseInteger(flags.seed, '--seed', 0, 2 ** 32 - 1),
        clients: parseInteger(flags.clients, '--clients', 1, 64),
        load: parseInteger(flags.load, '--load', 0, 1) === 1,
        kernel: flags.kernel,
        bios: flags.bios === 'none' ? undefined : flags.bios,
        diskMode: parseChoice<DiskMode>(
          flags.diskMode,
          ['shared', 'backup-reads', 'separate'],
          '--disk-mode',
        ),
        transport: parseChoice<DemoTransport>(flags.transport, ['memory', 'tcp', 'tls'], '--transport'),
        failureTimeoutMs: parseInteger(flags.failureTimeout, '--failure-timeout', 20, 60_000),
        report: flags.report,
        listen: parseListen(flags.listen),
        command: ['ftvm', ...argv.slice(argv.indexOf('demo'))].join(' '),
        ...(flags.sabotage === undefined
          ? {}
          : { sabotage: parseChoice<FtSabotage>(flags.sabotage, ['release-early'], '--sabotage') }),
      };
      // Loaded only now: `ftvm --help` and `ftvm run` do not pay for the fault-tolerance stack.
      const { runDemo } = await import('./demo.js');
      const result = await runDemo(options);
      if (options.report) {
        const { writeReport } = await import('./report/write.js');
        await writeReport(options.report, result.report);
        process.stderr.write(`report: ${options.report}\n`);
      }
      setExitStatus(result.ok ? 0 : 1);
    });
}
