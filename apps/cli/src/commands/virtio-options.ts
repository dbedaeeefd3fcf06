import { basename } from 'node:path';
import type { Device } from '@ftvm/core';
import { ConfigError } from '@ftvm/core';
import { type BlockBackend, VirtioBlock, VirtioMmioTransport, VirtioNet, VirtioRng } from '@ftvm/devices';
import { FileBlockBackend } from '@ftvm/devices/node';
import type { MachineOutput } from '@ftvm/machine';
import { UserGateway } from '@ftvm/net';
import { UdpGatewayHost } from '@ftvm/net/node';
import { checkInputFile, fileDigest } from '../options.js';

/** A `--drive` flag, as QEMU spells it: `file=PATH[,format=raw][,readonly=on]`. */
export interface DriveSpec {
  readonly path: string;
  readonly readOnly: boolean;
}

export function parseDriveSpec(text: string): DriveSpec {
  let path: string | undefined;
  let readOnly = false;
  for (const part of text.split(',')) {
    const equals = part.indexOf('=');
    const key = equals < 0 ? part : part.slice(0, equals);
    const value = equals < 0 ? '' : part.slice(equals + 1);
    switch (key) {
      case 'file':
        path = value;
        break;
      case 'format':
        if (value !== 'raw') throw new ConfigError(`--drive: format '${value}' is not supported (only raw)`);
        break;
      case 'readonly':
        if (!['on', 'off', 'true', 'false'].includes(value))
          throw new ConfigError(`--drive: bad readonly '${value}'`);
        readOnly = value === 'on' || value === 'true';
        break;
      case 'if':
      case 'media':
        break; // QEMU spellings that mean nothing more here: the disk is a virtio-blk device
      default:
        throw new ConfigError(
          `--drive: unknown option '${key}' (expected file=PATH[,format=raw][,readonly=on])`,
        );
    }
  }
  if (!path) throw new ConfigError(`--drive '${text}': no file=PATH`);
  return { path, readOnly };
}

/** A disk as a record file describes it: enough for a replay to present the same device. */
export interface RecordedDisk {
  readonly name: string;
  readonly digest: string;
  readonly sizeBytes: number;
  readonly readOnly: boolean;
}

/** The virtio devices of a run and the host pieces behind them. */
export interface VirtioSetup {
  /** Devices by virtio-mmio slot (QEMU fills the highest slot first: disk, then net, then rng). */
  readonly slots: (Device | undefined)[];
  readonly disks: RecordedDisk[];
  /** Routes a device output to where it goes (frames to the gateway). */
  handleOutput(output: MachineOutput): void;
  close(): Promise<void>;
}

export interface VirtioFlags {
  drive: string[];
  netdev?: string;
  rng?: boolean;
}

/** Opens disks and sockets for a live run (`run`, `record`). */
export async function openVirtio(flags: VirtioFlags): Promise<VirtioSetup> {
  const slots: (Device | undefined)[] = new Array(8).fill(undefined);
  let nextSlot = 7;
  const take = (device: Device) => {
    if (nextSlot < 0) throw new ConfigError('more than 8 virtio devices');
    slots[nextSlot--] = device;
  };
  const disks: RecordedDisk[] = [];
  const backends: FileBlockBackend[] = [];
  let gateway: UserGateway | undefined;
  let gatewayHost: UdpGatewayHost | undefined;
  try {
    for (const text of flags.drive) {
      const spec = parseDriveSpec(text);
      checkInputFile(spec.path, 'disk image');
      const backend = await FileBlockBackend.open(spec.path, { readOnly: spec.readOnly });
      backends.push(backend);
      disks.push({
        name: basename(spec.path),
        digest: await fileDigest(spec.path),
        sizeBytes: backend.sizeBytes,
        readOnly: backend.readOnly,
      });
      take(new VirtioMmioTransport(new VirtioBlock({ backend })));
    }
    if (flags.netdev !== undefined) {
      const nic = new VirtioNet();
      take(new VirtioMmioTransport(nic));
      gateway = UserGateway.fromNetdevSpec(flags.netdev);
      gateway.connect({ send: (frame) => nic.receive(frame) });
      gatewayHost = await UdpGatewayHost.open(gateway);
    }
    if (flags.rng) take(new VirtioMmioTransport(new VirtioRng()));
  } catch (error) {
    await gatewayHost?.close();
    await Promise.all(backends.map((backend) => backend.close()));
    throw error;
  }
  return {
    slots,
    disks,
    handleOutput(output) {
      if (output.kind === 'frame') gateway?.deliver(output.data);
    },
    async close() {
      await gatewayHost?.close();
      await Promise.all(backends.map((backend) => backend.close()));
    },
  };
}

/**
 * A replay's disk: its size and nothing else, since the replay never reads or writes it (read data
 * comes from the log). Any access is a bug and fails.
 */
class SizeOnlyDisk implements BlockBackend {
  constructor(
    readonly sizeBytes: number,
    readonly readOnly: boolean,
  ) {}
  read(): Promise<Uint8Array> {
    return Promise.reject(new Error('a replay does not read its disk'));
  }
  write(): Promise<void> {
    return Promise.reject(new Error('a replay does not write its disk'));
  }
  flush(): Promise<void> {
    return Promise.reject(new Error('a replay does not flush its disk'));
  }
}

/** The largest disk a recording may describe: what a byte offset held in a number reaches exactly. */
export const DISK_SIZE_BYTES_MAX = Number.MAX_SAFE_INTEGER - (Number.MAX_SAFE_INTEGER % 512);

/** True when a record file's disk entry is one a replay can present. */
export function isRecordedDisk(value: unknown): value is RecordedDisk {
  const disk = value as Partial<RecordedDisk> | null;
  return (
    typeof disk?.name === 'string' &&
    typeof disk.digest === 'string' &&
    typeof disk.readOnly === 'boolean' &&
    Number.isSafeInteger(disk.sizeBytes) &&
    (disk.sizeBytes as number) >= 0 &&
    (disk.sizeBytes as number) <= DISK_SIZE_BYTES_MAX
  );
}

/**
 * The same devices for a replay: nothing touches a disk or a socket. Disk reads come from the log
 * (completions carry their data), so a replay needs only each disk's size.
 */
export function replayVirtio(
  disks: readonly RecordedDisk[],
  hasNetwork: boolean,
  hasRng: boolean,
): (Device | undefined)[] {
  const slots: (Device | undefined)[] = new Array(8).fill(undefined);
  const wanted = disks.length + (hasNetwork ? 1 : 0) + (hasRng ? 1 : 0);
  // A recording that names more devices than the board has slots describes no machine.
  if (wanted > slots.length)
    throw new ConfigError(`it names ${wanted} virtio devices; the board has 8 slots`);
  let nextSlot = 7;
  for (const disk of disks) {
    slots[nextSlot--] = new VirtioMmioTransport(
      new VirtioBlock({ backend: new SizeOnlyDisk(disk.sizeBytes, disk.readOnly), issueHostIo: false }),
    );
  }
  if (hasNetwork) slots[nextSlot--] = new VirtioMmioTransport(new VirtioNet());
  if (hasRng) slots[nextSlot--] = new VirtioMmioTransport(new VirtioRng());
  return slots;
}
