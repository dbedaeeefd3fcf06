import type {
  Cpu,
  Device,
  DeviceEnv,
  DevicePlacement,
  DeviceTreeNode,
  GuestClock,
  InterruptLine,
  LogSink,
  LogSource,
  MachineSnapshot,
  PlainValue,
  RamRegion,
  StateSection,
} from '@ftvm/core';
import { ConfigError, DeviceError, PAGE_SIZE_BYTES } from '@ftvm/core';
import { RiscvCpu } from '@ftvm/cpu-riscv';
import {
  Clint,
  GoldfishRtc,
  Ns16550aUart,
  Plic,
  SifiveTestFinisher,
  VirtioMmioTransport,
} from '@ftvm/devices';
import {
  BOOT_ROM_BASE,
  CLINT_BASE,
  DEFAULT_RAM_SIZE_BYTES,
  deviceTreeAddress,
  PLATFORM_BUS_BASE,
  PLATFORM_BUS_BYTES,
  PLATFORM_BUS_IRQ_COUNT,
  PLATFORM_BUS_IRQ_FIRST,
  PLIC_BASE,
  QEMU_FW_DYNAMIC_INFO_ADDRESS,
  RTC_BASE,
  RTC_IRQ,
  TEST_FINISHER_BASE,
  UART_BASE,
  UART_IRQ,
  VIRTIO_IRQ_FIRST,
  VIRTIO_MMIO_BASE,
  VIRTIO_MMIO_SLOT_BYTES,
  VIRTIO_MMIO_SLOT_COUNT,
} from './board.js';
import { buildBoardDeviceTree } from './board-device-tree.js';
import { BootRom } from './boot-rom.js';
import { buildDeviceTreeBlob } from './device-tree.js';
import type { ExecutionMode } from './execution-mode.js';
import type { HostClock } from './host.js';
import { parseFirmwareAndKernel, parseImage } from './image.js';
import { LiveMode } from './live-mode.js';
import { MachineCore } from './machine-core.js';
import { MachineStateKeeper, markPagesWritten } from './machine-state.js';
import type {
  ClockMode,
  MachineMode,
  MachineOptions,
  MachineOutput,
  SliceOutcome,
  SliceTimeLimit,
  UserDeviceSpec,
} from './machine-types.js';
import { createRam, MachineBus, RAM_BASE, RamGuestMemory } from './memory.js';
import { ReplayCursor } from './replay-cursor.js';
import { ReplayMode } from './replay-mode.js';

// The machine's parts live in files of their own: its public types (`machine-types.ts`), what the
// parts share (`machine-core.ts`), guest time and timers (`guest-time.ts`), the doors and run loop
// of each mode (`execution-mode.ts`, `live-mode.ts`, `replay-mode.ts`), snapshots, state hash and
// state transfer (`machine-state.ts`), the board's device tree (`board-device-tree.ts`). `Machine`
// is the facade over them.
export { RUN_CHUNK_STEPS } from './execution-mode.js';
export {
  DEFAULT_REALTIME_BASE_NS,
  HOST_CLOCK_INTERPOLATION_NS_PER_STEP,
  HOST_CLOCK_SAMPLE_NS_MIN,
  ICOUNT_CLOCK_NS_PER_STEP,
  MACHINE_LOG_NAME,
} from './guest-time.js';
export type {
  ClockMode,
  MachineMode,
  MachineOptions,
  MachineOutput,
  SliceEnd,
  SliceOutcome,
  SliceTimeLimit,
  UserDeviceSpec,
} from './machine-types.js';

const DEVICE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The VMM: the board, its devices, the run loop that applies inputs at exact execution points,
 * record and replay, snapshots, dirty pages and state hashes. Synchronous: `runSlice` executes a
 * bounded number of steps and returns; the asynchronous driver in `driver.ts` (or the FT roles)
 * decide when to call it.
 */
export class Machine {
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

  /** What the machine's parts share: options, power state, pending inputs, guest time, devices. */
  private readonly core: MachineCore;
  /** State hash, dirty pages, snapshots and state transfer. */
  private readonly state: MachineStateKeeper;
  private readonly memory: RamGuestMemory;
  /** The doors and run loop of the current mode; a replay that goes live gets live ones. */
  #doors: ExecutionMode;

  constructor(options: MachineOptions = {}) {
    const mode = options.mode ?? 'standalone';
    this.clockMode = options.clock ?? 'host';
    if (mode === 'record' && !options.log) throw new ConfigError('record mode needs a log to write to');
    if (mode === 'replay' && !options.replayLog) throw new ConfigError('replay mode needs a log to follow');
    if (this.clockMode === 'host' && mode !== 'replay' && !options.hostClock) {
      throw new ConfigError('the host clock mode needs a host clock');
    }
    const firstSeq = options.firstSeq ?? 0;
    if (!Number.isSafeInteger(firstSeq) || firstSeq < 0)
      throw new ConfigError(`bad first sequence number ${firstSeq}`);
    const checkpointInterval = options.checkpointIntervalSteps ?? 0;
    if (!Number.isSafeInteger(checkpointInterval) || checkpointInterval < 0) {
      throw new ConfigError(`bad checkpoint interval ${checkpointInterval}`);
    }

    this.ram = createRam(RAM_BASE, options.ramSizeBytes ?? DEFAULT_RAM_SIZE_BYTES);
    this.bus = new MachineBus(this.ram);
    this.memory = new RamGuestMemory(this.ram, () => this.cpu);

    const nowhere: InterruptLine = { set() {} };
    const cpuLine = (line: Parameters<Cpu['setInterruptLine']>[0]): InterruptLine => ({
      set: (level) => this.cpu.setInterruptLine(line, level),
    });
    this.clint = new Clint({
      softwareInterrupt: cpuLine('machine-software'),
      timerInterrupt: cpuLine('machine-timer'),
    });
    this.cpu = new RiscvCpu({ bus: this.bus, readTime: () => this.clint.readMtime() });
    this.core = new MachineCore(options, this.ram, this.cpu, this.clockMode, () => this.resetBoard());
    this.state = new MachineStateKeeper(this.core);
    this.#doors =
      mode === 'replay'
        ? new ReplayMode(this.core, this.state, new ReplayCursor(options.replayLog as LogSource, firstSeq))
        : new LiveMode(this.core, this.state, mode === 'record' ? options.log : undefined, firstSeq);
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

    this.deviceTree = buildBoardDeviceTree(this.core.attached, this.ram, options.bootArgs);
    this.deviceTreeBlob = buildDeviceTreeBlob(this.deviceTree);
    this.deviceTreeAddress = deviceTreeAddress(this.ram.base, this.ram.size, this.deviceTreeBlob.length);
    if (this.deviceTreeAddress < this.ram.base) {
      throw new ConfigError(
        `the device tree (${this.deviceTreeBlob.length} bytes) does not fit in ${this.ram.size} bytes of RAM`,
      );
    }
    // Outside the devices' list: the ROM has no state, no interrupt and no device-tree node.
    const rom = new BootRom(() => this.core.image, this.deviceTreeAddress);
    this.bus.addWindow({ name: 'mrom', base: BOOT_ROM_BASE, size: rom.mmioSize, device: rom });
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
    if (this.core.devicesByName.has(name)) throw new DeviceError(`two devices are named '${name}'`);
    if (!Number.isInteger(irq) || irq < 0 || irq >= 96)
      throw new DeviceError(`${name}: bad interrupt ${irq}`);
    const placement: DevicePlacement = { name, base, irq };
    this.bus.addWindow({ name, base, size: device.mmioSize, device });
    const irqLine = line ?? (irq > 0 ? this.plic.sourceLine(irq) : { set() {} });
    device.attach(this.envFor(name, irqLine), placement);
    this.core.attached.push({ placement, device });
    this.core.devicesByName.set(name, device);
  }

  /** The doors of the device contract, for one device: the current mode's. */
  private envFor(name: string, irq: InterruptLine): DeviceEnv {
    const core = this.core;
    const time = core.time;
    const clock: GuestClock = {
      monotonicNs: () => time.monotonicNs(),
      realtimeNs: () => time.realtimeNs(),
    };
    return {
      name,
      inject: (event) => this.#doors.inject(name, event),
      injectAt: (key, monotonicNs, event) => this.#doors.injectAt(name, key, monotonicNs, event),
      cancelInjectAt: (key) => {
        time.cancelTimer(name, key);
      },
      nondet: (key, read) => this.#doors.nondet(name, key, read),
      output: (kind, data) => this.#doors.output(name, kind, data),
      memory: this.memory,
      irq,
      clock,
      icount: () => this.cpu.icount,
      control: {
        powerOff: (exitStatus) => {
          core.exit = exitStatus;
          core.stopped = true;
          this.cpu.requestStop();
        },
        reset: () => {
          core.resetRequested = true;
          this.cpu.requestStop();
        },
      },
    };
  }

  // ---- loading and booting ----

  /**
   * Loads a guest image (ELF or raw binary) and the device tree into RAM and points the hart at the
   * image's entry with the registers QEMU's reset vector would leave. With a `firmware` (QEMU's
   * `-bios FILE`), the image is the kernel the firmware boots: see {@link parseFirmwareAndKernel}.
   */
  loadImage(
    bytes: Uint8Array,
    name = 'image',
    options: { readonly firmware?: { readonly bytes: Uint8Array; readonly name: string } } = {},
  ): void {
    const image = options.firmware
      ? parseFirmwareAndKernel(options.firmware, { bytes, name }, this.ram)
      : parseImage(bytes, this.ram, name);
    const blobEnd = this.deviceTreeAddress + this.deviceTreeBlob.length;
    for (const segment of image.segments) {
      if (segment.address < blobEnd && this.deviceTreeAddress < segment.address + segment.bytes.length) {
        throw new ConfigError(
          `${name}: the image overlaps the device tree at the top of RAM; give the guest more memory`,
        );
      }
    }
    this.core.image = image;
    this.boot();
  }

  private boot(): void {
    const image = this.core.image;
    if (!image) throw new ConfigError('no image loaded');
    for (const segment of image.segments) {
      this.ram.bytes.set(segment.bytes, segment.address - this.ram.base);
      markPagesWritten(this.ram, segment.address - this.ram.base, segment.bytes.length);
    }
    this.ram.bytes.set(this.deviceTreeBlob, this.deviceTreeAddress - this.ram.base);
    markPagesWritten(this.ram, this.deviceTreeAddress - this.ram.base, this.deviceTreeBlob.length);
    this.cpu.invalidateMemoryCaches();
    // QEMU's reset vector enters the image with `jr t0`, and a jump clears bit 0 of its target: an
    // ELF entry with bit 0 set starts at the even address, while t0 keeps the entry as written.
    this.cpu.reset((image.entry & ~1) >>> 0, 0, this.deviceTreeAddress);
    this.cpu.setRegister(12, QEMU_FW_DYNAMIC_INFO_ADDRESS); // a2
    this.cpu.setRegister(5, image.entry); // t0
  }

  /** A board reset (the test finisher's 0x7777): devices to power-on state, image reloaded. */
  private resetBoard(): void {
    this.core.resetRequested = false;
    for (const { device } of this.core.attached) device.reset();
    this.core.time.clearTimers();
    this.boot();
  }

  // ---- running ----

  /** How the machine treats its doors; a replaying machine becomes live with {@link goLive}. */
  get mode(): MachineMode {
    return this.#doors.mode;
  }

  /**
   * Guest time now, in nanoseconds since boot: what the guest reads from `mtime` (in 100 ns ticks).
   * A function of the execution point and the logged clock entries, so a replay reads the same.
   */
  get guestTimeNs(): number {
    return this.core.time.monotonicNs();
  }

  /** True once the guest powered the machine off (or a replay reached the end of its log). */
  get isStopped(): boolean {
    return this.core.stopped;
  }

  /** The guest's exit status once it powered off (test finisher), else undefined. */
  get exitStatus(): number | undefined {
    return this.core.exit;
  }

  /** Called whenever a host input or a timer arrives: the driver uses it to end an idle wait. */
  onWake(listener: (() => void) | undefined): void {
    this.core.wakeListener = listener;
  }

  /**
   * Host-side: how long until the earliest device timer fires, in guest nanoseconds, or undefined
   * when none is armed. The driver sleeps this long while the hart idles.
   */
  nextTimerDelayNs(): number | undefined {
    return this.#doors.nextTimerDelayNs();
  }

  /** True when a host input is waiting to be applied at the next boundary. */
  get hasPendingInput(): boolean {
    return this.core.pendingEvents.length > 0;
  }

  /**
   * Executes at most `maxSteps` steps, applying inputs at their exact points; with `limit`, also
   * ends once the host clock passes its deadline (checked every {@link RUN_CHUNK_STEPS} steps).
   */
  runSlice(maxSteps: number, limit?: SliceTimeLimit): SliceOutcome {
    if (this.core.stopped) return { steps: 0, end: 'stopped' };
    return this.#doors.runSlice(maxSteps, limit);
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
    const core = this.core;
    if (!this.#doors.canGoLive || core.exit !== undefined) {
      throw new ConfigError('only a replay that applied its whole log, the guest still running, can go live');
    }
    const mode = options.mode ?? 'standalone';
    if (mode === 'record' && !options.log) throw new ConfigError('record mode needs a log to write to');
    if (this.clockMode === 'host' && !options.hostClock)
      throw new ConfigError('the host clock mode needs a host clock');
    // The new log continues the sequence of the one it followed.
    const firstSeq = options.firstSeq ?? this.#doors.nextSeq;
    core.options = {
      ...core.options,
      mode,
      log: options.log,
      hostClock: options.hostClock,
      onOutput: options.onOutput ?? core.options.onOutput,
      replayLog: undefined,
    };
    core.stopped = false;
    // The host clock here has its own origin: guest time goes on from where the log left it.
    core.time.rebaseHostClock();
    const doors = new LiveMode(core, this.state, mode === 'record' ? options.log : undefined, firstSeq);
    this.#doors = doors;
    doors.goingLive = true;
    try {
      for (const { device } of core.attached) device.onGoLive?.();
    } finally {
      doors.goingLive = false;
    }
  }

  /** Record mode: marks the end of a recording that did not end by a power-off. */
  endRecording(): void {
    this.#doors.endRecording();
  }

  /**
   * The log position: `nextSeq` is the sequence number the next appended entry gets (record) or
   * the next entry expected (replay); `appliedSeq` the last entry a replay consumed (-1: none).
   */
  get logPosition(): { readonly nextSeq: number; readonly appliedSeq: number } {
    const nextSeq = this.#doors.nextSeq;
    return { nextSeq, appliedSeq: nextSeq - 1 };
  }

  /**
   * A replay whose slice ended `log-starved` because a device was not ready for the next logged
   * event (it still does host work of its own, see `Device.whenReadyFor`): settles when it is.
   * Undefined when no device holds the replay up.
   */
  get deviceWait(): Promise<void> | undefined {
    return this.#doors.deviceWait;
  }

  /**
   * The execution point at which the oldest host work still pending on a device was issued (a
   * backup's own read of a shared disk), or undefined: a backup reports progress no further.
   */
  hostWorkPendingSince(): number | undefined {
    let oldest: number | undefined;
    for (const { device } of this.core.attached) {
      const since = device.hostWorkPendingSince?.();
      if (since !== undefined && (oldest === undefined || since < oldest)) oldest = since;
    }
    return oldest;
  }

  // ---- state: hash, dirty pages, snapshots ----

  /**
   * Starts tracking written pages. `collect()` returns the page numbers written since the tracker
   * started or since the previous collect; `stop()` ends tracking. Used by live state transfer.
   */
  trackDirtyPages(): { collect(): number[]; stop(): void } {
    return this.state.trackDirtyPages();
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
  /**
   * Builds the first hash of RAM ahead of the first checkpoint, `pageBudget` pages (4 KiB each)
   * per call, so that no checkpoint holds the thread long; true once built. A driver calls it
   * between slices.
   */
  prepareStateHash(pageBudget: number): boolean {
    return this.state.prepareStateHash(pageBudget);
  }

  stateHash(): Uint8Array {
    return this.state.stateHash();
  }

  /** Names the parts of the machine whose hashes differ between two state hashes. */
  describeStateHashDifference(expected: Uint8Array, actual: Uint8Array): string {
    return this.state.describeStateHashDifference(expected, actual);
  }

  /** The machine's configuration, as stored in snapshots and record files. */
  get config(): PlainValue {
    return this.state.config();
  }

  /** Saves the whole machine at the current step boundary. Pending host inputs are applied first. */
  saveSnapshot(): MachineSnapshot {
    return this.state.saveSnapshot(this.#doors);
  }

  /**
   * Restores a snapshot into this machine, which must have the same configuration (RAM size,
   * devices and their places). Afterwards it continues exactly as the original would.
   */
  restoreSnapshot(snapshot: MachineSnapshot): void {
    this.state.restoreSnapshot(snapshot, this.#doors);
  }

  // ---- live state transfer (the paper's FT VMotion, §3.1) ----

  /**
   * The contents of some RAM pages (4 KiB each, numbered from the start of RAM), concatenated: the
   * sending side of a live state transfer reads them while the guest keeps running, then again
   * the pages a dirty-page tracker ({@link trackDirtyPages}) says were written meanwhile.
   */
  readPages(pageNumbers: readonly number[]): Uint8Array {
    return this.state.readPages(pageNumbers);
  }

  /**
   * The receiving side of a live state transfer: writes pages into RAM (a later copy of a page
   * replaces an earlier one). Bad page numbers or a length that does not match are refused whole.
   */
  writePages(pageNumbers: readonly number[], bytes: Uint8Array): void {
    this.state.writePages(pageNumbers, bytes);
  }

  /** Pages of RAM that hold anything but zeros: what the first round of a transfer sends. */
  nonZeroPages(): number[] {
    return this.state.nonZeroPages();
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
    return this.state.saveTransferState(this.#doors);
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
    this.state.restoreTransferState(state, this.#doors);
  }

  /** Releases host resources of every device. */
  dispose(): void {
    for (const { device } of this.core.attached) device.dispose?.();
  }

  /** The device attached under `name`, if any. */
  device(name: string): Device | undefined {
    return this.core.devicesByName.get(name);
  }
}
