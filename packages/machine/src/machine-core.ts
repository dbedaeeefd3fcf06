import type { Device, DeviceEventPayload, DevicePlacement, RamRegion } from '@ftvm/core';
import type { RiscvCpu } from '@ftvm/cpu-riscv';
import { GuestTime, MACHINE_LOG_NAME } from './guest-time.js';
import type { LoadedImage } from './image.js';
import type { ClockMode, MachineOptions } from './machine-types.js';

export interface AttachedDevice {
  readonly placement: DevicePlacement;
  readonly device: Device;
}

/** A host input or a fired timer, waiting for the next step boundary. */
export interface PendingEvent {
  readonly device: string;
  readonly event: DeviceEventPayload;
}

/**
 * What the parts of one machine share (internal): the `Machine` facade, its guest time, its
 * current mode's doors and its state keeper all work on this.
 */
export class MachineCore {
  /** The machine's options; go-live replaces the log, the host clock and the output handler. */
  options: MachineOptions;
  readonly ram: RamRegion;
  readonly cpu: RiscvCpu;
  readonly time: GuestTime;
  readonly attached: AttachedDevice[] = [];
  readonly devicesByName = new Map<string, Device>();
  /** Host inputs (and fired timers, clock samples) to apply at the next step boundary, oldest first. */
  readonly pendingEvents: PendingEvent[] = [];
  image: LoadedImage | undefined;
  stopped = false;
  exit: number | undefined;
  resetRequested = false;
  wakeListener: (() => void) | undefined;
  private readonly resetBoard: () => void;

  constructor(
    options: MachineOptions,
    ram: RamRegion,
    cpu: RiscvCpu,
    clockMode: ClockMode,
    resetBoard: () => void,
  ) {
    this.options = options;
    this.ram = ram;
    this.cpu = cpu;
    this.resetBoard = resetBoard;
    this.time = new GuestTime(this, clockMode);
  }

  /** Applies an event to its device, or to guest time when it is the machine's own. */
  applyEvent(device: string, event: DeviceEventPayload): void {
    if (device === MACHINE_LOG_NAME) {
      this.time.applyMachineEvent(event);
      return;
    }
    this.devicesByName.get(device)?.applyEvent(event);
  }

  afterRun(reason: string): void {
    if (reason === 'stop' && this.resetRequested && !this.stopped) this.resetBoard();
  }
}
