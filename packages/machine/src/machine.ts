import type {
  Cpu,
  Device,
  DeviceEnv,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  GuestClock,
  InterruptLine,
  LogEntry,
  LogSink,
  LogSource,
  MachineSnapshot,
  PlainValue,
  RamRegion,
  StateSection,
} from '@ftvm/core';
import {
  ConfigError,
  DeviceError,
  DivergenceError,
  isInStepEntry,
  isPlainValue,
  PAGE_SHIFT,
  PAGE_SIZE_BYTES,
  plainValuesEqual,
  SnapshotError,
} from '@ftvm/core';
import { RiscvCpu } from '@ftvm/cpu-riscv';
import {
  Clint,
  GoldfishRtc,
  Ns16550aUart,
  Plic,
  SifiveTestFinisher,
  VirtioMmioTransport,
} from '@ftvm/devices';
import { pack } from 'msgpackr';
import {
  CLINT_BASE,
  DEFAULT_RAM_SIZE_BYTES,
  deviceTreeAddress,
  PHANDLE_CPU,
  PHANDLE_CPU_INTERRUPT_CONTROLLER,
  PHANDLE_TEST_FINISHER,
  PLATFORM_BUS_BASE,
  PLATFORM_BUS_BYTES,
  PLATFORM_BUS_IRQ_COUNT,
  PLATFORM_BUS_IRQ_FIRST,
  PLIC_BASE,
  QEMU_FW_DYNAMIC_INFO_ADDRESS,
  RTC_BASE,
  RTC_IRQ,
  TEST_FINISHER_BASE,
  TIMEBASE_FREQUENCY_HZ,
  UART_BASE,
  UART_IRQ,
  VIRTIO_IRQ_FIRST,
  VIRTIO_MMIO_BASE,
  VIRTIO_MMIO_SLOT_BYTES,
  VIRTIO_MMIO_SLOT_COUNT,
} from './board.js';
import { buildDeviceTreeBlob } from './device-tree.js';
import type { HostClock } from './host.js';
import { type LoadedImage, parseImage } from './image.js';
import { createRam, MachineBus, RAM_BASE, RamGuestMemory } from './memory.js';
import { ReplayCursor } from './replay-cursor.js';
import { hashBytes, RamHasher } from './state-hash.js';

/**
 * How the machine treats its doors (DESIGN.md, "The device contract"):
 * - `standalone`: host inputs are applied at the next step boundary, outputs delivered at once.
 * - `record`: as standalone, and every event and non-deterministic read is appended to a log.
 * - `replay`: host inputs are ignored; events come from a log at their icount, reads are answered
 *   from it and checked; outputs are dropped (or handed on for checking).
 */
export type MachineMode = 'standalone' | 'record' | 'replay';

/**
 * Guest time: `host` follows the host clock, sampled at step boundaries (each sample a logged
 * event) and interpolated from icount between samples; `icount` derives it from the execution point
 * alone (fully deterministic runs).
 */
export type ClockMode = 'host' | 'icount';

/**
 * With the host clock, guest time advances this many nanoseconds per step between two samples: a
 * rate faster than any host runs the guest (1000 MIPS), so interpolation stays behind the host
 * clock and each sample moves guest time forward, never back.
 */
export const HOST_CLOCK_INTERPOLATION_NS_PER_STEP = 1;
/** A host clock sample is logged only when it moves guest time forward by at least this much. */
export const HOST_CLOCK_SAMPLE_NS_MIN = 10_000;

/** Guest nanoseconds per step with the deterministic clock: a nominal 100 MIPS. */
export const ICOUNT_CLOCK_NS_PER_STEP = 10;

/**
 * The real-time clock at boot with the deterministic clock, unless configured: 2026-01-01T00:00Z.
 * (Nanoseconds since the epoch exceed 2^53: such values are exact to 256 ns, and deterministic.)
 */
export const DEFAULT_REALTIME_BASE_NS = 1_767_225_600 * 1e9;

/** A device added by the user, next to the board's own. */
export interface UserDeviceSpec {
  /** Unique name (letters, digits, `-`, `_`). */
  readonly name: string;
  readonly device: Device;
  /** Guest-physical base; by default the next free place on the platform bus (0x0400_0000). */
  readonly base?: number;
  /** PLIC source; by default the next free platform-bus source (64…95); 0 for none. */
  readonly irq?: number;
}

export interface MachineOptions {
  /** Guest RAM in bytes (default 64 MiB). */
  readonly ramSizeBytes?: number;
  readonly mode?: MachineMode;
  readonly clock?: ClockMode;
  /** Host time for the `host` clock mode. Required unless `clock` is `icount` or mode is replay. */
  readonly hostClock?: HostClock;
  /** With the `icount` clock: the real-time clock's value at boot, ns since the epoch (default 2026-01-01). */
  readonly realtimeBaseNs?: number;
  /** Record mode: where log entries go. */
  readonly log?: LogSink;
  /** Replay mode: the log to follow. */
  readonly replayLog?: LogSource;
  /**
   * Record mode: log every output too (for record files), so a replay can check it produces the
   * same. Replay mode: the log holds outputs; check them. Part of the machine configuration.
   */
  readonly logOutputs?: boolean;
  /** Record mode: append a state-hash checkpoint every this many steps (0 = none). */
  readonly checkpointIntervalSteps?: number;
  /** Outputs of the devices (console bytes, frames). Not called in replay unless `replayOutputs`. */
  readonly onOutput?: (output: MachineOutput) => void;
  /** Replay mode: hand outputs to `onOutput` too (to check or show them). */
  readonly replayOutputs?: boolean;
  /** The kernel command line, as QEMU's `-append`: the guest finds it in `/chosen/bootargs`. */
  readonly bootArgs?: string;
  /** Devices beyond the board's. */
  readonly devices?: readonly UserDeviceSpec[];
  /**
   * The log's first sequence number: record mode appends from it, replay mode expects it first
   * (a backup cloned from a running primary follows the log from where the clone was taken).
   * Default 0; a restored snapshot sets it.
   */
  readonly firstSeq?: number;
  /**
   * Record mode: outputs are held until the owner of the machine releases them (an FT primary
   * releases an output when the backup acknowledged its covering log position). By default an
   * output is released as soon as it is covered.
   */
  readonly holdOutputs?: boolean;
  /** Virtio devices for the slots, in slot order (slot n at 0x1000_1000 + n·0x1000). */
  readonly virtioSlots?: readonly (Device | undefined)[];
}

/**
 * One output of a device, with the point it was produced at.
 *
 * The output rule (DESIGN.md, "The output rule, precisely"): an output produced during the step
 * at icount N may leave only once the backup has acknowledged a log position from which it would
 * execute at least through step N. In record mode the machine hands an output to `onOutput` only
 * once the log holds such a position, `coveringSeq`: the first entry after the output that lets a
 * follower run past N (an event, checkpoint, progress mark or stop at an icount above N). When no
 * such entry comes by itself, the machine appends a progress mark for it at the end of the run
 * chunk or slice. Counting the entries appended before the output is not enough: a backup holding
 * them only may go live before N.
 */
export interface MachineOutput {
  readonly device: string;
  readonly kind: string;
  readonly data: Uint8Array;
  readonly icount: number;
  /**
   * Record mode: the sequence number of the log entry that covers this output; a backup that
   * acknowledged it may let it go. -1 on a standalone machine or a replay (no log to cover it).
   */
  readonly coveringSeq: number;
  /**
   * Lets the output go: resolves the promise the device got from its output door. A machine with
   * `holdOutputs` waits for this; otherwise it was called already. Calling it twice is harmless.
   */
  release(): void;
}

/** Why a slice of execution ended. */
export type SliceEnd =
  /** The step budget was used; more can run. */
  | 'budget'
  /** The hart waits for an interrupt; a host input or a timer must come first. */
  | 'waiting'
  /** Replay: the log has nothing more yet (a live stream); more can run once it arrives. */
  | 'log-starved'
  /** The machine stopped: powered off, or (replay) the log ended. */
  | 'stopped'
  /** Record mode: the log sink is full; run again once it has room. */
  | 'log-full';

/**
 * A bound on a slice in host time, so a guest that polls an MMIO register (slow steps) cannot hold
 * the thread for long: checked between run chunks of at most {@link RUN_CHUNK_STEPS} steps.
 */
export interface SliceTimeLimit {
  /** The host's monotonic clock, in nanoseconds. */
  readonly nowNs: () => number;
  /** End the slice once `nowNs()` reaches this. */
  readonly deadlineNs: number;
}

export interface SliceOutcome {
  readonly steps: number;
  readonly end: SliceEnd;
}

interface PendingTimer {
  readonly device: string;
  readonly deadlineNs: number;
  readonly event: DeviceEventPayload;
}

/**
 * Steps of one CPU run inside a slice: between runs the machine covers pending outputs with a
 * progress mark (so an output waits for its log position at most this many steps) and checks a
 * slice's host-time limit.
 */
export const RUN_CHUNK_STEPS = 65_536;

/** An output of a recording machine waiting for a log entry that covers it. */
interface UncoveredOutput {
  readonly device: string;
  readonly kind: string;
  readonly data: Uint8Array;
  readonly icount: number;
  readonly resolve: (() => void) | undefined;
}

/** A slice hands control back to the host after this many rounds that executed no step. */
const ROUNDS_WITHOUT_STEPS_MAX = 1000;

/** The fixed part of a state hash: RAM, CPU and machine state, 8 bytes each (then 4 per device). */
const STATE_HASH_FIXED_BYTES = 24;

/** What the output door answers when nothing holds the output. */
const RELEASED: Promise<void> = Promise.resolve();
const NOTHING_TO_RELEASE = (): void => {};

/** The machine's own name in the log, for the events it raises itself. */
export const MACHINE_LOG_NAME = '@machine';

const DEVICE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

interface AttachedDevice {
  readonly placement: DevicePlacement;
  readonly device: Device;
}

/**
 * The VMM: the board, its devices, the run loop that applies inputs at exact execution points,
 * record and replay, snapshots, dirty pages and state hashes. Synchronous: `runSlice` executes a
 * bounded number of steps and returns; the asynchronous driver in `driver.ts` (or the FT roles)
 * decide when to call it.
 */
export class Machine {
  #mode: MachineMode;
  readonly clockMode: ClockMode;
  readonly ram: RamRegion;
  readonly bus: MachineBus;
  readonly cpu: RiscvCpu;
  readonly uart: Ns16550aUart;
  readonly clint: Clint;
  readonly plic: Plic;
  readonly rtc: GoldfishRtc;
  readonly testFinisher: SifiveTestFinisher;
  /** The device tree handed to the guest in a1. */
  readonly deviceTree: DeviceTreeNode;
  readonly deviceTreeBlob: Uint8Array;
  readonly deviceTreeAddress: number;

  private options: MachineOptions;
  private readonly attached: AttachedDevice[] = [];
  private readonly devicesByName = new Map<string, Device>();
  private readonly memory: RamGuestMemory;
  private readonly pendingEvents: { device: string; event: DeviceEventPayload }[] = [];
  private readonly timers = new Map<string, PendingTimer>();
  private cursor: ReplayCursor | undefined;
  private image: LoadedImage | undefined;
  private logLength = 0;
  /** Record mode: outputs waiting for a covering log entry, oldest first. */
  private uncovered: UncoveredOutput[] = [];
  private stopped = false;
  private exit: number | undefined;
  private resetRequested = false;
  /** True while the CPU executes (MMIO handlers run then). */
  private insideRun = false;
  /** Replay: the log's power-off entry was met where the guest powered off. */
  private replayStopMatched = false;
  /** Replay: the whole log was applied and the guest is still running (it can go live). */
  private replayLogEnded = false;
  /** Guest time skipped while the hart idled, with the deterministic clock. */
  private idleSkipNs = 0;
  /** Host clock at boot: the host's guest-time reading is host time minus this. */
  private hostMonotonicBaseNs = 0;
  /** Host clock mode: guest time at `clockBaseIcount`, set by the last (logged) sample. */
  private clockBaseNs = 0;
  private clockBaseIcount = 0;
  /** Host clock mode: the latest sample pushed for application (guest time reaches it when applied). */
  private sampledNs = 0;
  /** Host clock mode: the real-time clock at guest time 0 (logged at boot); undefined until then. */
  private realtimeAtBootNs: number | undefined;
  private nextCheckpointIcount: number;
  private hasher: RamHasher | undefined;
  /** Pages written since the last collection, per consumer (hash, dirty trackers). */
  private readonly hashChangedPages: Uint8Array;
  private readonly dirtyTrackers = new Set<Uint8Array>();
  private wakeListener: (() => void) | undefined;

  constructor(options: MachineOptions = {}) {
    this.options = options;
    this.#mode = options.mode ?? 'standalone';
    this.clockMode = options.clock ?? 'host';
    if (this.#mode === 'record' && !options.log) throw new ConfigError('record mode needs a log to write to');
    if (this.#mode === 'replay' && !options.replayLog)
      throw new ConfigError('replay mode needs a log to follow');
    if (this.clockMode === 'host' && this.#mode !== 'replay' && !options.hostClock) {
      throw new ConfigError('the host clock mode needs a host clock');
    }
    const firstSeq = options.firstSeq ?? 0;
    if (!Number.isSafeInteger(firstSeq) || firstSeq < 0)
      throw new ConfigError(`bad first sequence number ${firstSeq}`);
    this.logLength = firstSeq;
    this.cursor =
      this.#mode === 'replay' && options.replayLog
        ? new ReplayCursor(options.replayLog, firstSeq)
        : undefined;
    const checkpointInterval = options.checkpointIntervalSteps ?? 0;
    if (!Number.isSafeInteger(checkpointInterval) || checkpointInterval < 0) {
      throw new ConfigError(`bad checkpoint interval ${checkpointInterval}`);
    }
    this.nextCheckpointIcount =
      checkpointInterval > 0 && this.#mode === 'record' ? checkpointInterval : Infinity;

    this.ram = createRam(RAM_BASE, options.ramSizeBytes ?? DEFAULT_RAM_SIZE_BYTES);
    this.hashChangedPages = new Uint8Array(this.ram.dirtyPages.length);
    this.bus = new MachineBus(this.ram);
    this.memory = new RamGuestMemory(this.ram, () => this.cpu);
    if (options.hostClock) this.hostMonotonicBaseNs = options.hostClock.monotonicNs();

    const nowhere: InterruptLine = { set() {} };
    const cpuLine = (line: Parameters<Cpu['setInterruptLine']>[0]): InterruptLine => ({
      set: (level) => this.cpu.setInterruptLine(line, level),
    });
    this.clint = new Clint({
      softwareInterrupt: cpuLine('machine-software'),
      timerInterrupt: cpuLine('machine-timer'),
    });
    this.cpu = new RiscvCpu({ bus: this.bus, readTime: () => this.clint.readMtime() });
    this.plic = new Plic({ contexts: [cpuLine('machine-external'), cpuLine('supervisor-external')] });
    this.uart = new Ns16550aUart();
    this.rtc = new GoldfishRtc();
    this.testFinisher = new SifiveTestFinisher();

    this.attach('test', this.testFinisher, TEST_FINISHER_BASE, 0, nowhere);
    this.attach('rtc', this.rtc, RTC_BASE, RTC_IRQ);
    this.attach('clint', this.clint, CLINT_BASE, 0, nowhere);
    this.attach('plic', this.plic, PLIC_BASE, 0, nowhere);
    this.attach('uart', this.uart, UART_BASE, UART_IRQ);
    for (let slot = 0; slot < VIRTIO_MMIO_SLOT_COUNT; slot++) {
      const device = options.virtioSlots?.[slot] ?? new VirtioMmioTransport(); // an empty slot: device id 0
      this.attach(
        `virtio${slot}`,
        device,
        VIRTIO_MMIO_BASE + slot * VIRTIO_MMIO_SLOT_BYTES,
        VIRTIO_IRQ_FIRST + slot,
      );
    }
    this.attachUserDevices(options.devices ?? []);

    this.deviceTree = this.buildDeviceTree();
    this.deviceTreeBlob = buildDeviceTreeBlob(this.deviceTree);
    this.deviceTreeAddress = deviceTreeAddress(this.ram.base, this.ram.size, this.deviceTreeBlob.length);
    if (this.deviceTreeAddress < this.ram.base) {
      throw new ConfigError(
        `the device tree (${this.deviceTreeBlob.length} bytes) does not fit in ${this.ram.size} bytes of RAM`,
      );
    }
  }

  private attachUserDevices(specs: readonly UserDeviceSpec[]): void {
    let nextBase = PLATFORM_BUS_BASE;
    let nextIrq = PLATFORM_BUS_IRQ_FIRST;
    for (const spec of specs) {
      const size = Math.ceil(spec.device.mmioSize / PAGE_SIZE_BYTES) * PAGE_SIZE_BYTES;
      const base = spec.base ?? nextBase;
      if (spec.base === undefined) {
        if (base + size > PLATFORM_BUS_BASE + PLATFORM_BUS_BYTES) {
          throw new DeviceError(`${spec.name}: the platform bus is full`);
        }
        nextBase += size;
      }
      let irq = spec.irq;
      if (irq === undefined) {
        if (nextIrq >= PLATFORM_BUS_IRQ_FIRST + PLATFORM_BUS_IRQ_COUNT) {
          throw new DeviceError(`${spec.name}: no free platform-bus interrupt`);
        }
        irq = nextIrq++;
      }
      this.attach(spec.name, spec.device, base, irq);
    }
  }

  private attach(name: string, device: Device, base: number, irq: number, line?: InterruptLine): void {
    if (!DEVICE_NAME_PATTERN.test(name)) throw new DeviceError(`bad device name '${name}'`);
    if (this.devicesByName.has(name)) throw new DeviceError(`two devices are named '${name}'`);
    if (!Number.isInteger(irq) || irq < 0 || irq >= 96)
      throw new DeviceError(`${name}: bad interrupt ${irq}`);
    const placement: DevicePlacement = { name, base, irq };
    this.bus.addWindow({ name, base, size: device.mmioSize, device });
    const irqLine = line ?? (irq > 0 ? this.plic.sourceLine(irq) : { set() {} });
    device.attach(this.envFor(name, irqLine), placement);
    this.attached.push({ placement, device });
    this.devicesByName.set(name, device);
  }

  /** The doors of the device contract, for one device. */
  private envFor(name: string, irq: InterruptLine): DeviceEnv {
    const clock: GuestClock = {
      monotonicNs: () => this.guestMonotonicNs(),
      realtimeNs: () => this.guestRealtimeNs(),
    };
    return {
      name,
      inject: (event) => this.injectEvent(name, event),
      injectAt: (key, monotonicNs, event) => this.setTimer(name, key, monotonicNs, event),
      cancelInjectAt: (key) => {
        this.timers.delete(`${name}\u0000${key}`);
      },
      nondet: (key, read) => this.nondet(name, key, read),
      output: (kind, data) => this.deliverOutput(name, kind, data),
      memory: this.memory,
      irq,
      clock,
      icount: () => this.cpu.icount,
      control: {
        powerOff: (exitStatus) => {
          this.exit = exitStatus;
          this.stopped = true;
          this.cpu.requestStop();
        },
        reset: () => {
          this.resetRequested = true;
          this.cpu.requestStop();
        },
      },
    };
  }

  // ---- the doors ----

  private injectEvent(device: string, event: DeviceEventPayload): void {
    if (this.#mode === 'replay' || this.stopped) return; // the log supplies events on a replay
    this.pendingEvents.push({ device, event });
    this.wakeListener?.();
  }

  /**
   * Timers are kept on a replay too (never fired there: the log has their events), so a backup that
   * goes live holds the timers its devices armed.
   */
  private setTimer(device: string, key: string, deadlineNs: number, event: DeviceEventPayload): void {
    // A deadline that is not a number of nanoseconds could never fire, or would fire forever.
    if (!Number.isFinite(deadlineNs)) return;
    this.timers.set(`${device}\u0000${key}`, { device, deadlineNs: Math.max(0, deadlineNs), event });
    // Armed from inside an instruction: end this run so the next budget stops at the deadline.
    if (this.insideRun && this.#mode !== 'replay') this.cpu.requestStop();
    this.wakeListener?.();
  }

  private nondet<T extends PlainValue>(device: string, key: string, read: () => T): T {
    if (this.#mode === 'standalone') return read();
    const icount = this.cpu.icount;
    if (this.#mode === 'record') {
      const value = read();
      this.append({ kind: 'nondet', seq: this.logLength, icount, device, key, value });
      return value;
    }
    const cursor = this.cursor as ReplayCursor;
    const entry = cursor.peek();
    if (entry === undefined) {
      throw new DivergenceError('extra-entry', icount, 'no further log entry', `a read of ${device}/${key}`);
    }
    if (entry.kind !== 'nondet' || entry.icount !== icount || entry.device !== device || entry.key !== key) {
      if (entry.kind === 'output' && entry.icount <= icount) {
        throw new DivergenceError(
          'output',
          entry.icount,
          describeEntry(entry),
          `a read of ${device}/${key} at icount ${icount}`,
        );
      }
      throw new DivergenceError(
        'nondet-mismatch',
        icount,
        describeEntry(entry),
        `a read of ${device}/${key} at icount ${icount}`,
      );
    }
    cursor.advance();
    return entry.value as T;
  }

  private deliverOutput(device: string, kind: string, data: Uint8Array): Promise<void> {
    const icount = this.cpu.icount;
    if (this.options.logOutputs) {
      if (this.#mode === 'record') {
        this.append({
          kind: 'output',
          seq: this.logLength,
          icount: this.cpu.icount,
          device,
          stream: kind,
          data: data.slice(),
        });
      } else if (this.#mode === 'replay') {
        this.checkOutput(device, kind, data);
      }
    }
    if (this.#mode === 'replay' && !this.options.replayOutputs) return RELEASED;
    if (this.#mode === 'record') {
      // Held until a log entry covers it (and, with holdOutputs, until its owner releases it).
      let resolve: (() => void) | undefined;
      const released = new Promise<void>((settle) => {
        resolve = settle;
      });
      this.uncovered.push({ device, kind, data, icount, resolve });
      return released;
    }
    this.options.onOutput?.({ device, kind, data, icount, coveringSeq: -1, release: NOTHING_TO_RELEASE });
    return RELEASED;
  }

  /** Record mode: hands on every held output that `covering` (just appended) covers. */
  private coverOutputs(covering: LogEntry): void {
    let covered = 0;
    while (
      covered < this.uncovered.length &&
      (this.uncovered[covered] as UncoveredOutput).icount < covering.icount
    )
      covered++;
    if (covered === 0) return;
    const outputs = this.uncovered.splice(0, covered);
    const hold = this.options.holdOutputs === true;
    for (const output of outputs) {
      const release = output.resolve ?? NOTHING_TO_RELEASE;
      this.options.onOutput?.({
        device: output.device,
        kind: output.kind,
        data: output.data,
        icount: output.icount,
        coveringSeq: covering.seq,
        release,
      });
      if (!hold) release();
    }
  }

  /**
   * Record mode, between runs: a progress mark here covers the outputs of the steps executed so
   * far, so they need not wait for the slice to end.
   */
  private coverPendingOutputs(): void {
    if (this.#mode !== 'record' || this.uncovered.length === 0) return;
    if ((this.uncovered[0] as UncoveredOutput).icount >= this.cpu.icount) return;
    this.append({ kind: 'progress', seq: this.logLength, icount: this.cpu.icount });
  }

  /** Replay: the output must be the next logged one, byte for byte. */
  private checkOutput(device: string, stream: string, data: Uint8Array): void {
    const icount = this.cpu.icount;
    const cursor = this.cursor as ReplayCursor;
    const entry = cursor.peek();
    const actual = `${device}/${stream} output ${describeBytes(data)} at icount ${icount}`;
    if (entry?.kind !== 'output') {
      throw new DivergenceError(
        'output',
        icount,
        entry ? describeEntry(entry) : 'no further log entry',
        actual,
      );
    }
    if (
      entry.icount !== icount ||
      entry.device !== device ||
      entry.stream !== stream ||
      !plainValuesEqual(entry.data, data)
    ) {
      throw new DivergenceError('output', icount, describeEntry(entry), actual);
    }
    cursor.advance();
  }

  private append(entry: LogEntry): void {
    this.logLength++;
    const sink = this.options.log as LogSink;
    sink.append(entry);
    if (this.uncovered.length > 0 && !isInStepEntry(entry)) this.coverOutputs(entry);
    // A full sink stops the guest at the next step boundary (the primary waits for its backup).
    if (sink.full === true && this.insideRun) this.cpu.requestStop();
  }

  /** Record mode: true while the log sink cannot take more. */
  private get logFull(): boolean {
    return this.#mode === 'record' && (this.options.log as LogSink).full === true;
  }

  // ---- guest time ----

  /**
   * Guest time now. Reads are not logged: time is a function of the execution point and of the
   * clock samples, which are logged events.
   */
  private guestMonotonicNs(): number {
    if (this.clockMode === 'icount') return this.cpu.icount * ICOUNT_CLOCK_NS_PER_STEP + this.idleSkipNs;
    return this.clockBaseNs + (this.cpu.icount - this.clockBaseIcount) * HOST_CLOCK_INTERPOLATION_NS_PER_STEP;
  }

  private guestRealtimeNs(): number {
    const atBoot =
      this.clockMode === 'icount'
        ? (this.options.realtimeBaseNs ?? DEFAULT_REALTIME_BASE_NS)
        : (this.realtimeAtBootNs ?? 0);
    return atBoot + this.guestMonotonicNs();
  }

  /**
   * Host clock mode, at a step boundary of a live machine: a sample of the host clock becomes a
   * logged event that moves guest time forward (and, the first time, fixes the real-time clock).
   */
  private sampleHostClock(): void {
    if (this.clockMode !== 'host' || this.#mode === 'replay') return;
    if (this.realtimeAtBootNs === undefined) {
      const realtime =
        Math.floor((this.options.hostClock as HostClock).realtimeNs()) - this.hostMonotonicNow();
      this.pendingEvents.push({
        device: MACHINE_LOG_NAME,
        event: { type: 'realtime-at-boot', data: realtime },
      });
    }
    const sample = this.hostMonotonicNow();
    const ahead = sample - this.guestMonotonicNs();
    // Small steps are not worth an entry, unless a timer falls due in them: it must fire at a guest
    // time that has reached its deadline.
    const timerDue = (this.earliestTimerDeadlineNs() ?? Infinity) <= sample;
    if (ahead >= HOST_CLOCK_SAMPLE_NS_MIN || (ahead > 0 && timerDue)) {
      this.pendingEvents.push({ device: MACHINE_LOG_NAME, event: { type: 'clock-sample', data: sample } });
      this.sampledNs = sample;
    }
  }

  private hostMonotonicNow(): number {
    return Math.max(
      0,
      Math.floor((this.options.hostClock as HostClock).monotonicNs() - this.hostMonotonicBaseNs),
    );
  }

  /**
   * Guest time as it will be once the pending events are applied: timers fire by it, so a timer
   * event always finds guest time at or past its deadline.
   */
  private currentTimeForTimers(): number {
    return Math.max(this.guestMonotonicNs(), this.sampledNs);
  }

  /**
   * How long, in host time, until a deadline: what the driver may sleep while the hart idles. With
   * the host clock, guest time catches up at the next sample.
   */
  private hostDelayToTimerNs(deadlineNs: number): number {
    const now =
      this.clockMode === 'host' && this.#mode !== 'replay'
        ? Math.max(this.hostMonotonicNow(), this.guestMonotonicNs())
        : this.guestMonotonicNs();
    return Math.max(0, deadlineNs - now);
  }

  private earliestTimerDeadlineNs(): number | undefined {
    let earliest: number | undefined;
    for (const timer of this.timers.values()) {
      if (earliest === undefined || timer.deadlineNs < earliest) earliest = timer.deadlineNs;
    }
    return earliest;
  }

  // ---- loading and booting ----

  /**
   * Loads a guest image (ELF or raw binary) and the device tree into RAM and points the hart at the
   * image's entry with the registers QEMU's reset vector would leave.
   */
  loadImage(bytes: Uint8Array, name = 'image'): void {
    const image = parseImage(bytes, this.ram, name);
    const blobEnd = this.deviceTreeAddress + this.deviceTreeBlob.length;
    for (const segment of image.segments) {
      if (segment.address < blobEnd && this.deviceTreeAddress < segment.address + segment.bytes.length) {
        throw new ConfigError(
          `${name}: the image overlaps the device tree at the top of RAM; give the guest more memory`,
        );
      }
    }
    this.image = image;
    this.boot();
  }

  private boot(): void {
    const image = this.image;
    if (!image) throw new ConfigError('no image loaded');
    for (const segment of image.segments) {
      this.ram.bytes.set(segment.bytes, segment.address - this.ram.base);
      this.markPagesWritten(segment.address - this.ram.base, segment.bytes.length);
    }
    this.ram.bytes.set(this.deviceTreeBlob, this.deviceTreeAddress - this.ram.base);
    this.markPagesWritten(this.deviceTreeAddress - this.ram.base, this.deviceTreeBlob.length);
    this.cpu.invalidateMemoryCaches();
    this.cpu.reset(image.entry, 0, this.deviceTreeAddress);
    this.cpu.setRegister(12, QEMU_FW_DYNAMIC_INFO_ADDRESS); // a2
    this.cpu.setRegister(5, image.entry); // t0
  }

  private markPagesWritten(offset: number, length: number): void {
    if (length <= 0) return;
    this.ram.dirtyPages.fill(1, offset >>> PAGE_SHIFT, ((offset + length - 1) >>> PAGE_SHIFT) + 1);
  }

  /** A board reset (the test finisher's 0x7777): devices to power-on state, image reloaded. */
  private resetBoard(): void {
    this.resetRequested = false;
    for (const { device } of this.attached) device.reset();
    this.timers.clear();
    this.boot();
  }

  // ---- running ----

  /** How the machine treats its doors; a replaying machine becomes live with {@link goLive}. */
  get mode(): MachineMode {
    return this.#mode;
  }

  /** True once the guest powered the machine off (or a replay reached the end of its log). */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** The guest's exit status once it powered off (test finisher), else undefined. */
  get exitStatus(): number | undefined {
    return this.exit;
  }

  /** Called whenever a host input or a timer arrives: the driver uses it to end an idle wait. */
  onWake(listener: (() => void) | undefined): void {
    this.wakeListener = listener;
  }

  /**
   * Host-side: how long until the earliest device timer fires, in guest nanoseconds, or undefined
   * when none is armed. The driver sleeps this long while the hart idles.
   */
  nextTimerDelayNs(): number | undefined {
    // A replay fires no timer: the log brings their events.
    if (this.#mode === 'replay') return undefined;
    const earliest = this.earliestTimerDeadlineNs();
    return earliest === undefined ? undefined : this.hostDelayToTimerNs(earliest);
  }

  /** True when a host input is waiting to be applied at the next boundary. */
  get hasPendingInput(): boolean {
    return this.pendingEvents.length > 0;
  }

  /**
   * Executes at most `maxSteps` steps, applying inputs at their exact points; with `limit`, also
   * ends once the host clock passes its deadline (checked every {@link RUN_CHUNK_STEPS} steps).
   */
  runSlice(maxSteps: number, limit?: SliceTimeLimit): SliceOutcome {
    if (this.stopped) return { steps: 0, end: 'stopped' };
    return this.#mode === 'replay' ? this.replaySlice(maxSteps, limit) : this.liveSlice(maxSteps, limit);
  }

  private liveSlice(maxSteps: number, limit: SliceTimeLimit | undefined): SliceOutcome {
    let steps = 0;
    let roundsWithoutSteps = 0;
    let sample = true;
    while (steps < maxSteps) {
      // Devices that keep re-arming timers around an idle hart must not hold the host forever.
      if (roundsWithoutSteps > ROUNDS_WITHOUT_STEPS_MAX) return this.endLiveSlice(steps, 'budget');
      if (this.logFull) return this.endLiveSlice(steps, 'log-full');
      // A run cut only by the chunk size is no reason for a clock sample (it would cost log).
      if (sample) this.sampleHostClock();
      this.fireDueTimers();
      this.applyPendingEvents();
      if (this.stopped) break;
      let budget = maxSteps - steps;
      budget = Math.min(budget, this.nextCheckpointIcount - this.cpu.icount);
      const chunkBound = budget > RUN_CHUNK_STEPS;
      budget = Math.min(budget, RUN_CHUNK_STEPS);
      // Guest time also advances with the steps themselves: stop where it reaches the earliest
      // timer, so the timer fires there and the guest never reads a time past a deadline whose
      // interrupt has not been raised.
      const deadline = this.earliestTimerDeadlineNs();
      if (deadline !== undefined) {
        const nsPerStep =
          this.clockMode === 'icount' ? ICOUNT_CLOCK_NS_PER_STEP : HOST_CLOCK_INTERPOLATION_NS_PER_STEP;
        const guestDelay = Math.max(0, deadline - this.guestMonotonicNs());
        budget = Math.min(budget, Math.max(1, Math.ceil(guestDelay / nsPerStep)));
      }
      this.insideRun = true;
      const outcome = this.cpu.run(budget);
      this.insideRun = false;
      steps += outcome.steps;
      roundsWithoutSteps = outcome.steps === 0 ? roundsWithoutSteps + 1 : 0;
      sample = !(chunkBound && outcome.reason === 'budget' && budget === RUN_CHUNK_STEPS);
      this.afterRun(outcome.reason);
      if (this.cpu.icount >= this.nextCheckpointIcount) {
        this.append({
          kind: 'checkpoint',
          seq: this.logLength,
          icount: this.cpu.icount,
          stateHash: this.stateHash(),
        });
        this.nextCheckpointIcount += this.options.checkpointIntervalSteps ?? 0;
      }
      if (this.stopped) break;
      if (outcome.reason === 'wfi') {
        if (this.pendingEvents.length > 0) continue;
        if (this.clockMode === 'icount' && this.timers.size > 0) {
          this.skipIdleTimeToNextTimer();
          continue;
        }
        this.fireDueTimers();
        if (this.pendingEvents.length > 0) continue;
        return this.endLiveSlice(steps, 'waiting');
      }
      this.coverPendingOutputs();
      if (limit !== undefined && limit.nowNs() >= limit.deadlineNs) return this.endLiveSlice(steps, 'budget');
    }
    if (this.stopped && this.#mode === 'record') {
      this.append({ kind: 'stop', seq: this.logLength, icount: this.cpu.icount, exitStatus: this.exit ?? 0 });
    }
    return this.endLiveSlice(steps, this.stopped ? 'stopped' : 'budget');
  }

  /** Every output of the slice leaves covered: a progress mark covers those still waiting. */
  private endLiveSlice(steps: number, end: SliceEnd): SliceOutcome {
    this.coverPendingOutputs();
    return { steps, end };
  }

  private afterRun(reason: string): void {
    if (reason === 'stop' && this.resetRequested && !this.stopped) this.resetBoard();
  }

  /** Deterministic clock, idle hart: jump guest time to the next timer (logged as an event). */
  private skipIdleTimeToNextTimer(): void {
    const delay = this.nextTimerDelayNs() ?? 0;
    if (delay > 0)
      this.pendingEvents.push({ device: MACHINE_LOG_NAME, event: { type: 'clock-advance', data: delay } });
    this.applyPendingEvents();
    this.fireDueTimers();
  }

  /** Replay: the logged event of a timer fired on the recording side; that timer is gone. */
  private forgetFiredTimer(device: string, event: DeviceEventPayload): void {
    for (const [key, timer] of this.timers) {
      if (
        timer.device === device &&
        timer.event.type === event.type &&
        plainValuesEqual(timer.event.data ?? null, event.data ?? null)
      ) {
        this.timers.delete(key);
        return;
      }
    }
  }

  private fireDueTimers(): void {
    if (this.timers.size === 0) return;
    const now = this.currentTimeForTimers();
    for (const [key, timer] of this.timers) {
      if (timer.deadlineNs <= now) {
        this.timers.delete(key);
        this.pendingEvents.push({ device: timer.device, event: timer.event });
      }
    }
  }

  private applyPendingEvents(): void {
    while (this.pendingEvents.length > 0) {
      const { device, event } = this.pendingEvents.shift() as { device: string; event: DeviceEventPayload };
      if (this.#mode === 'record') {
        this.append({ kind: 'event', seq: this.logLength, icount: this.cpu.icount, device, event });
      }
      this.applyEvent(device, event);
    }
  }

  private applyEvent(device: string, event: DeviceEventPayload): void {
    if (device === MACHINE_LOG_NAME) {
      const value = event.data;
      if (typeof value !== 'number' || !Number.isFinite(value)) return;
      if (event.type === 'clock-advance' && value >= 0) this.idleSkipNs += value;
      if (event.type === 'clock-sample') {
        // Never backwards: guest time is monotonic whatever a (hostile) log says.
        this.clockBaseNs = Math.max(value, this.guestMonotonicNs());
        this.clockBaseIcount = this.cpu.icount;
      }
      if (event.type === 'realtime-at-boot') this.realtimeAtBootNs = value;
      return;
    }
    this.devicesByName.get(device)?.applyEvent(event);
  }

  private replaySlice(maxSteps: number, limit: SliceTimeLimit | undefined): SliceOutcome {
    const cursor = this.cursor as ReplayCursor;
    let steps = 0;
    while (steps < maxSteps) {
      this.applyLoggedEntriesAtCurrentPoint();
      if (this.stopped) return this.endOfReplay(steps);
      const boundary = cursor.nextBoundaryIcount();
      if (boundary === undefined) {
        if (!cursor.ended) return { steps, end: 'log-starved' };
        const leftover = cursor.peek();
        if (leftover) {
          throw new DivergenceError(
            'missing-entry',
            this.cpu.icount,
            describeEntry(leftover),
            'the end of the run',
          );
        }
        this.stopped = true;
        this.replayLogEnded = true;
        return { steps, end: 'stopped' };
      }
      if (boundary <= this.cpu.icount) {
        // Everything at this point was applied, so what stands before the boundary is a read or an
        // output the guest did not make here: running on would never reach it.
        const entry = cursor.peek() as LogEntry;
        throw new DivergenceError(
          entry.kind === 'output' ? 'output' : 'missing-entry',
          this.cpu.icount,
          describeEntry(entry),
          'nothing of the kind by the guest',
        );
      }
      if (limit !== undefined && steps > 0 && limit.nowNs() >= limit.deadlineNs)
        return { steps, end: 'budget' };
      const budget = Math.min(maxSteps - steps, boundary - this.cpu.icount, RUN_CHUNK_STEPS);
      this.insideRun = true;
      const outcome = this.cpu.run(budget);
      this.insideRun = false;
      steps += outcome.steps;
      this.afterRun(outcome.reason);
      this.checkNoSkippedReads();
      if (outcome.reason === 'wfi' && this.cpu.icount < boundary) {
        throw new DivergenceError(
          'missing-entry',
          this.cpu.icount,
          `execution up to icount ${boundary}`,
          'the guest waiting for an interrupt',
        );
      }
      if (this.stopped) {
        // Checkpoints logged at the power-off point come before the stop entry.
        this.applyLoggedEntriesAtCurrentPoint();
        return this.endOfReplay(steps);
      }
    }
    return { steps, end: 'budget' };
  }

  /** Replay, the guest powered off: the log must say so, here, with the same status. */
  private endOfReplay(steps: number): SliceOutcome {
    if (!this.replayStopMatched) {
      const entry = (this.cursor as ReplayCursor).peek();
      throw new DivergenceError(
        'end',
        this.cpu.icount,
        entry ? describeEntry(entry) : 'the log to go on',
        `power-off with status ${this.exit}`,
      );
    }
    return { steps, end: 'stopped' };
  }

  /** Replay: applies the events, checkpoints and marks logged at exactly the current icount. */
  private applyLoggedEntriesAtCurrentPoint(): void {
    const cursor = this.cursor as ReplayCursor;
    for (let entry = cursor.peek(); entry !== undefined; entry = cursor.peek()) {
      if (entry.icount < this.cpu.icount) {
        throw new DivergenceError(
          'missing-entry',
          this.cpu.icount,
          describeEntry(entry),
          'execution past it',
        );
      }
      if (entry.icount > this.cpu.icount || isInStepEntry(entry)) return;
      switch (entry.kind) {
        case 'event':
          cursor.advance();
          if (
            typeof entry.device !== 'string' ||
            typeof entry.event?.type !== 'string' ||
            !isPlainValue(entry.event.data ?? null)
          ) {
            throw new DivergenceError(
              'missing-entry',
              entry.icount,
              'a well-formed event',
              describeEntry(entry),
            );
          }
          if (entry.device !== MACHINE_LOG_NAME && !this.devicesByName.has(entry.device)) {
            throw new DivergenceError(
              'missing-entry',
              entry.icount,
              `an event for a device of this machine`,
              describeEntry(entry),
            );
          }
          this.forgetFiredTimer(entry.device, entry.event);
          this.applyEvent(entry.device, entry.event);
          break;
        case 'checkpoint': {
          cursor.advance();
          const actual = this.stateHash();
          if (!plainValuesEqual(actual, entry.stateHash)) {
            throw new DivergenceError(
              'state-hash',
              entry.icount,
              hex(entry.stateHash),
              hex(actual),
              `differs in ${this.describeStateHashDifference(entry.stateHash, actual)}`,
            );
          }
          break;
        }
        case 'progress':
          cursor.advance();
          break;
        case 'stop':
          if (this.stopped && entry.exitStatus === this.exit) {
            cursor.advance();
            this.replayStopMatched = true;
            return;
          }
          throw new DivergenceError(
            'end',
            entry.icount,
            `power-off with status ${entry.exitStatus}`,
            'the guest running on',
          );
        default:
          throw new DivergenceError(
            'missing-entry',
            this.cpu.icount,
            describeEntry(entry as LogEntry),
            'an entry of a known kind',
          );
      }
    }
  }

  private checkNoSkippedReads(): void {
    const entry = (this.cursor as ReplayCursor).peek();
    if (entry && isInStepEntry(entry) && entry.icount < this.cpu.icount) {
      const kind = entry.kind === 'output' ? 'output' : 'missing-entry';
      throw new DivergenceError(kind, entry.icount, describeEntry(entry), 'nothing of the kind by the guest');
    }
  }

  /**
   * Go-live (the paper's backup taking over): a replaying machine that applied its whole log, the
   * guest still running, becomes a live machine at exactly that point. Every device's `onGoLive`
   * runs (disk requests that were in flight are reissued, timers are armed again), guest time goes
   * on from where the log left it, and the machine continues standalone or recording a new log
   * (whose sequence numbers start at `firstSeq`).
   */
  goLive(options: {
    mode?: 'standalone' | 'record';
    log?: LogSink;
    firstSeq?: number;
    hostClock?: HostClock;
    onOutput?: (output: MachineOutput) => void;
  }): void {
    if (this.#mode !== 'replay' || !this.replayLogEnded || this.exit !== undefined) {
      throw new ConfigError('only a replay that applied its whole log, the guest still running, can go live');
    }
    const mode = options.mode ?? 'standalone';
    if (mode === 'record' && !options.log) throw new ConfigError('record mode needs a log to write to');
    if (this.clockMode === 'host' && !options.hostClock)
      throw new ConfigError('the host clock mode needs a host clock');
    this.options = {
      ...this.options,
      mode,
      log: options.log,
      hostClock: options.hostClock,
      onOutput: options.onOutput ?? this.options.onOutput,
      replayLog: undefined,
    };
    this.#mode = mode;
    // The new log continues the sequence of the one it followed.
    this.logLength = options.firstSeq ?? (this.cursor as ReplayCursor).nextSeq;
    this.cursor = undefined;
    this.stopped = false;
    this.replayLogEnded = false;
    if (options.hostClock) {
      // The host clock here has its own origin: guest time goes on from where the log left it.
      this.hostMonotonicBaseNs = options.hostClock.monotonicNs() - this.guestMonotonicNs();
    }
    const interval = this.options.checkpointIntervalSteps ?? 0;
    this.nextCheckpointIcount =
      mode === 'record' && interval > 0 ? (Math.floor(this.cpu.icount / interval) + 1) * interval : Infinity;
    for (const { device } of this.attached) device.onGoLive?.();
  }

  /** Record mode: marks the end of a recording that did not end by a power-off. */
  endRecording(): void {
    if (this.#mode !== 'record' || this.stopped) return;
    this.applyPendingEvents();
    this.append({ kind: 'progress', seq: this.logLength, icount: this.cpu.icount });
  }

  /**
   * The log position: `nextSeq` is the sequence number the next appended entry gets (record) or
   * the next entry expected (replay); `appliedSeq` the last entry a replay consumed (-1: none).
   */
  get logPosition(): { readonly nextSeq: number; readonly appliedSeq: number } {
    if (this.cursor) return { nextSeq: this.cursor.nextSeq, appliedSeq: this.cursor.nextSeq - 1 };
    return { nextSeq: this.logLength, appliedSeq: this.logLength - 1 };
  }

  // ---- state: hash, dirty pages, snapshots ----

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
    if (this.hasher === undefined) {
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
    const timers = [...(withTimers ? this.timers.entries() : [])]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, timer]) => ({
        key,
        device: timer.device,
        deadlineNs: timer.deadlineNs,
        event: timer.event as unknown as PlainValue,
      }));
    return {
      idleSkipNs: this.idleSkipNs,
      clockBaseNs: this.clockBaseNs,
      clockBaseIcount: this.clockBaseIcount,
      realtimeAtBootNs: this.realtimeAtBootNs ?? null,
      stopped: this.stopped,
      exitStatus: this.exit ?? null,
      timers,
    };
  }

  /** The machine's configuration, as stored in snapshots and record files. */
  get config(): PlainValue {
    return {
      ramSizeBytes: this.ram.size,
      clock: this.clockMode,
      logOutputs: this.options.logOutputs === true,
      bootArgs: this.options.bootArgs ?? null,

      realtimeBaseNs: this.options.realtimeBaseNs ?? DEFAULT_REALTIME_BASE_NS,
      devices: this.attached.map(({ placement, device }) => ({
        name: placement.name,
        kind: device.kind,
        base: placement.base,
        irq: placement.irq,
      })),
    };
  }

  /** Saves the whole machine at the current step boundary. Pending host inputs are applied first. */
  saveSnapshot(): MachineSnapshot {
    const state = this.saveTransferState();
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
    if (!this.image) return null;
    return {
      entry: this.image.entry,
      segments: this.image.segments.map((segment) => ({ address: segment.address, bytes: segment.bytes })),
    };
  }

  /**
   * Restores a snapshot into this machine, which must have the same configuration (RAM size,
   * devices and their places). Afterwards it continues exactly as the original would.
   */
  restoreSnapshot(snapshot: MachineSnapshot): void {
    if (snapshot?.format !== 'ftvm-machine-snapshot' || snapshot.version !== 1) {
      throw new SnapshotError('not an ftvm machine snapshot of version 1');
    }
    this.restoreParts(snapshot, snapshot.ram);
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
  saveTransferState(): {
    icount: number;
    nextSeq: number;
    cpu: StateSection;
    devices: Record<string, StateSection>;
    config: PlainValue;
  } {
    if (this.#mode !== 'replay') this.applyPendingEvents();
    const components = this.saveComponentState(true);
    return {
      icount: this.cpu.icount,
      nextSeq: this.logPosition.nextSeq,
      cpu: components.cpu,
      devices: components.devices,
      config: {
        ...(this.config as Record<string, PlainValue>),
        machine: components.machine,
        image: this.imageState(),
        nextSeq: this.logPosition.nextSeq,
      },
    };
  }

  /**
   * The receiving side's last step: restores what {@link saveTransferState} gave over the pages
   * already written with {@link writePages}. A replaying machine then follows the log from the
   * transferred position.
   */
  restoreTransferState(state: {
    cpu: StateSection;
    devices: { readonly [name: string]: StateSection };
    config: PlainValue;
  }): void {
    this.restoreParts(state, undefined);
  }

  /** Restores CPU, devices, machine state and log position, and RAM when `ram` is given. */
  private restoreParts(
    snapshot: { cpu: StateSection; devices: { readonly [name: string]: StateSection }; config: PlainValue },
    ram: MachineSnapshot['ram'] | undefined,
  ): void {
    // What the machine can check is checked before anything changes (the CPU and devices check
    // their own sections as they restore them).
    const config = snapshot.config as Record<string, PlainValue> | null;
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new SnapshotError('the snapshot has no machine configuration');
    }
    const mine = this.config as Record<string, PlainValue>;
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
    this.cpu.restoreState(snapshot.cpu);
    this.cpu.invalidateMemoryCaches();
    for (const { placement, device } of this.attached) {
      device.restoreState(snapshot.devices[placement.name] as StateSection);
    }
    this.restoreMachineState(config.machine, config.image);
    this.restoreLogPosition(config.nextSeq);
    // Host-side leftovers of this machine's own past belong to no snapshot.
    this.pendingEvents.length = 0;
    this.resetRequested = false;
    this.sampledNs = 0;
    this.replayStopMatched = false;
    const interval = this.options.checkpointIntervalSteps ?? 0;
    if (this.#mode === 'record' && interval > 0) {
      this.nextCheckpointIcount = (Math.floor(this.cpu.icount / interval) + 1) * interval;
    }
  }

  /**
   * The log continues from the snapshot's position: a recording appends from it, a replay expects
   * it first. (Snapshots from before the log position was saved start at 0.)
   */
  private restoreLogPosition(nextSeq: PlainValue | undefined): void {
    const seq = typeof nextSeq === 'number' && Number.isSafeInteger(nextSeq) && nextSeq >= 0 ? nextSeq : 0;
    if (this.cursor) this.cursor.rebase(seq, this.cpu.icount);
    else this.logLength = seq;
  }

  /** Checks the machine's own section of a snapshot without applying it. */
  private checkMachineState(state: PlainValue | undefined): void {
    const machine = state as {
      idleSkipNs?: unknown;
      clockBaseNs?: unknown;
      clockBaseIcount?: unknown;
      timers?: unknown;
    } | null;
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
    } | null;
    if (
      !machine ||
      typeof machine.idleSkipNs !== 'number' ||
      typeof machine.clockBaseNs !== 'number' ||
      typeof machine.clockBaseIcount !== 'number' ||
      !Array.isArray(machine.timers)
    ) {
      throw new SnapshotError('the snapshot has no machine state');
    }
    this.idleSkipNs = machine.idleSkipNs;
    this.clockBaseNs = machine.clockBaseNs;
    this.clockBaseIcount = machine.clockBaseIcount;
    this.realtimeAtBootNs =
      typeof machine.realtimeAtBootNs === 'number' ? machine.realtimeAtBootNs : undefined;
    // The host clock here has another origin: guest time goes on from where the snapshot left it.
    if (this.options.hostClock) {
      this.hostMonotonicBaseNs = this.options.hostClock.monotonicNs() - this.guestMonotonicNs();
    }
    this.stopped = machine.stopped === true;
    this.exit = typeof machine.exitStatus === 'number' ? machine.exitStatus : undefined;
    this.timers.clear();
    for (const timer of machine.timers as {
      key: string;
      device: string;
      deadlineNs: number;
      event: DeviceEventPayload;
    }[]) {
      this.timers.set(timer.key, { device: timer.device, deadlineNs: timer.deadlineNs, event: timer.event });
    }
    const loaded = image as { entry: number; segments: { address: number; bytes: Uint8Array }[] } | null;
    this.image = loaded ? { entry: loaded.entry, segments: loaded.segments } : undefined;
  }

  /** Releases host resources of every device. */
  dispose(): void {
    for (const { device } of this.attached) device.dispose?.();
  }

  /** The device attached under `name`, if any. */
  device(name: string): Device | undefined {
    return this.devicesByName.get(name);
  }

  // ---- the device tree ----

  private buildDeviceTree(): DeviceTreeNode {
    const nodeOf = (name: string): DeviceTreeNode | undefined => {
      const entry = this.attached.find((item) => item.placement.name === name);
      return entry?.device.deviceTree?.(entry.placement);
    };
    const socChildren: DeviceTreeNode[] = [];
    const push = (node: DeviceTreeNode | undefined) => {
      if (node) socChildren.push(node);
    };
    // QEMU's order, so `dtc` output of both trees compares line by line.
    push(nodeOf('rtc'));
    push(nodeOf('uart'));
    push(nodeOf('test'));
    for (let slot = VIRTIO_MMIO_SLOT_COUNT - 1; slot >= 0; slot--) push(nodeOf(`virtio${slot}`));
    push(nodeOf('plic'));
    push(nodeOf('clint'));
    const boardNames = new Set(['rtc', 'uart', 'test', 'plic', 'clint']);
    for (const { placement, device } of this.attached) {
      if (boardNames.has(placement.name) || placement.name.startsWith('virtio')) continue;
      push(device.deviceTree?.(placement));
    }
    const ramCells = [0, this.ram.base, 0, this.ram.size];
    return {
      name: '',
      properties: {
        '#address-cells': [2],
        '#size-cells': [2],
        compatible: 'riscv-virtio',
        model: 'riscv-virtio,qemu',
      },
      children: [
        {
          name: 'chosen',
          properties: {
            ...(this.options.bootArgs === undefined ? {} : { bootargs: this.options.bootArgs }),
            'stdout-path': `/soc/serial@${UART_BASE.toString(16)}`,
          },
        },

        {
          name: 'poweroff',
          properties: {
            value: [0x5555],
            offset: [0],
            regmap: [PHANDLE_TEST_FINISHER],
            compatible: 'syscon-poweroff',
          },
        },
        {
          name: 'reboot',
          properties: {
            value: [0x7777],
            offset: [0],
            regmap: [PHANDLE_TEST_FINISHER],
            compatible: 'syscon-reboot',
          },
        },
        {
          name: `memory@${this.ram.base.toString(16)}`,
          properties: { device_type: 'memory', reg: ramCells },
        },
        {
          name: 'cpus',
          properties: {
            '#address-cells': [1],
            '#size-cells': [0],
            'timebase-frequency': [TIMEBASE_FREQUENCY_HZ],
          },
          children: [
            {
              name: 'cpu@0',
              properties: {
                phandle: [PHANDLE_CPU],
                device_type: 'cpu',
                reg: [0],
                status: 'okay',
                compatible: 'riscv',
                'riscv,isa': 'rv32imac_zicsr_zifencei_zihintpause',
                'mmu-type': 'riscv,sv32',
              },
              children: [
                {
                  name: 'interrupt-controller',
                  properties: {
                    '#interrupt-cells': [1],
                    'interrupt-controller': [],
                    compatible: 'riscv,cpu-intc',
                    phandle: [PHANDLE_CPU_INTERRUPT_CONTROLLER],
                  },
                },
              ],
            },
            {
              name: 'cpu-map',
              properties: {},
              children: [
                {
                  name: 'cluster0',
                  properties: {},
                  children: [{ name: 'core0', properties: { cpu: [PHANDLE_CPU] } }],
                },
              ],
            },
          ],
        },
        {
          name: 'soc',
          properties: { '#address-cells': [2], '#size-cells': [2], compatible: 'simple-bus', ranges: [] },
          children: socChildren,
        },
      ],
    };
  }
}

function describeEntry(entry: LogEntry): string {
  switch (entry.kind) {
    case 'event':
      return `event ${entry.device}/${entry.event?.type} at icount ${entry.icount} (entry ${entry.seq})`;
    case 'nondet':
      return `a read of ${entry.device}/${entry.key} at icount ${entry.icount} (entry ${entry.seq})`;
    case 'checkpoint':
      return `checkpoint at icount ${entry.icount} (entry ${entry.seq})`;
    case 'progress':
      return `progress mark at icount ${entry.icount} (entry ${entry.seq})`;
    case 'stop':
      return `power-off with status ${entry.exitStatus} at icount ${entry.icount} (entry ${entry.seq})`;
    case 'output':
      return `${entry.device}/${entry.stream} output ${describeBytes(entry.data)} at icount ${entry.icount} (entry ${entry.seq})`;
    default:
      return `an entry of unknown kind (entry ${(entry as LogEntry).seq})`;
  }
}

function describeBytes(data: Uint8Array): string {
  const printable = data.length <= 16 && data.every((byte) => byte >= 0x20 && byte < 0x7f);
  return printable
    ? JSON.stringify(new TextDecoder().decode(data))
    : `${data.length} bytes ${hex(data.subarray(0, 16))}`;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
