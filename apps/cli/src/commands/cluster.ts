import { join, resolve } from 'node:path';
import type { ApiClient, CredentialSource, Forward, HostView, VmView } from '@ftvm/cluster';
import { ConfigError, ExitStatus, FtvmError } from '@ftvm/core';
import { parseHostForward } from '@ftvm/net';
import { type Command, Option } from 'commander';
import type { CliOutput } from '../index.js';
import { parseMemorySize, readInputFile } from '../options.js';
import { firmwareOf } from './machine-options.js';

/**
 * The cluster package, loaded when a cluster command runs: it pulls in etcd's gRPC client, a TLS
 * toolkit and schema validation, about half a second of start-up `ftvm run` should not pay.
 */
const loadCluster = () => import('@ftvm/cluster');
const loadPino = async () => (await import('pino')).pino;

/** The help of `--certs` and `--psk`, the same on every command that talks to the cluster. */
const CERTS_HELP = 'the certificates directory (`ftvm certs init`); this or --psk is required';
const PSK_HELP =
  "the cluster's pre-shared key file (`ftvm certs psk`), instead of --certs: for trials (any holder of the key can claim any name)";

/** The `firmware` of a VM's create request: the file, base64; nothing without one. */
function firmwareBody(path: string | undefined): { firmware?: string } {
  return path === undefined
    ? {}
    : { firmware: Buffer.from(readInputFile(path, 'firmware')).toString('base64') };
}

/**
 * The networked deployment's commands: `ftvm certs`, `ftvm orchestrator`, `ftvm host`,
 * `ftvm gateway` and `ftvm vm …`. The daemons log JSON lines (pino) on stdout and stop in order
 * on SIGINT or SIGTERM.
 */
export function addClusterCommands(program: Command, output: CliOutput): void {
  const certs = program
    .command('certs')
    .description("create the cluster's credentials: a CA and certificates, or a pre-shared key for trials");
  certs
    .command('init')
    .description('create a cluster CA in DIR (each component then gets its certificate on first start there)')
    .requiredOption('--dir <dir>', 'the certificates directory')
    .action(async (flags: { dir: string }) => {
      const { initCertificates } = await loadCluster();
      const path = initCertificates(flags.dir);
      output.stdout(`ftvm: created the cluster CA ${path}\n`);
    });
  certs
    .command('issue')
    .description('issue (or re-issue, to rotate) the certificate of a component, signed by the CA in DIR')
    .requiredOption('--dir <dir>', 'the directory holding ca.crt and ca.key')
    .requiredOption('--name <name>', 'the component: a host name, orchestrator, gateway or operator')
    .option(
      '--address <address>',
      'an IP address or DNS name the component is reached at (repeatable; default 127.0.0.1, ::1, localhost)',
      collect,
      [] as string[],
    )
    .action(async (flags: { dir: string; name: string; address: string[] }) => {
      const { issueCertificate } = await loadCluster();
      issueCertificate(flags.dir, flags.name, flags.address.length > 0 ? { addresses: flags.address } : {});
      output.stdout(`ftvm: issued ${join(flags.dir, `${flags.name}.crt`)} and ${flags.name}.key\n`);
    });
  certs
    .command('psk')
    .summary('create a pre-shared key, for trials without certificates')
    .description(
      'create a pre-shared key (32 random bytes, hex, mode 0600) that every component then takes as --psk FILE ' +
        'instead of --certs: for trials; with one shared key any holder can claim any name, so production uses certificates',
    )
    .requiredOption('--out <file>', 'the key file to create (an existing file is never replaced)')
    .action(async (flags: { out: string }) => {
      const { createPskFile } = await loadCluster();
      const path = createPskFile(flags.out);
      output.stdout(
        `ftvm: created the pre-shared key ${path} (copy it to every component, keep it secret)\n`,
      );
    });

  program
    .command('orchestrator')
    .description('run the cluster service: placement, restoring redundancy, the control API, the dashboard')
    .option('--config <file>', 'a JSON file with these options (camelCase keys); flags win over it')
    .option('--listen <addr>', 'the control API address', '127.0.0.1:7000')
    .option('--store <dir|etcd://H:P[,H:P…]>', 'where the desired state lives', 'ftvm-state')
    .option(
      '--shared <dir>',
      'shared storage every host reaches: VM disks and the file arbiter (default STORE/shared)',
    )
    .option('--dashboard <addr>', 'serve the dashboard (read-only HTTP) here, e.g. 127.0.0.1:7080')
    .option('--name <name>', 'this orchestrator, in the leader election', 'orchestrator-1')
    .option('--certs <dir>', CERTS_HELP)
    .option('--psk <file>', PSK_HELP)
    .action(async (_flags: unknown, command: Command) => {
      const {
        DirectoryStore,
        EtcdStore,
        loadClusterCredentials,
        ORCHESTRATOR_CONFIG,
        Orchestrator,
        resolveConfig,
        splitAddress,
      } = await loadCluster();
      const pino = await loadPino();
      const config = resolveConfig(ORCHESTRATOR_CONFIG, ...configSources(command));
      // Before anything is created: a usage error must leave no state directory behind.
      const credentials = loadClusterCredentials(config, 'orchestrator');
      const logger = pino({ base: { component: 'orchestrator', name: config.name } });
      const etcd = config.store.startsWith('etcd://') ? EtcdStore.parseUrl(config.store) : undefined;
      if (etcd && !config.shared) {
        throw new ConfigError('with an etcd store, --shared names the shared storage for VM disks');
      }
      const store = etcd ? new EtcdStore(etcd) : new DirectoryStore(resolve(config.store));
      const orchestrator = new Orchestrator({
        listen: splitAddress(config.listen),
        credentials,
        store,
        sharedDir: resolve(config.shared ?? join(config.store, 'shared')),
        etcdEndpoints: etcd,
        dashboard: config.dashboard ? splitAddress(config.dashboard) : undefined,
        logger,
        name: config.name,
      });
      await runDaemon(
        logger,
        () => orchestrator.start(),
        () => orchestrator.close(),
      );
    });

  program
    .command('host')
    .description("run a host daemon: it runs VMs' primaries and backups for the orchestrator")
    .option('--config <file>', 'a JSON file with these options (camelCase keys); flags win over it')
    .option('--name <name>', 'this host (its certificate is NAME.crt, its PSK identity NAME) (required)')
    .option(
      '--listen <addr>',
      'the control API address (logging channels listen on the same IP)',
      '127.0.0.1:7101',
    )
    .option('--advertise <addr>', 'the address others reach this host at (default: --listen)')
    .option('--data <dir>', "this host's data directory (its own disk copies) (required)")
    .option('--orchestrator <addr[,addr…]>', "the orchestrators' addresses (required)")
    .option('--certs <dir>', CERTS_HELP)
    .option('--psk <file>', PSK_HELP)
    .option(
      '--fault-injection',
      'let operators partition logging channels (tests, the nemesis); off by default',
    )
    .action(async (_flags: unknown, command: Command) => {
      const { HOST_CONFIG, HostAgent, loadClusterCredentials, resolveConfig, splitAddress } =
        await loadCluster();
      const pino = await loadPino();
      const config = resolveConfig(HOST_CONFIG, ...configSources(command));
      const logger = pino({ base: { component: 'host', host: config.name } });
      const agent = new HostAgent({
        name: config.name,
        listen: splitAddress(config.listen),
        advertise: config.advertise,
        dataDir: resolve(config.data),
        orchestrators: splitList(config.orchestrator),
        credentials: loadClusterCredentials(config, config.name),
        logger,
        faultInjection: config.faultInjection,
      });
      await runDaemon(
        logger,
        () => agent.start(),
        () => agent.close(),
      );
    });

  program
    .command('gateway')
    .description(
      "run the clients' entry point: VMs' UDP forwards and the virtual switch that follows the primary",
    )
    .option('--config <file>', 'a JSON file with these options (camelCase keys); flags win over it')
    .option('--listen <addr>', 'where hosts link their VMs in', '127.0.0.1:7200')
    .option('--advertise <addr>', 'the address hosts reach this gateway at (default: --listen)')
    .option('--orchestrator <addr[,addr…]>', "the orchestrators' addresses (required)")
    .option('--certs <dir>', CERTS_HELP)
    .option('--psk <file>', PSK_HELP)
    .option(
      '--forward <udp:[HOSTIP]:PORT-VM:GUESTPORT>',
      'a UDP forward into a VM (repeatable)',
      collect,
      [] as string[],
    )
    .action(async (_flags: unknown, command: Command) => {
      const {
        GATEWAY_CONFIG,
        GatewayService,
        loadClusterCredentials,
        parseGatewayForward,
        resolveConfig,
        splitAddress,
      } = await loadCluster();
      const pino = await loadPino();
      const config = resolveConfig(GATEWAY_CONFIG, ...configSources(command));
      const logger = pino({ base: { component: 'gateway' } });
      const gateway = new GatewayService({
        listen: splitAddress(config.listen),
        advertise: config.advertise,
        credentials: loadClusterCredentials(config, 'gateway'),
        orchestrators: splitList(config.orchestrator),
        forwards: config.forward.map(parseGatewayForward),
        logger,
      });
      await runDaemon(
        logger,
        () => gateway.start(),
        () => gateway.close(),
      );
    });

  addVmCommands(program, output);
}

interface ClientFlags extends CredentialSource {
  orchestrator: string;
  json?: boolean;
}

/** Failures throw typed errors: the command's own handler prints them and picks the exit status. */
function addVmCommands(program: Command, output: CliOutput): void {
  const vm = program
    .command('vm')
    .description('create and manage fault-tolerant VMs (talks to the orchestrator)');
  const clientFlags = (command: Command) =>
    command
      .option('--orchestrator <addr[,addr…]>', "the orchestrators' addresses", '127.0.0.1:7000')
      .option('--certs <dir>', CERTS_HELP)
      .option('--psk <file>', PSK_HELP)
      .option('--json', 'print JSON instead of a table')
      // A usage error before anything is read or asked: exactly one of --certs and --psk.
      .hook('preAction', async (_command, action) =>
        (await loadCluster()).checkCredentialSource(action.opts<CredentialSource>()),
      );

  clientFlags(
    vm
      .command('create <name>')
      .description('create a VM; returns when it runs with a backup in place')
      .requiredOption('--kernel <file>', 'the guest image (RV32 ELF, or raw behind --bios)')
      .option('--bios <file>', 'a firmware that boots --kernel, as QEMU -bios (e.g. an SBI firmware)')
      .option('-m, --memory <size>', 'guest RAM (e.g. 64M)', '64M')
      .option('--drive <size=SIZE>', 'a virtio-blk disk of SIZE on shared storage (e.g. size=16M)')
      .addOption(
        new Option('--disk-mode <mode>', 'shared disk, backup reads it too, or a copy per host')
          .choices(['shared', 'backup-reads', 'separate'])
          .default('shared'),
      )
      .option(
        '--forward <udp:[HOSTIP]:PORT-:GUESTPORT>',
        'a UDP port on the gateway into the guest (repeatable)',
        collect,
        [] as string[],
      )
      .option('--failure-timeout <ms>', 'how long silence lasts before a peer is suspected', '300')
      .option('--no-wait', 'return once the VM is recorded, without waiting for its backup')
      .option('--timeout <seconds>', 'how long to wait for the VM to be fault tolerant', '120'),
  ).action(
    async (
      name: string,
      flags: ClientFlags & {
        kernel: string;
        bios?: string;
        memory: string;
        drive?: string;
        diskMode: 'shared' | 'backup-reads' | 'separate';
        forward: string[];
        failureTimeout: string;
        wait: boolean;
        timeout: string;
      },
    ) => {
      // What was given is checked before the orchestrator is asked anything.
      const body = {
        name,
        ramBytes: parseMemorySize(flags.memory),
        diskBytes: flags.drive ? driveSize(flags.drive) : 0,
        diskMode: flags.diskMode,
        forwards: flags.forward.map(vmForward),
        failureTimeoutMs: positiveInteger(flags.failureTimeout, '--failure-timeout'),
        image: Buffer.from(readInputFile(flags.kernel, 'guest image')).toString('base64'),
        ...firmwareBody(firmwareOf(flags)),
      };
      const timeoutMs = positiveInteger(flags.timeout, '--timeout') * 1000;
      const client = await leaderClient(flags);
      try {
        let view = await client.call<VmView>('POST', '/v1/vms', body);
        if (flags.wait) {
          const deadline = performance.now() + timeoutMs;
          while (!view.faultTolerant) {
            if (performance.now() > deadline) {
              throw new FtvmError(
                `${name} is not fault tolerant after ${flags.timeout} s (state ${view.state}); see \`ftvm vm inspect ${name}\``,
                'FTVM_ERROR',
                ExitStatus.ioError,
              );
            }
            await new Promise((resolve) => setTimeout(resolve, 250));
            view = await client.call<VmView>('GET', `/v1/vms/${encodeURIComponent(name)}`);
          }
        }
        output.stdout(flags.json ? `${JSON.stringify(view, null, 2)}\n` : vmDetails(view));
      } finally {
        client.close();
      }
    },
  );

  clientFlags(vm.command('ls').description('list VMs')).action(async (flags: ClientFlags) => {
    const client = await leaderClient(flags);
    try {
      const vms = await client.call<VmView[]>('GET', '/v1/vms');
      output.stdout(flags.json ? `${JSON.stringify(vms, null, 2)}\n` : vmTable(vms));
    } finally {
      client.close();
    }
  });

  clientFlags(vm.command('inspect <name>').description('show a VM: roles, epochs, figures, events')).action(
    async (name: string, flags: ClientFlags) => {
      const client = await leaderClient(flags);
      try {
        const view = await client.call<VmView>('GET', `/v1/vms/${encodeURIComponent(name)}`);
        output.stdout(flags.json ? `${JSON.stringify(view, null, 2)}\n` : vmDetails(view));
      } finally {
        client.close();
      }
    },
  );

  for (const [verb, description, method, suffix] of [
    ['stop', 'stop a VM (its primary and backup end)', 'DELETE', ''],
    [
      'failover',
      "force a go-live: the primary's role ends and the backup takes over (maintenance)",
      'POST',
      '/failover',
    ],
  ] as const) {
    clientFlags(vm.command(`${verb} <name>`).description(description)).action(
      async (name: string, flags: ClientFlags) => {
        const client = await leaderClient(flags);
        try {
          const view = await client.call<VmView>(method, `/v1/vms/${encodeURIComponent(name)}${suffix}`);
          output.stdout(flags.json ? `${JSON.stringify(view, null, 2)}\n` : vmDetails(view));
        } finally {
          client.close();
        }
      },
    );
  }

  clientFlags(
    vm
      .command('migrate <name>')
      .description('move the backup to a host, or (--primary) the primary through a planned failover')
      .requiredOption('--to <host>', 'the host to move to')
      .option('--primary', 'move the primary (the backup moves there first, then a failover)'),
  ).action(async (name: string, flags: ClientFlags & { to: string; primary?: boolean }) => {
    const client = await leaderClient(flags);
    try {
      const view = await client.call<VmView>('POST', `/v1/vms/${encodeURIComponent(name)}/migrate`, {
        host: flags.to,
        role: flags.primary ? 'primary' : 'backup',
      });
      output.stdout(flags.json ? `${JSON.stringify(view, null, 2)}\n` : vmDetails(view));
    } finally {
      client.close();
    }
  });

  clientFlags(program.command('hosts').description("list the cluster's hosts")).action(
    async (flags: ClientFlags) => {
      const client = await leaderClient(flags);
      try {
        const hosts = await client.call<HostView[]>('GET', '/v1/hosts');
        output.stdout(
          flags.json
            ? `${JSON.stringify(hosts, null, 2)}\n`
            : table(
                ['HOST', 'ADDRESS', 'ALIVE', 'ROLES'],
                hosts.map((host) => [
                  host.name,
                  host.address,
                  host.alive ? 'yes' : 'no',
                  host.roles.map((role) => `${role.vm}:${role.role}@${role.epoch}`).join(' ') || '-',
                ]),
              ),
        );
      } finally {
        client.close();
      }
    },
  );
}

/** A daemon's config file, the flags given on the command line, and the flags' defaults. */
function configSources(
  command: Command,
): [string | undefined, Record<string, unknown>, Record<string, unknown>] {
  const given: Record<string, unknown> = {};
  const defaults: Record<string, unknown> = {};
  let file: string | undefined;
  for (const [key, value] of Object.entries(command.opts())) {
    if (key === 'config') {
      file = value as string | undefined;
      continue;
    }
    const source = command.getOptionValueSource(key);
    if (source === 'cli' || source === 'env') given[key] = value;
    else if (value !== undefined) defaults[key] = value;
  }
  // An empty repeatable flag is a default, not a choice.
  if (Array.isArray(given.forward) && given.forward.length === 0) delete given.forward;
  return [file, given, defaults];
}

/** The first orchestrator that answers as the leader. */
async function leaderClient(flags: ClientFlags): Promise<ApiClient> {
  const { ApiClient, loadClusterCredentials } = await loadCluster();
  const credentials = loadClusterCredentials(flags, 'operator');
  let last: Error | undefined;
  for (const address of splitList(flags.orchestrator)) {
    const client = new ApiClient(credentials, address, { timeoutMs: 30_000 });
    try {
      await client.call('GET', '/v1/vms');
      return client;
    } catch (error) {
      client.close();
      last = error as Error;
    }
  }
  throw last ?? new ConfigError('no orchestrator given');
}

async function runDaemon(
  logger: { info(message: string): void; error(object: object, message: string): void },
  start: () => Promise<void>,
  close: () => Promise<void>,
): Promise<void> {
  // A daemon outlives a bug in one request or one VM's role: it is logged, the others go on.
  const onRejection = (reason: unknown) =>
    logger.error({ error: reason instanceof Error ? reason.stack : String(reason) }, 'unhandled rejection');
  process.on('unhandledRejection', onRejection);
  await start();
  await new Promise<void>((resolveStop) => {
    const stop = (signal: string) => {
      logger.info(`${signal}: stopping`);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolveStop();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await close();
}

function vmForward(value: string): Forward {
  const rule = parseHostForward(value, `--forward ${value}`);
  if (rule.guestAddress !== undefined) {
    throw new ConfigError(
      `--forward ${value}: the guest address is the VM's (leave it empty: udp::5555-:5555)`,
    );
  }
  return {
    protocol: 'udp',
    hostAddress: rule.hostAddress,
    hostPort: rule.hostPort,
    guestPort: rule.guestPort,
  };
}

function driveSize(value: string): number {
  const match = /^size=(.+)$/.exec(value);
  if (!match) throw new ConfigError(`--drive ${value}: expected size=SIZE (e.g. size=16M)`);
  const bytes = parseMemorySize(match[1] as string);
  if (bytes % 512 !== 0) throw new ConfigError(`--drive ${value}: the size is not a whole number of sectors`);
  return bytes;
}

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number <= 0)
    throw new ConfigError(`${flag} must be a positive integer, not ${value}`);
  return number;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function vmTable(vms: readonly VmView[]): string {
  return table(
    ['VM', 'STATE', 'FT', 'PRIMARY', 'EPOCH', 'BACKUP', 'FAILOVERS', 'CLONES'],
    vms.map((vm) => [
      vm.name,
      vm.state,
      vm.faultTolerant ? 'yes' : 'no',
      vm.primary?.host ?? '-',
      String(vm.primary?.epoch ?? '-'),
      vm.backup?.host ?? (vm.cloning ? `(cloning to ${vm.cloning.host})` : '-'),
      String(vm.failovers),
      String(vm.clones),
    ]),
  );
}

function vmDetails(vm: VmView): string {
  const lines = [
    vmTable([vm]),
    `ram ${vm.ramBytes / 2 ** 20} MiB, disk ${vm.diskBytes / 2 ** 20} MiB (${vm.diskMode}), forwards ${
      vm.forwards
        .map((forward) => `udp:${forward.hostAddress ?? ''}:${forward.hostPort}-:${forward.guestPort}`)
        .join(' ') || '-'
    }`,
  ];
  if (vm.figures) {
    lines.push(
      `guest ${vm.figures.mips.toFixed(1)} MIPS, execution lag ${vm.figures.executionLagMs.toFixed(1)} ms, log ${(vm.figures.logBytesPerSecond / 1024).toFixed(1)} KiB/s, ${vm.figures.heldOutputs} outputs held`,
    );
    const sides = (['primary', 'backup'] as const).flatMap((side) => {
      const thread = vm.figures?.threads?.[side];
      if (!thread) return [];
      const wait =
        thread.runQueueWaitShare === undefined
          ? ''
          : `, waited ${(thread.runQueueWaitShare * 100).toFixed(0)} % for a core`;
      return [`${side} ${thread.cpuShare.toFixed(2)} of a core${wait}`];
    });
    if (sides.length > 0) lines.push(`VM threads: ${sides.join('; ')}`);
  }
  if (vm.lastClone)
    lines.push(`last clone: ${vm.lastClone.totalMs} ms, primary paused ${vm.lastClone.pauseMs} ms`);
  for (const event of vm.events.slice(-8)) {
    lines.push(`${new Date(event.atMs).toISOString()}  ${event.kind}  ${event.detail}`);
  }
  return `${lines.join('\n')}\n`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}
