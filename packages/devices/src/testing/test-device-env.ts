import {
  type AccessWidth,
  type Device,
  type DeviceEnv,
  type DeviceEventPayload,
  type DevicePlacement,
  type GuestClock,
  type GuestMemory,
  type Icount,
  type InterruptLine,
  type MachineControl,
  PAGE_SHIFT,
  PAGE_SIZE_BYTES,
  type PlainValue,
  type RamRegion,
} from '@ftvm/core';

/**
 * A fake {@link DeviceEnv} for testing device models without a machine: it records everything a
 * device sends through its doors, lets the test set the clock and the icount, and backs DMA with
 * plain RAM. See {@link createTestDeviceEnv} and, for the usual case, {@link createDeviceHarness}.
 */

/** What `output` answers when outputs are not held: released at once, as on a standalone machine. */
const RELEASED: Promise<void> = Promise.resolve();

/** One call of `env.output`. */
export interface RecordedOutput {
  readonly kind: string;
  /** A copy of the bytes, taken when the device called `output`. */
  readonly data: Uint8Array;
  readonly icount: Icount;
}

/** One call of `env.nondet`. */
export interface RecordedNondetRead {
  readonly key: string;
  readonly value: PlainValue;
  readonly icount: Icount;
}

/** A pending `env.injectAt` request. */
export interface ScheduledInjection {
  readonly key: string;
  readonly monotonicNs: number;
  readonly event: DeviceEventPayload;
}

/** A guest clock the test sets by hand. Both clocks start where the options say and advance together. */
export class TestClock implements GuestClock {
  #monotonicNs: number;
  #realtimeNs: number;
  /** How many times a device read each clock. */
  monotonicReads = 0;
  realtimeReads = 0;

  constructor(monotonicNs = 0, realtimeNs = 1_700_000_000_000_000_000) {
    this.#monotonicNs = monotonicNs;
    this.#realtimeNs = realtimeNs;
  }

  monotonicNs(): number {
    this.monotonicReads++;
    return this.#monotonicNs;
  }

  realtimeNs(): number {
    this.realtimeReads++;
    return this.#realtimeNs;
  }

  /** The monotonic time, without counting it as a device's read. */
  get currentMonotonicNs(): number {
    return this.#monotonicNs;
  }

  /** The real time, without counting it as a device's read. */
  get currentRealtimeNs(): number {
    return this.#realtimeNs;
  }

  /** Moves both clocks forward by `durationNs` (which must not be negative). */
  advanceNs(durationNs: number): void {
    if (!(durationNs >= 0)) throw new RangeError(`cannot move the clock back (${durationNs} ns)`);
    this.#monotonicNs += durationNs;
    this.#realtimeNs += durationNs;
  }

  /** Sets the monotonic clock; real time moves by the same amount. Going back is allowed (for tests of odd clocks). */
  setMonotonicNs(monotonicNs: number): void {
    this.#realtimeNs += monotonicNs - this.#monotonicNs;
    this.#monotonicNs = monotonicNs;
  }

  /** Sets the real-time clock alone (a host whose wall clock jumped). */
  setRealtimeNs(realtimeNs: number): void {
    this.#realtimeNs = realtimeNs;
  }
}

/**
 * An interrupt line that remembers its level and every call, and passes each call on to `target`
 * when given one (a PLIC source line, to test a device wired to a real interrupt controller).
 */
export class TestInterruptLine implements InterruptLine {
  /** The current level. */
  level = false;
  /** Every level it was set to, in order (repeats included). */
  readonly history: boolean[] = [];
  readonly #target: InterruptLine | undefined;

  constructor(target?: InterruptLine) {
    this.#target = target;
  }

  set(level: boolean): void {
    this.level = level;
    this.history.push(level);
    this.#target?.set(level);
  }

  /** How many times the line went from low to high. */
  get risingEdges(): number {
    let count = 0;
    let previous = false;
    for (const level of this.history) {
      if (level && !previous) count++;
      previous = level;
    }
    return count;
  }
}

/** Records power-off and reset requests. */
export class TestMachineControl implements MachineControl {
  /** Exit statuses passed to `powerOff`, in order. */
  readonly powerOffs: number[] = [];
  /** How many times `reset` was called. */
  resets = 0;

  powerOff(exitStatus: number): void {
    this.powerOffs.push(exitStatus);
  }

  reset(): void {
    this.resets++;
  }
}

/** Guest RAM for DMA: one region of plain bytes, with dirty-page marking as the bus contract says. */
export class TestGuestMemory implements GuestMemory {
  readonly region: RamRegion;

  constructor(base: number, sizeBytes: number) {
    if (sizeBytes % PAGE_SIZE_BYTES !== 0) throw new RangeError('memory size must be a multiple of 4 KiB');
    this.region = {
      base,
      size: sizeBytes,
      bytes: new Uint8Array(sizeBytes),
      dirtyPages: new Uint8Array(sizeBytes / PAGE_SIZE_BYTES),
    };
  }

  contains(address: number, length: number): boolean {
    const offset = address - this.region.base;
    return (
      Number.isInteger(address) &&
      Number.isInteger(length) &&
      length >= 0 &&
      offset >= 0 &&
      offset + length <= this.region.size
    );
  }

  read(address: number, length: number): Uint8Array {
    const offset = this.#check(address, length);
    return this.region.bytes.slice(offset, offset + length);
  }

  write(address: number, data: Uint8Array): void {
    const offset = this.#check(address, data.length);
    this.region.bytes.set(data, offset);
    this.#markDirty(offset, data.length);
  }

  readU16(address: number): number {
    const offset = this.#check(address, 2);
    const bytes = this.region.bytes;
    return bytes[offset]! | (bytes[offset + 1]! << 8);
  }

  readU32(address: number): number {
    const offset = this.#check(address, 4);
    const bytes = this.region.bytes;
    return (
      (bytes[offset]! |
        (bytes[offset + 1]! << 8) |
        (bytes[offset + 2]! << 16) |
        (bytes[offset + 3]! << 24)) >>>
      0
    );
  }

  writeU16(address: number, value: number): void {
    this.write(address, Uint8Array.of(value & 0xff, (value >>> 8) & 0xff));
  }

  writeU32(address: number, value: number): void {
    this.write(
      address,
      Uint8Array.of(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff),
    );
  }

  #check(address: number, length: number): number {
    if (!this.contains(address, length)) {
      throw new RangeError(`guest range 0x${address.toString(16)}+${length} is not wholly in RAM`);
    }
    return address - this.region.base;
  }

  #markDirty(offset: number, length: number): void {
    if (length === 0) return;
    const first = offset >>> PAGE_SHIFT;
    const last = (offset + length - 1) >>> PAGE_SHIFT;
    for (let page = first; page <= last; page++) this.region.dirtyPages[page] = 1;
  }
}

/** Options of {@link createTestDeviceEnv}. */
export interface TestDeviceEnvOptions {
  /** The device's name (default `device`). */
  readonly name?: string;
  /** Where guest RAM starts (default 0x8000_0000) and its size (default 64 KiB). */
  readonly memoryBase?: number;
  readonly memorySizeBytes?: number;
  /** Initial clock readings (defaults: 0 and 1.7e18 ns, late 2023). */
  readonly monotonicNs?: number;
  readonly realtimeNs?: number;
  /** A line that `env.irq` passes every call on to, e.g. `plic.sourceLine(10)` (default: none). */
  readonly irqTarget?: InterruptLine;
  /** The clock to use instead of a new one, so several devices can share one time. */
  readonly clock?: TestClock;
  /**
   * Hold every output until the test releases it with {@link TestDeviceEnv.releaseOutputs}, as an
   * FT primary holds outputs until the backup acknowledged them (the output rule). Default false:
   * each output is released at once, as on a standalone machine.
   */
  readonly holdOutputs?: boolean;
}

/** The fake {@link DeviceEnv}. Every door records what went through it. */
export class TestDeviceEnv implements DeviceEnv {
  readonly name: string;
  readonly memory: TestGuestMemory;
  readonly irq: TestInterruptLine;
  readonly clock: TestClock;
  readonly control = new TestMachineControl();

  /** Every `output` call, in order. */
  readonly outputs: RecordedOutput[] = [];
  /** Events injected through `inject` (or due `injectAt`s) that were not yet taken by {@link takeInjected}. */
  readonly injected: DeviceEventPayload[] = [];
  /** Every event ever injected, in order. */
  readonly injectedHistory: DeviceEventPayload[] = [];
  /** Pending `injectAt` requests by key. */
  readonly scheduled = new Map<string, ScheduledInjection>();
  /** Every `injectAt` request ever made, in order (replaced and cancelled ones too). */
  readonly scheduledHistory: ScheduledInjection[] = [];
  /** Every `nondet` read, in order. */
  readonly nondetReads: RecordedNondetRead[] = [];

  /**
   * Whether new outputs are held until {@link releaseOutputs} (see
   * {@link TestDeviceEnvOptions.holdOutputs}). Turning it off releases nothing already held.
   */
  holdOutputs: boolean;

  #icount: Icount = 0;
  /** The release of each held output, oldest first. */
  readonly #held: (() => void)[] = [];

  constructor(options: TestDeviceEnvOptions = {}) {
    this.holdOutputs = options.holdOutputs ?? false;
    this.name = options.name ?? 'device';
    this.memory = new TestGuestMemory(
      options.memoryBase ?? 0x8000_0000,
      options.memorySizeBytes ?? 64 * 1024,
    );
    this.clock = options.clock ?? new TestClock(options.monotonicNs ?? 0, options.realtimeNs);
    this.irq = new TestInterruptLine(options.irqTarget);
  }

  inject(event: DeviceEventPayload): void {
    this.injected.push(event);
    this.injectedHistory.push(event);
  }

  injectAt(key: string, monotonicNs: number, event: DeviceEventPayload): void {
    const request = { key, monotonicNs, event };
    this.scheduled.set(key, request);
    this.scheduledHistory.push(request);
  }

  cancelInjectAt(key: string): void {
    this.scheduled.delete(key);
  }

  nondet<T extends PlainValue>(key: string, read: () => T): T {
    const value = read();
    this.nondetReads.push({ key, value, icount: this.#icount });
    return value;
  }

  output(kind: string, data: Uint8Array): Promise<void> {
    this.outputs.push({ kind, data: data.slice(), icount: this.#icount });
    if (!this.holdOutputs) return RELEASED;
    return new Promise<void>((resolve) => {
      this.#held.push(resolve);
    });
  }

  /** How many outputs are held, waiting for {@link releaseOutputs}. */
  get heldOutputs(): number {
    return this.#held.length;
  }

  /**
   * Releases the `count` oldest held outputs (default: all of them), in the order they were made:
   * their promises resolve (the device's awaiting code runs once the test yields to microtasks).
   * Returns how many were released.
   */
  releaseOutputs(count: number = this.#held.length): number {
    if (!(Number.isInteger(count) && count >= 0)) throw new RangeError(`cannot release ${count} outputs`);
    const released = this.#held.splice(0, count);
    for (const release of released) release();
    return released.length;
  }

  icount(): Icount {
    return this.#icount;
  }

  /** Sets the execution point that `icount()` reports. */
  setIcount(icount: Icount): void {
    this.#icount = icount;
  }

  /** All bytes output on stream `kind`, concatenated. */
  outputBytes(kind = 'console'): Uint8Array {
    const chunks = this.outputs.filter((output) => output.kind === kind);
    const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.data.length, 0));
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk.data, offset);
      offset += chunk.data.length;
    }
    return bytes;
  }

  /** All bytes output on stream `kind`, as Latin-1 text (one character per byte). */
  outputText(kind = 'console'): string {
    return String.fromCharCode(...this.outputBytes(kind));
  }

  /** Removes and returns the injected events waiting to be applied. */
  takeInjected(): DeviceEventPayload[] {
    return this.injected.splice(0, this.injected.length);
  }

  /**
   * The earliest pending `injectAt` (ties by key, so the order never depends on the host), or
   * undefined when none is pending.
   */
  nextScheduled(): ScheduledInjection | undefined {
    let next: ScheduledInjection | undefined;
    for (const request of this.scheduled.values()) {
      if (
        next === undefined ||
        request.monotonicNs < next.monotonicNs ||
        (request.monotonicNs === next.monotonicNs && request.key < next.key)
      ) {
        next = request;
      }
    }
    return next;
  }
}

/** Creates a fake {@link DeviceEnv}; see {@link TestDeviceEnv}. */
export function createTestDeviceEnv(options: TestDeviceEnvOptions = {}): TestDeviceEnv {
  return new TestDeviceEnv(options);
}

/** Options of {@link createDeviceHarness}. */
export interface DeviceHarnessOptions extends TestDeviceEnvOptions {
  /** Where the device sits (default: base 0, irq 0, named as the env). */
  readonly placement?: Partial<DevicePlacement>;
}

/** At most this many events are applied by one {@link DeviceHarness.deliver}: a device that keeps injecting is a bug. */
export const HARNESS_EVENTS_PER_DELIVER_MAX = 100_000;

/**
 * A device attached to a {@link TestDeviceEnv}, driven the way a machine drives it: MMIO accesses,
 * injected events applied at "step boundaries" ({@link deliver}), and guest time that moves on and
 * fires `injectAt` timers ({@link advanceTimeNs}).
 */
export class DeviceHarness<D extends Device = Device> {
  readonly device: D;
  readonly env: TestDeviceEnv;
  readonly placement: DevicePlacement;

  constructor(device: D, options: DeviceHarnessOptions = {}) {
    this.device = device;
    this.env = new TestDeviceEnv(options);
    this.placement = {
      name: options.placement?.name ?? this.env.name,
      base: options.placement?.base ?? 0,
      irq: options.placement?.irq ?? 0,
    };
    device.attach(this.env, this.placement);
  }

  /** A guest load of `width` bytes at `offset` in the device's window. */
  read(offset: number, width: AccessWidth = 4): number {
    return this.device.readMmio(offset, width);
  }

  /** A guest store of `width` bytes at `offset` in the device's window. */
  write(offset: number, value: number, width: AccessWidth = 4): void {
    this.device.writeMmio(offset, width, value);
  }

  /**
   * Applies every injected event, in order, as a machine does at the next step boundary; events
   * injected meanwhile are applied too. Returns how many were applied.
   */
  deliver(): number {
    let applied = 0;
    while (this.env.injected.length > 0) {
      const event = this.env.injected.shift()!;
      this.device.applyEvent(event);
      if (++applied > HARNESS_EVENTS_PER_DELIVER_MAX) {
        throw new Error(`device keeps injecting events (more than ${HARNESS_EVENTS_PER_DELIVER_MAX})`);
      }
    }
    return applied;
  }

  /**
   * Moves guest time forward by `durationNs`. Each `injectAt` that falls due on the way is fired at
   * its deadline (the clock stands at the deadline while it is applied), earliest first; injected
   * events are delivered before and after. Returns how many timers fired.
   */
  advanceTimeNs(durationNs: number): number {
    const clock = this.env.clock;
    const targetNs = clock.currentMonotonicNs + durationNs;
    let fired = 0;
    this.deliver();
    for (;;) {
      const next = this.env.nextScheduled();
      if (next === undefined || next.monotonicNs > targetNs) break;
      if (next.monotonicNs > clock.currentMonotonicNs) clock.setMonotonicNs(next.monotonicNs);
      this.env.scheduled.delete(next.key);
      this.env.inject(next.event);
      this.deliver();
      if (++fired > HARNESS_EVENTS_PER_DELIVER_MAX)
        throw new Error('device keeps re-arming timers that are due');
    }
    if (targetNs > clock.currentMonotonicNs) clock.setMonotonicNs(targetNs);
    return fired;
  }
}

/** Creates `device`'s test env, attaches the device to it and returns the pair as a {@link DeviceHarness}. */
export function createDeviceHarness<D extends Device>(
  device: D,
  options: DeviceHarnessOptions = {},
): DeviceHarness<D> {
  return new DeviceHarness(device, options);
}
