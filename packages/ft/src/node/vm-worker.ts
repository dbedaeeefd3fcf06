import type { MessagePort } from 'node:worker_threads';
import type { Arbiter, Device, FtRole, LogChannel } from '@ftvm/core';
import { FT_PROTOCOL_VERSION } from '@ftvm/core';
import { NET_FRAME_OUTPUT, VirtioBlock, VirtioMmioTransport, VirtioNet } from '@ftvm/devices';
import { Machine, type MachineOutput, runMachine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import { createMessagePortStream, openChannel } from '@ftvm/transport';
import {
  connectTcp,
  connectTls,
  listenTcp,
  listenTls,
  type TlsCredentials,
  type TlsPskCredentials,
} from '@ftvm/transport/node';
import { type BackupEnd, FtBackup } from '../backup.js';
import type { FtConfig } from '../config.js';
import { blockOptionsFor, type DiskMode, holdUntilAppliedFor } from '../disk-modes.js';
import type { FtEvent } from '../events.js';
import { FtPrimary, type FtSabotage, type PrimaryEnd } from '../primary.js';
import { TrackedDisk } from '../tracked-disk.js';
import { PortArbiter } from './arbiter-port.js';
import { FencedFileDisk } from './fenced-file-disk.js';
import { type SharedDiskBuffers, SharedMemoryDisk } from './shared-disk.js';
import { readThreadTimes, type ThreadTimes } from './thread-times.js';

/**
 * One VM role on one host, in a worker thread: what an `ftvm` host runs per VM. The thread builds
 * the machine (the same configuration on every host), opens the logging channel, and runs the
 * primary or the backup; a backup that goes live goes on as the primary in the same thread. The
 * parent sees events, statistics and the end; it kills the "host" with `worker.terminate()`.
 */

/** The virtio slot of the disk (the last; the NIC takes the one below it). */
const DISK_SLOT = 7;
/** How long a role that stopped or powered off waits for released disk IO to finish, at most. */
const DISK_SETTLE_MS_MAX = 2000;

export type { DiskMode };

/** What the parent gives the worker (as `workerData`). */
export interface VmWorkerSpec {
  /**
   * `clone`: a new backup cloned from the running primary (it loads no image). `standalone`: the
   * VM without fault tolerance (no log, no backup), the baseline FT is measured against.
   */
  readonly role: FtRole | 'clone' | 'standalone';
  readonly vmId: string;
  readonly host: string;
  readonly epoch: number;
  /** The guest image (not needed for a clone). */
  readonly image?: Uint8Array;
  /** A firmware that boots the image (QEMU's `-bios`), if any (not needed for a clone either). */
  readonly firmware?: Uint8Array;
  readonly ramSizeBytes: number;
  readonly clock: 'host' | 'icount';
  readonly checkpointIntervalSteps: number;
  /**
   * The disk, if any: shared memory all hosts see, or an image file on storage every host reaches
   * (fenced by epoch, see `FencedFileDisk`); with `separate`, this host's own copy.
   */
  readonly disk?:
    | { readonly buffers: SharedDiskBuffers; readonly mode: DiskMode }
    | { readonly path: string; readonly mode: DiskMode };
  /** A virtio-net NIC on the guest network: frames cross `networkPort`. */
  readonly network: boolean;
  readonly config?: Partial<FtConfig>;
  readonly preSharedKey?: string;
  /** The logging channel (primary ↔ backup) over a port. Absent for a primary that starts alone. */
  readonly logPort?: MessagePort;
  /**
   * Or over TCP: a backup (or clone) listens on `host` (a free port; it posts `listening` with
   * the port), a primary connects to `host:port`.
   */
  readonly logTcp?: { readonly host: string; readonly port?: number };
  /**
   * With `logTcp`: TLS with these credentials, both sides presenting certificates of `ca`, or a
   * pre-shared key (`{ psk: { identity, secret } }`, TLS-PSK; see `@ftvm/transport/node`).
   */
  readonly logTls?: TlsCredentials | TlsPskCredentials;
  /** Frames to and from the guest network: `{ frame: Uint8Array }` both ways. */
  readonly networkPort?: MessagePort;
  /** The arbiter, served by the parent. */
  readonly arbiterPort: MessagePort;
  /** How often to post statistics to the parent, in ms. */
  readonly statisticsIntervalMs?: number;
  /** Breaks the output rule on purpose in every primary this worker runs (see `FtSabotage`). */
  readonly sabotage?: FtSabotage;
}

/** What the worker posts to its parent. */
export type VmWorkerMessage =
  | { readonly type: 'event'; readonly event: FtEvent }
  | { readonly type: 'console'; readonly data: Uint8Array }
  | {
      readonly type: 'statistics';
      readonly role: 'primary' | 'backup';
      readonly epoch: number;
      readonly state: string;
      readonly icount: number;
      /** The primary's figures (lag, held outputs, log buffer) or the backup's (received, applied). */
      readonly figures: Readonly<Record<string, number | string | boolean>>;
      /** The VM thread's CPU time and wait for a CPU so far (undefined where the system does not say). */
      readonly thread: ThreadTimes | undefined;
    }
  | { readonly type: 'clone-finished'; readonly report: Readonly<Record<string, number>> }
  /** A backup listens for its primary's TCP logging channel on this port. */
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'clone-failed'; readonly message: string }
  | { readonly type: 'ended'; readonly end: string; readonly detail?: string; readonly exitStatus?: number }
  | { readonly type: 'failed'; readonly message: string };

/** What the parent may post to the worker. */
export type VmWorkerCommand =
  /** Primary: clone a new backup over this port, or by connecting to the clone over TCP. */
  | {
      readonly type: 'clone';
      readonly logPort?: MessagePort;
      readonly logTcp?: { host: string; port: number };
    }
  | { readonly type: 'stop' }
  /**
   * Fault injection: the host stands still for `ms` (its thread blocks: nothing is sent,
   * received or run), then goes on as a paused process would.
   */
  | { readonly type: 'pause'; readonly ms: number };

interface Parent {
  postMessage(message: VmWorkerMessage, transfer?: readonly unknown[]): void;
  on(event: 'message', listener: (command: VmWorkerCommand) => void): void;
}

/** Runs a VM role until it ends; reports to `parent`. */
export async function runVmWorker(spec: VmWorkerSpec, parent: Parent): Promise<void> {
  const scheduler = createNodeHost();
  const arbiter: Arbiter = new PortArbiter(spec.arbiterPort);
  parent.on('message', (command) => {
    if (command.type === 'pause') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, command.ms);
  });
  const post = (message: VmWorkerMessage) => parent.postMessage(message);
  const onEvent = (event: FtEvent) => post({ type: 'event', event });
  const disk = !spec.disk
    ? undefined
    : 'buffers' in spec.disk
      ? new SharedMemoryDisk(spec.disk.buffers, spec.epoch)
      : await FencedFileDisk.open(spec.disk.path, spec.epoch);
  // This host's own copy of the disk: a clone copies it along with memory.
  const ownCopy =
    disk && spec.disk?.mode === 'separate' ? new TrackedDisk(`virtio${DISK_SLOT}`, disk) : undefined;
  const disks = ownCopy ? [ownCopy] : undefined;
  const fence = (epoch: number) => {
    const fenced = disk?.fence(epoch);
    // A fence that could not be written leaves the older epoch able to write: the role must stop.
    if (fenced instanceof Promise)
      fenced.catch((error: Error) => post({ type: 'failed', message: error.message }));
  };
  let nic: VirtioNet | undefined;
  /** The disk device of the machine built last (a promoted backup keeps its own). */
  let block: VirtioBlock | undefined;
  /**
   * Before the parent hears a role ended (and may end this thread): the disk IO already released
   * finishes. With a write cache, a client may have its answer while the write is on its way to
   * the disk. A write still held is never released now; the wait is bounded for it.
   */
  const diskSettled = async (end: string): Promise<void> => {
    if (!block || (end !== 'stopped' && end !== 'powered-off')) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      block.hostIdle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, DISK_SETTLE_MS_MAX);
      }),
    ]);
    clearTimeout(timer);
  };

  const holdUntilApplied = spec.disk ? holdUntilAppliedFor(spec.disk.mode) : undefined;
  const deliver = (output: MachineOutput) => {
    if (output.kind === 'console') post({ type: 'console', data: output.data.slice() });
    else if (output.kind === NET_FRAME_OUTPUT) spec.networkPort?.postMessage({ frame: output.data.slice() });
  };
  spec.networkPort?.on('message', (message: { frame?: unknown }) => {
    if (message.frame instanceof Uint8Array) nic?.receive(message.frame);
  });

  const buildMachine = (hooks: object, asBackup: boolean, loadImage: boolean): Machine => {
    const slots: (Device | undefined)[] = new Array(8).fill(undefined);
    let slot = DISK_SLOT;
    if (disk) {
      block = new VirtioBlock({
        backend: ownCopy ?? disk,
        ...blockOptionsFor(spec.disk?.mode ?? 'shared', asBackup),
      });
      slots[slot--] = new VirtioMmioTransport(block);
    }
    if (spec.network) {
      nic = new VirtioNet();
      slots[slot--] = new VirtioMmioTransport(nic);
    }
    const machine = new Machine({
      ramSizeBytes: spec.ramSizeBytes,
      clock: spec.clock,
      hostClock: scheduler,
      checkpointIntervalSteps: spec.checkpointIntervalSteps,
      virtioSlots: slots,
      ...hooks,
    });
    if (loadImage) {
      if (!spec.image) throw new Error('no guest image');
      machine.loadImage(spec.image, spec.vmId, {
        firmware: spec.firmware ? { bytes: spec.firmware, name: `${spec.vmId} firmware` } : undefined,
      });
    }
    return machine;
  };

  const statisticsIntervalMs = spec.statisticsIntervalMs ?? 200;
  /** The guest's progress, the role's figures and the VM thread's times, to the parent. */
  const postStatistics = (
    role: 'primary' | 'backup',
    epoch: number,
    state: string,
    machine: Machine,
    figures: Readonly<Record<string, number | string | boolean>>,
  ) =>
    post({
      type: 'statistics',
      role,
      epoch,
      state,
      icount: machine.cpu.icount,
      figures,
      thread: readThreadTimes(),
    });
  const statistics = (role: 'primary' | 'backup', source: FtPrimary | FtBackup) => {
    const figures = source.statistics() as unknown as Record<string, number | string | boolean>;
    postStatistics(role, Number(figures.epoch), String(figures.state), source.machine, figures);
  };

  const handshake = (role: FtRole, epoch: number) => ({
    vmId: spec.vmId,
    epoch,
    role,
    protocolVersion: FT_PROTOCOL_VERSION,
    host: spec.host,
  });
  const openLog = async (port: MessagePort, role: FtRole, epoch: number): Promise<LogChannel> =>
    openChannel(createMessagePortStream(port), {
      handshake: handshake(role, epoch),
      preSharedKey: spec.preSharedKey,
    });
  const connectLog = (endpoint: { host: string; port: number }, epoch: number): Promise<LogChannel> => {
    const options = { ...endpoint, handshake: handshake('primary', epoch), preSharedKey: spec.preSharedKey };
    return spec.logTls ? connectTls({ ...options, ...spec.logTls }) : connectTcp(options);
  };
  /** A backup waits for one primary to connect (the first channel that passes the handshake). */
  const acceptLog = async (host: string, epoch: number): Promise<LogChannel> => {
    let accepted: (channel: LogChannel) => void = () => {};
    const channel = new Promise<LogChannel>((resolve) => {
      accepted = resolve;
    });
    const options = { host, port: 0, handshake: handshake('backup', epoch), preSharedKey: spec.preSharedKey };
    const onChannel = (opened: LogChannel) => accepted(opened);
    const listener = spec.logTls
      ? await listenTls({ ...options, ...spec.logTls }, onChannel)
      : await listenTcp(options, onChannel);
    post({ type: 'listening', port: listener.port });
    const opened = await channel;
    await listener.close();
    return opened;
  };

  /** Runs a role, posting its statistics to the parent meanwhile. */
  const reporting = async <End>(
    role: 'primary' | 'backup',
    source: FtPrimary | FtBackup,
    run: () => Promise<End>,
  ): Promise<End> => {
    const timer = setInterval(() => statistics(role, source), statisticsIntervalMs);
    try {
      return await run();
    } finally {
      clearInterval(timer);
    }
  };

  const runPrimary = async (primary: FtPrimary): Promise<void> => {
    parent.on('message', (command) => {
      if (command.type === 'stop') primary.stop();
      if (command.type === 'clone') {
        const opened = command.logTcp
          ? connectLog(command.logTcp, primary.epoch)
          : openLog(command.logPort as MessagePort, 'primary', primary.epoch);
        opened
          .then((channel) => primary.cloneTo(channel))
          .then(
            (report) => post({ type: 'clone-finished', report: { ...report } }),
            (error: Error) => post({ type: 'clone-failed', message: error.message }),
          );
      }
    });
    const end = await reporting('primary', primary, () => primary.run());
    await diskSettled(end.end);
    post(endedMessage(end));
  };

  if (spec.role === 'standalone') {
    const machine = buildMachine({ mode: 'standalone', onOutput: deliver }, false, true);
    const abort = new AbortController();
    parent.on('message', (command) => {
      if (command.type === 'stop') abort.abort();
    });
    const timer = setInterval(
      () => postStatistics('primary', 0, 'standalone', machine, {}),
      statisticsIntervalMs,
    );
    try {
      const result = await runMachine(machine, scheduler, { signal: abort.signal });
      const end = result.end === 'aborted' ? 'stopped' : 'powered-off';
      await diskSettled(end);
      post({ type: 'ended', end, exitStatus: result.exitStatus });
    } finally {
      clearInterval(timer);
    }
    return;
  }

  if (spec.role === 'primary') {
    const primary = new FtPrimary({
      vmId: spec.vmId,
      host: spec.host,
      epoch: spec.epoch,
      config: spec.config,
      scheduler,
      arbiter,
      deliver,
      holdUntilApplied,
      disks,
      onEvent: (event) => {
        if (event.type === 'arbiter-won') fence(event.epoch);
        onEvent(event);
      },
      createMachine: (hooks) => buildMachine(hooks, false, true),
      ...(spec.sabotage === undefined ? {} : { sabotage: spec.sabotage }),
    });
    if (spec.logPort) primary.attachBackup(await openLog(spec.logPort, 'primary', spec.epoch));
    else if (spec.logTcp?.port !== undefined) {
      primary.attachBackup(await connectLog({ host: spec.logTcp.host, port: spec.logTcp.port }, spec.epoch));
    }
    await runPrimary(primary);
    return;
  }

  let channel: LogChannel;
  if (spec.logPort) channel = await openLog(spec.logPort, 'backup', spec.epoch);
  else if (spec.logTcp) channel = await acceptLog(spec.logTcp.host, spec.epoch);
  else throw new Error('a backup needs a logging channel');
  const cloning = spec.role === 'clone';
  const backup = new FtBackup({
    vmId: spec.vmId,
    host: spec.host,
    epoch: spec.epoch,
    config: spec.config,
    scheduler,
    arbiter,
    channel,
    cloning,
    deliver,
    holdUntilApplied,
    onEvent,
    disks,
    beforeGoLive: fence,
    createMachine: (hooks) => buildMachine(hooks, true, !cloning),
    ...(spec.sabotage === undefined ? {} : { sabotage: spec.sabotage }),
  });
  const end = await reporting('backup', backup, () => backup.run());
  if (end.end === 'went-live') await runPrimary(end.primary);
  else post(endedMessage(end));
}

/** The message that tells the parent how a role's run ended. */
function endedMessage(end: PrimaryEnd | Exclude<BackupEnd, { end: 'went-live' }>): VmWorkerMessage {
  return {
    type: 'ended',
    end: end.end,
    detail: end.end === 'halted' ? end.reason : end.end === 'diverged' ? end.error.message : undefined,
    exitStatus: end.end === 'powered-off' ? end.exitStatus : undefined,
  };
}
