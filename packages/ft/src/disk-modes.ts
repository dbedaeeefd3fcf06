import type { VirtioBlockHostIo } from '@ftvm/devices';
import type { MachineOutput } from '@ftvm/machine';

/**
 * How the backup treats the disk, the paper's three modes: `shared` (the backup does no disk IO;
 * read data travels in the log), `backup-reads` (the backup reads the shared disk itself;
 * completions carry no data) and `separate` (each side has a disk of its own; the backup applies
 * the guest's writes to its copy). The node hosts and the simulator both configure their disks
 * from here, so the simulator checks the configuration the hosts run.
 */
export const DISK_MODES = ['shared', 'backup-reads', 'separate'] as const;
export type DiskMode = (typeof DISK_MODES)[number];

export function isDiskMode(value: unknown): value is DiskMode {
  return (DISK_MODES as readonly unknown[]).includes(value);
}

/** The virtio-blk options of a role's disk device in `mode`. */
export function blockOptionsFor(
  mode: DiskMode,
  asBackup: boolean,
): { readonly hostIo: VirtioBlockHostIo; readonly logReadData: boolean; readonly writeBack: boolean } {
  return {
    // A backup on a shared disk does no disk IO; with backup-reads it reads, never writes; with a
    // copy of its own it applies the writes too.
    hostIo: !asBackup || mode === 'separate' ? 'all' : mode === 'backup-reads' ? 'reads' : 'none',
    logReadData: mode !== 'backup-reads',
    // Only a shared disk completes writes before they reach it (a volatile write cache): the
    // backup's acknowledgement then holds the disk, not the guest (see VirtioBlockOptions).
    writeBack: mode === 'shared',
  };
}

/**
 * With backup reads, a disk write or flush must not overtake the backup's own reads: it waits
 * until the backup executed past it (see PrimaryCore). Undefined in the other modes.
 */
export function holdUntilAppliedFor(mode: DiskMode): ((output: MachineOutput) => boolean) | undefined {
  return mode === 'backup-reads'
    ? (output) => output.kind === 'disk-write' || output.kind === 'disk-flush'
    : undefined;
}
