import type { DeviceEventPayload, MachineSnapshot, PlainValue, RamRegion, StateSection } from '@ftvm/core';
import { ConfigError, PAGE_SHIFT, PAGE_SIZE_BYTES, plainValuesEqual, SnapshotError } from '@ftvm/core';
import type { RiscvCpu } from '@ftvm/cpu-riscv';
import { pack } from 'msgpackr';
import type { ExecutionMode } from './execution-mode.js';
import {
  DEFAULT_REALTIME_BASE_NS,
  type GuestTime,
  HOST_CLOCK_RATE_PS_PER_STEP_INITIAL,
  isHostClockRate,
} from './guest-time.js';
import type { AttachedDevice, MachineCore } from './machine-core.js';
import { hashBytes, RamHasher } from './state-hash.js';

/** The fixed part of a state hash: RAM, CPU and machine state, 8 bytes each (then 4 per device). */
const STATE_HASH_FIXED_BYTES = 24;

/** Marks RAM bytes written by the host (an image loaded) as dirty pages. */
export function markPagesWritten(ram: RamRegion, offset: number, length: number): void {
  if (length <= 0) return;
  ram.dirtyPages.fill(1, offset >>> PAGE_SHIFT, ((offset + length - 1) >>> PAGE_SHIFT) + 1);
}

/**
 * The machine's state as a whole: the state hash and dirty pages, snapshots, and live state
 * transfer (the paper's FT VMotion, §3.1). What depends on the mode (pending inputs, the log
 * position) is asked of the mode's doors, passed in by the `Machine`.
 */
export class MachineStateKeeper {
  private readonly ram: RamRegion;
  private readonly cpu: RiscvCpu;
  private readonly time: GuestTime;
  private readonly attached: readonly AttachedDevice[];
  private hasher: RamHasher | undefined;
  /** The first hash of RAM, built a few pages at a time (see prepareStateHash). */
  private hasherBuild: { hasher: RamHasher; nextPage: number } | undefined;
  /** Pages written since the last collection, per consumer (hash, dirty trackers). */
  private readonly hashChangedPages: Uint8Array;
  private readonly dirtyTrackers = new Set<Uint8Array>();

  constructor(private readonly core: MachineCore) {
    this.ram = core.ram;
    this.cpu = core.cpu;
    this.time = core.time;
    this.attached = core.attached;
    this.hashChangedPages = new Uint8Array(core.ram.dirtyPages.length);
  }

  // ---- hash and dirty pages ----

  /** Hands the pages written since the last call to every consumer, then clears the bitmap. */
  private collectDirtyPages(): void {
    const dirty = this.ram.dirtyPages;
    for (let page = dirty.indexOf(1); page !== -1; page = dirty.indexOf(1, page + 1)) {
      this.hashChangedPages[page] = 1;
      for (const tracker of this.dirtyTrackers) tracker[page] = 1;
    }
    dirty.fill(0);
    this.cpu.resetDirtyTracking();
  }

  /**
   * Starts tracking written pages. `collect()` returns the page numbers written since the tracker
   * started or since the previous collect; `stop()` ends tracking. Used by live state transfer.
   */
  trackDirtyPages(): { collect(): number[]; stop(): void } {
    const pages = new Uint8Array(this.ram.dirtyPages.length);
    this.dirtyTrackers.add(pages);
    return {
      collect: () => {
        this.collectDirtyPages();
        const written: number[] = [];
        for (let page = pages.indexOf(1); page !== -1; page = pages.indexOf(1, page + 1)) written.push(page);
        pages.fill(0);
        return written;
      },
      stop: () => {
        this.dirtyTrackers.delete(pages);
      },
    };
  }

  /**
   * Builds the first hash of RAM ahead of the first {@link stateHash}, `pageBudget` pages per call
   * (hashing 64 MiB at once holds the thread for hundreds of ms: a backup that did so at its first
   * checkpoint fell silent past the failure timeout). Pages written after they were hashed are
   * hashed again at the next state hash. True once the hash is built.
   */
  prepareStateHash(pageBudget: number): boolean {
    if (this.hasher !== undefined) return true;
    this.collectDirtyPages();
    this.hasherBuild ??= { hasher: new RamHasher(this.ram, true), nextPage: 0 };
    const build = this.hasherBuild;
    this.hashBuildPages(build, Math.min(build.hasher.pageCount, build.nextPage + Math.max(1, pageBudget)));
    if (build.nextPage < build.hasher.pageCount) return false;
    this.hasher = build.hasher;
    this.hasherBuild = undefined;
    return true;
  }

  private hashBuildPages(build: { hasher: RamHasher; nextPage: number }, end: number): void {
    for (let page = build.nextPage; page < end; page++) {
      // Hashed now from what the page holds: only a later write makes it stale.
      this.hashChangedPages[page] = 0;
      build.hasher.updatePage(page);
    }
    build.nextPage = end;
  }

  /**
   * A digest of the whole guest-visible state, updated incrementally (only pages written since the
   * previous hash are rehashed). Its parts, so a replay can say what differs:
   *
   *     bytes 0..7    RAM
   *     bytes 8..15   the CPU
   *     bytes 16..23  the machine's own state (guest time, power state)
   *     then 4 bytes per device, in the order they were attached
   */
  stateHash(): Uint8Array {
    this.collectDirtyPages();
    if (this.hasher === undefined && this.hasherBuild !== undefined) {
      const build = this.hasherBuild;
      this.hashBuildPages(build, build.hasher.pageCount);
      this.hasher = build.hasher;
      this.hasherBuild = undefined;
      this.hasher.updateChanged(this.hashChangedPages);
    } else if (this.hasher === undefined) {
      this.hasher = new RamHasher(this.ram);
    } else {
      this.hasher.updateChanged(this.hashChangedPages);
    }
    this.hashChangedPages.fill(0);
    // Armed host timers are host-side scheduling, not guest state: a replay fires none of them.
    const components = this.saveComponentState(false);
    const digest = new Uint8Array(STATE_HASH_FIXED_BYTES + this.attached.length * 4);
    const view = new DataView(digest.buffer);
    const put = (offset: number, [first, second]: [number, number]) => {
      view.setUint32(offset, first);
      view.setUint32(offset + 4, second);
    };
    put(0, this.hasher.digest());
    put(8, hashBytes(pack(components.cpu), 0xc0));
    put(16, hashBytes(pack(components.machine), 0x3a));
    this.attached.forEach(({ placement }, index) => {
      const [first] = hashBytes(pack(components.devices[placement.name] ?? null), 0xde + index);
      view.setUint32(STATE_HASH_FIXED_BYTES + index * 4, first);
    });
    return digest;
  }

  /** Names the parts of the machine whose hashes differ between two state hashes. */
  describeStateHashDifference(expected: Uint8Array, actual: Uint8Array): string {
    if (expected.length !== actual.length) return 'the machine (its devices differ in number)';
    const differs = (from: number, to: number) =>
      expected.subarray(from, to).some((byte, index) => byte !== actual[from + index]);
    const parts: string[] = [];
    if (differs(0, 8)) parts.push('RAM');
    if (differs(8, 16)) parts.push('the CPU');
    if (differs(16, 24)) parts.push('guest time or power state');
    this.attached.forEach(({ placement }, index) => {
      const offset = STATE_HASH_FIXED_BYTES + index * 4;
      if (differs(offset, offset + 4)) parts.push(`device ${placement.name}`);
    });
    return parts.length > 0 ? parts.join(', ') : 'nothing';
  }

  private saveComponentState(withTimers: boolean): {
    cpu: StateSection;
    devices: Record<string, StateSection>;
    machine: PlainValue;
  } {
    const devices: Record<string, StateSection> = {};
    for (const { placement, device } of this.attached) devices[placement.name] = device.saveState();
    return { cpu: this.cpu.saveState(), devices, machine: this.saveMachineState(withTimers) };
  }

  private saveMachineState(withTimers: boolean): PlainValue {
    const time = this.time.saveState(withTimers);
    // Key order is part of the state hash (the section is hashed as packed): keep it.
    return {
      idleSkipNs: time.idleSkipNs,
      clockBaseNs: time.clockBaseNs,
      clockBaseIcount: time.clockBaseIcount,
      realtimeAtBootNs: time.realtimeAtBootNs,
      stopped: this.core.stopped,
      exitStatus: this.core.exit ?? null,
      timers: time.timers as unknown as PlainValue,
      // Only once a rate was logged: recordings from before rates keep their state hashes.
      ...(time.clockRatePsPerStep === HOST_CLOCK_RATE_PS_PER_STEP_INITIAL
        ? {}
        : { clockRatePsPerStep: time.clockRatePsPerStep }),
    };
  }

  /** The machine's configuration, as stored in snapshots and record files. */
  config(): PlainValue {
    return {
      ramSizeBytes: this.ram.size,
      clock: this.time.clockMode,
      logOutputs: this.core.options.logOutputs === true,
      bootArgs: this.core.options.bootArgs ?? null,

      realtimeBaseNs: this.core.options.realtimeBaseNs ?? DEFAULT_REALTIME_BASE_NS,
      devices: this.attached.map(({ placement, device }) => ({
        name: placement.name,
        kind: device.kind,
        base: placement.base,
        irq: placement.irq,
      })),
    };
  }

  /** Saves the whole machine at the current step boundary. Pending host inputs are applied first. */
  saveSnapshot(doors: ExecutionMode): MachineSnapshot {
    const state = this.saveTransferState(doors);
    const pageNumbers = this.nonZeroPages();
    return {
      format: 'ftvm-machine-snapshot',
      version: 1,
      icount: state.icount,
      config: state.config,
      cpu: state.cpu,
      devices: state.devices,
      ram: { base: this.ram.base, size: this.ram.size, pageNumbers, pages: this.readPages(pageNumbers) },
    };
  }

  private imageState(): PlainValue {
    const image = this.core.image;
    if (!image) return null;
    // A segment's zero tail (the BSS) is stored as its length only: the state transfer's pause
    // and the snapshot's size do not pay for a megabyte of zeros.
    return {
      entry: image.entry,
      // Only with a firmware: older snapshots have none, and mean the entry.
      ...(image.kernelEntry !== undefined && image.kernelEntry !== image.entry
        ? { kernelEntry: image.kernelEntry }
        : {}),
      segments: image.segments.map((segment) => {
        let end = segment.bytes.length;
        while (end > 0 && segment.bytes[end - 1] === 0) end--;
        return {
          address: segment.address,
          bytes: segment.bytes.subarray(0, end),
          length: segment.bytes.length,
        };
      }),
    };
  }

  /**
   * Restores a snapshot into this machine, which must have the same configuration (RAM size,
   * devices and their places). Afterwards it continues exactly as the original would.
   */
  restoreSnapshot(snapshot: MachineSnapshot, doors: ExecutionMode): void {
    if (snapshot?.format !== 'ftvm-machine-snapshot' || snapshot.version !== 1) {
      throw new SnapshotError('not an ftvm machine snapshot of version 1');
    }
    this.restoreParts(snapshot, snapshot.ram, doors);
  }

  // ---- live state transfer (the paper's FT VMotion, §3.1) ----

  /**
   * The contents of some RAM pages (4 KiB each, numbered from the start of RAM), concatenated: the
   * sending side of a live state transfer reads them while the guest keeps running, then again
   * the pages a dirty-page tracker ({@link trackDirtyPages}) says were written meanwhile.
   */
  readPages(pageNumbers: readonly number[]): Uint8Array {
    const pageCount = this.ram.size >>> PAGE_SHIFT;
    const bytes = new Uint8Array(pageNumbers.length * PAGE_SIZE_BYTES);
    pageNumbers.forEach((page, index) => {
      if (!Number.isInteger(page) || page < 0 || page >= pageCount)
        throw new ConfigError(`bad page number ${page}`);
      bytes.set(
        this.ram.bytes.subarray(page * PAGE_SIZE_BYTES, (page + 1) * PAGE_SIZE_BYTES),
        index * PAGE_SIZE_BYTES,
      );
    });
    return bytes;
  }

  /**
   * The receiving side of a live state transfer: writes pages into RAM (a later copy of a page
   * replaces an earlier one). Bad page numbers or a length that does not match are refused whole.
   */
  writePages(pageNumbers: readonly number[], bytes: Uint8Array): void {
    const pageCount = this.ram.size >>> PAGE_SHIFT;
    if (bytes.length !== pageNumbers.length * PAGE_SIZE_BYTES) {
      throw new SnapshotError(`${bytes.length} bytes for ${pageNumbers.length} pages`);
    }
    for (const page of pageNumbers) {
      if (!Number.isInteger(page) || page < 0 || page >= pageCount)
        throw new SnapshotError(`bad page number ${page}`);
    }
    pageNumbers.forEach((page, index) => {
      this.ram.bytes.set(
        bytes.subarray(index * PAGE_SIZE_BYTES, (index + 1) * PAGE_SIZE_BYTES),
        page * PAGE_SIZE_BYTES,
      );
      this.ram.dirtyPages[page] = 1;
      this.cpu.invalidateMemoryRange(this.ram.base + page * PAGE_SIZE_BYTES, PAGE_SIZE_BYTES);
    });
  }

  /** Pages of RAM that hold anything but zeros: what the first round of a transfer sends. */
  nonZeroPages(): number[] {
    const pageNumbers: number[] = [];
    const pageCount = this.ram.size >>> PAGE_SHIFT;
    const words = new Int32Array(this.ram.bytes.buffer, this.ram.bytes.byteOffset, this.ram.size >>> 2);
    const wordsPerPage = PAGE_SIZE_BYTES >>> 2;
    for (let page = 0; page < pageCount; page++) {
      for (let word = page * wordsPerPage; word < (page + 1) * wordsPerPage; word++) {
        if (words[word] !== 0) {
          pageNumbers.push(page);
          break;
        }
      }
    }
    return pageNumbers;
  }

  /**
   * Everything but RAM at the current step boundary (pending host inputs applied first): the
   * CPU, the devices, the machine's own state (guest time, timers, power, the image) and the log
   * position. The last, short stop-and-copy step of a live state transfer.
   */
  saveTransferState(doors: ExecutionMode): {
    icount: number;
    nextSeq: number;
    cpu: StateSection;
    devices: Record<string, StateSection>;
    config: PlainValue;
  } {
    doors.applyPendingInputs();
    const components = this.saveComponentState(true);
    return {
      icount: this.cpu.icount,
      nextSeq: doors.nextSeq,
      cpu: components.cpu,
      devices: components.devices,
      config: {
        ...(this.config() as Record<string, PlainValue>),
        machine: components.machine,
        image: this.imageState(),
        nextSeq: doors.nextSeq,
      },
    };
  }

  /**
   * The receiving side's last step: restores what {@link saveTransferState} gave over the pages
   * already written with {@link writePages}. A replaying machine then follows the log from the
   * transferred position.
   */
  restoreTransferState(
    state: {
      cpu: StateSection;
      devices: { readonly [name: string]: StateSection };
      config: PlainValue;
    },
    doors: ExecutionMode,
  ): void {
    this.restoreParts(state, undefined, doors);
  }

  /** Restores CPU, devices, machine state and log position, and RAM when `ram` is given. */
  private restoreParts(
    snapshot: { cpu: StateSection; devices: { readonly [name: string]: StateSection }; config: PlainValue },
    ram: MachineSnapshot['ram'] | undefined,
    doors: ExecutionMode,
  ): void {
    // What the machine can check is checked before anything changes (the CPU and devices check
    // their own sections as they restore them).
    const config = snapshot.config as Record<string, PlainValue> | null;
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new SnapshotError('the snapshot has no machine configuration');
    }
    const mine = this.config() as Record<string, PlainValue>;
    for (const key of [
      'ramSizeBytes',
      'clock',
      'devices',
      'realtimeBaseNs',
      'bootArgs',
      'logOutputs',
    ] as const) {
      if (!plainValuesEqual(config[key] ?? null, mine[key] ?? null)) {
        throw new SnapshotError(`the snapshot's ${key} differs from this machine's`);
      }
    }
    if (
      ram !== undefined &&
      (typeof ram !== 'object' ||
        ram === null ||
        !Array.isArray(ram.pageNumbers) ||
        !(ram.pages instanceof Uint8Array) ||
        ram.base !== this.ram.base ||
        ram.size !== this.ram.size ||
        ram.pages.length !== ram.pageNumbers.length * PAGE_SIZE_BYTES)
    ) {
      throw new SnapshotError('the snapshot RAM does not fit this machine');
    }
    for (const page of ram?.pageNumbers ?? []) {
      if (!Number.isInteger(page) || page < 0 || page >= this.ram.size >>> PAGE_SHIFT) {
        throw new SnapshotError(`bad page number ${page} in snapshot`);
      }
    }
    if (typeof snapshot.devices !== 'object' || snapshot.devices === null) {
      throw new SnapshotError('the snapshot has no device states');
    }
    for (const { placement } of this.attached) {
      if (!snapshot.devices[placement.name]) {
        throw new SnapshotError(`the snapshot has no state for device ${placement.name}`);
      }
    }
    this.checkMachineState(config.machine);
    if (ram !== undefined) {
      this.ram.bytes.fill(0);
      ram.pageNumbers.forEach((page, index) => {
        this.ram.bytes.set(
          ram.pages.subarray(index * PAGE_SIZE_BYTES, (index + 1) * PAGE_SIZE_BYTES),
          page * PAGE_SIZE_BYTES,
        );
      });
    }
    this.ram.dirtyPages.fill(1);
    this.hasher = undefined;
    this.hasherBuild = undefined;
    this.cpu.restoreState(snapshot.cpu);
    this.cpu.invalidateMemoryCaches();
    for (const { placement, device } of this.attached) {
      device.restoreState(snapshot.devices[placement.name] as StateSection);
    }
    this.restoreMachineState(config.machine, config.image);
    this.restoreLogPosition(config.nextSeq, doors);
    // Host-side leftovers of this machine's own past belong to no snapshot.
    this.core.pendingEvents.length = 0;
    this.core.resetRequested = false;
    this.time.forgetSample();
    doors.afterRestore();
  }

  /**
   * The log continues from the snapshot's position: a recording appends from it, a replay expects
   * it first. (Snapshots from before the log position was saved start at 0.)
   */
  private restoreLogPosition(nextSeq: PlainValue | undefined, doors: ExecutionMode): void {
    const seq = typeof nextSeq === 'number' && Number.isSafeInteger(nextSeq) && nextSeq >= 0 ? nextSeq : 0;
    doors.restoreLogPosition(seq);
  }

  /** Checks the machine's own section of a snapshot without applying it. */
  private checkMachineState(state: PlainValue | undefined): void {
    const machine = state as {
      idleSkipNs?: unknown;
      clockBaseNs?: unknown;
      clockBaseIcount?: unknown;
      timers?: unknown;
      clockRatePsPerStep?: unknown;
    } | null;
    const rate = machine?.clockRatePsPerStep;
    const rateValid = rate === undefined || isHostClockRate(rate);
    const timersValid =
      Array.isArray(machine?.timers) &&
      (machine.timers as unknown[]).every((timer) => {
        const candidate = timer as {
          key?: unknown;
          device?: unknown;
          deadlineNs?: unknown;
          event?: { type?: unknown };
        } | null;
        return (
          typeof candidate?.key === 'string' &&
          typeof candidate.device === 'string' &&
          Number.isFinite(candidate.deadlineNs) &&
          typeof candidate.event?.type === 'string'
        );
      });
    if (
      !machine ||
      !Number.isFinite(machine.idleSkipNs) ||
      !Number.isFinite(machine.clockBaseNs) ||
      !Number.isFinite(machine.clockBaseIcount) ||
      !rateValid ||
      !timersValid
    ) {
      throw new SnapshotError('the snapshot has no readable machine state');
    }
  }

  private restoreMachineState(state: PlainValue | undefined, image: PlainValue | undefined): void {
    const machine = state as {
      idleSkipNs?: unknown;
      clockBaseNs?: unknown;
      clockBaseIcount?: unknown;
      realtimeAtBootNs?: unknown;
      stopped?: unknown;
      exitStatus?: unknown;
      timers?: unknown;
      clockRatePsPerStep?: unknown;
    } | null;
    const rate = machine?.clockRatePsPerStep;
    if (
      !machine ||
      typeof machine.idleSkipNs !== 'number' ||
      typeof machine.clockBaseNs !== 'number' ||
      typeof machine.clockBaseIcount !== 'number' ||
      !Array.isArray(machine.timers)
    ) {
      throw new SnapshotError('the snapshot has no machine state');
    }
    this.time.restoreState({
      idleSkipNs: machine.idleSkipNs,
      clockBaseNs: machine.clockBaseNs,
      clockBaseIcount: machine.clockBaseIcount,
      clockRatePsPerStep: typeof rate === 'number' ? rate : undefined,
      realtimeAtBootNs: machine.realtimeAtBootNs,
      timers: machine.timers as {
        key: string;
        device: string;
        deadlineNs: number;
        event: DeviceEventPayload;
      }[],
    });
    this.core.stopped = machine.stopped === true;
    this.core.exit = typeof machine.exitStatus === 'number' ? machine.exitStatus : undefined;
    const loaded = image as {
      entry: number;
      kernelEntry?: unknown;
      segments: { address: number; bytes: Uint8Array; length?: number }[];
    } | null;
    this.core.image = loaded
      ? {
          entry: loaded.entry,
          kernelEntry: typeof loaded.kernelEntry === 'number' ? loaded.kernelEntry : undefined,
          segments: loaded.segments.map((segment) => {
            if (!(segment?.bytes instanceof Uint8Array) || !Number.isSafeInteger(segment.address)) {
              throw new SnapshotError('the snapshot has a malformed image segment');
            }
            const length = segment.length ?? segment.bytes.length;
            if (!Number.isSafeInteger(length) || length < segment.bytes.length || length > this.ram.size) {
              throw new SnapshotError('the snapshot has a malformed image segment');
            }
            const bytes = new Uint8Array(length);
            bytes.set(segment.bytes);
            return { address: segment.address, bytes };
          }),
        }
      : undefined;
  }
}
