import type {
  AccessWidth,
  Device,
  DeviceEnv,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  StateSection,
} from '@ftvm/core';
import { ByteQueue } from '../byte-queue.js';
import { nodeName, QEMU_VIRT_PHANDLES, socReg } from '../device-tree.js';
import { truncateToWidth } from '../mmio.js';
import { StateReader } from '../state.js';

/**
 * NS16550A UART, as QEMU 7.2's `serial` device models it on the `virt` board (8 byte-wide registers
 * at offsets 0–7, 16-byte FIFOs, interrupt on PLIC source 10).
 *
 * Transmit is instantaneous: every byte written to THR leaves at once through
 * `env.output('console', …)` (or, in loopback, arrives at the receiver), so LSR.THRE and LSR.TEMT
 * read as set.
 *
 * Receive never loses host input. The host half ({@link Ns16550aUart.receive}) holds the bytes
 * and injects (`rx-bytes`) only as many as the receiver has room for, and more once the guest
 * drains it. Bytes that meet a receiver with less room than expected (the guest switched the FIFO
 * off meanwhile) wait guest-side in a receive backlog, part of the saved state, and enter the
 * receiver as it drains. Only the guest's own doing loses bytes, as on QEMU: a FIFO reset, or
 * loopback bytes meeting a full receiver (overrun).
 */

/** Receive and transmit FIFO depth of the 16550A. */
export const UART_FIFO_BYTES = 16;
/**
 * Most bytes the guest-side receive backlog holds. The host half never fills it beyond one FIFO's
 * worth; only a hostile or corrupt log could, and the excess is then dropped as an overrun.
 */
export const UART_RECEIVE_BACKLOG_BYTES_MAX = 64 * 1024;
/** PLIC source of the UART on `virt`. */
export const UART_VIRT_IRQ = 10;
/** Size of the MMIO window in QEMU's device tree (only offsets 0–7 hold registers). */
export const UART_MMIO_SIZE_BYTES = 0x100;
/** The input clock QEMU's device tree advertises (`clock-frequency`). */
export const UART_CLOCK_FREQUENCY_HZ = 3_686_400;
/**
 * The baud base QEMU 7.2 `virt` actually passes to `serial_mm_init`: baud rate = this / divisor. It
 * sets only the receive timeout (4 character times), the one place where the line speed shows.
 */
export const UART_VIRT_BAUD_BASE = 399_193;

const NANOSECONDS_PER_SECOND = 1_000_000_000;
/** QEMU's reset value of the character time: 9600 baud, 10 bits per character. */
const RESET_CHARACTER_TIME_NS = Math.floor(NANOSECONDS_PER_SECOND / 9600) * 10;
const RESET_DIVISOR = 0x0c;

/** Register offsets (DLAB selects the divisor latch at 0 and 1). */
const enum Register {
  ReceiveTransmitOrDivisorLow = 0,
  InterruptEnableOrDivisorHigh = 1,
  InterruptIdentificationOrFifoControl = 2,
  LineControl = 3,
  ModemControl = 4,
  LineStatus = 5,
  ModemStatus = 6,
  Scratch = 7,
}

const enum Ier {
  ReceivedData = 0x01,
  TransmitterEmpty = 0x02,
  ReceiverLineStatus = 0x04,
  ModemStatus = 0x08,
}

const enum Iir {
  NoInterrupt = 0x01,
  ModemStatus = 0x00,
  TransmitterEmpty = 0x02,
  ReceivedData = 0x04,
  ReceiverLineStatus = 0x06,
  CharacterTimeout = 0x0c,
  FifoEnabled = 0xc0,
}

/** The bits of IIR that name the interrupt (without the timeout bit). */
const IIR_ID_MASK = 0x06;

const enum Fcr {
  Enable = 0x01,
  ReceiverReset = 0x02,
  TransmitterReset = 0x04,
  /** The bits that stick: enable, DMA mode, trigger level. */
  StickyMask = 0xc9,
}

const enum Lcr {
  DivisorLatchAccess = 0x80,
}

const enum Mcr {
  Loopback = 0x10,
  Mask = 0x1f,
}

const enum Lsr {
  DataReady = 0x01,
  Overrun = 0x02,
  BreakInterrupt = 0x10,
  TransmitterHoldingEmpty = 0x20,
  TransmitterEmpty = 0x40,
  /** The bits that raise a receiver-line-status interrupt. */
  InterruptAny = 0x1e,
}

const enum Msr {
  AnyDelta = 0x0f,
  /** DCD, DSR and CTS asserted: what QEMU shows on a console with no modem lines. */
  Reset = 0xb0,
}

const RECEIVE_TRIGGER_LEVELS = [1, 4, 8, 14] as const;

/** Options of {@link Ns16550aUart}. */
export interface Ns16550aUartOptions {
  /** The phandle of the PLIC, for `interrupt-parent` (default QEMU's, 3). */
  readonly interruptParentPhandle?: number;
}

/** Event types the UART injects for itself. */
export type UartEventType = 'rx-bytes' | 'rx-timeout';

const STATE_VERSION = 1;

/** The NS16550A model; see the file comment. */
export class Ns16550aUart implements Device {
  readonly kind = 'ns16550a';
  readonly mmioSize = UART_MMIO_SIZE_BYTES;

  readonly #interruptParentPhandle: number;
  #env: DeviceEnv | undefined;

  // Guest-visible state (saved).
  #divisor = RESET_DIVISOR;
  #receiveBuffer = 0;
  #interruptEnable = 0;
  #interruptIdentification: number = Iir.NoInterrupt;
  #lineControl = 0;
  #modemControl = 0x08;
  #lineStatus: number = Lsr.TransmitterEmpty | Lsr.TransmitterHoldingEmpty;
  #modemStatus: number = Msr.Reset;
  #scratch = 0;
  #fifoControl = 0;
  #transmitterEmptyPending = false;
  #timeoutPending = false;
  #characterTimeNs = RESET_CHARACTER_TIME_NS;
  readonly #receiveFifo = new ByteQueue();
  /** Bytes that arrived from the host but did not fit in the receiver yet (see the file comment). */
  readonly #receiveBacklog = new ByteQueue();
  /**
   * Increments on every arming of the receive timeout, so a stale `rx-timeout` is recognised. Not
   * reset by `reset()`, so that one armed before a reset cannot pass for one armed after.
   */
  #timeoutGeneration = 0;
  #timeoutDeadlineNs: number | null = null;

  /** The level last driven on the interrupt line (derived, not saved). */
  #interruptLevel = false;

  // Host half (not saved).
  readonly #hostQueue = new ByteQueue();
  /** Chunks injected and not applied yet, oldest first. */
  readonly #inFlight: Uint8Array[] = [];
  #inFlightBytes = 0;

  constructor(options: Ns16550aUartOptions = {}) {
    this.#interruptParentPhandle = options.interruptParentPhandle ?? QEMU_VIRT_PHANDLES.plic;
  }

  attach(env: DeviceEnv, _placement: DevicePlacement): void {
    this.#env = env;
    this.#driveInterrupt(true);
  }

  // ---- Host half -------------------------------------------------------------------------------

  /**
   * Host half: bytes typed on the console. They are kept here and injected as the guest makes room
   * for them; none is ever dropped. Call it from host code at any time.
   */
  receive(bytes: Uint8Array): void {
    this.#hostQueue.pushAll(bytes);
    this.#pumpHostInput();
  }

  /** Host half: bytes received but not injected yet (waiting for room in the guest's receiver). */
  get queuedReceiveBytes(): number {
    return this.#hostQueue.length;
  }

  /** Room in the receiver for bytes not yet there or on their way (0 in loopback: the line is cut). */
  #receiveRoomBytes(): number {
    if (this.#loopback) return 0;
    const capacity = this.#fifoEnabled ? UART_FIFO_BYTES - this.#receiveFifo.length : this.#dataReady ? 0 : 1;
    return capacity - this.#receiveBacklog.length - this.#inFlightBytes;
  }

  /** Host half: injects as many held bytes as the guest has room for. A host-side callback, not guest-visible. */
  #pumpHostInput(): void {
    const env = this.#env;
    if (env === undefined || this.#hostQueue.length === 0) return;
    const room = this.#receiveRoomBytes();
    if (room <= 0) return;
    const chunk = this.#hostQueue.take(room);
    this.#inFlight.push(chunk);
    this.#inFlightBytes += chunk.length;
    env.inject({ type: 'rx-bytes', data: chunk.slice() });
  }

  /** Host half: an `rx-bytes` was applied; if it is our oldest chunk, that one has arrived. */
  #noteApplied(data: Uint8Array): void {
    const oldest = this.#inFlight[0];
    if (oldest === undefined || !sameBytes(oldest, data)) return;
    this.#inFlight.shift();
    this.#inFlightBytes -= oldest.length;
  }

  /**
   * Host half: chunks injected but never applied (a backup ignores `inject`; a restore drops what
   * was queued) go back to the front of the queue, so none is lost.
   */
  #requeueInFlight(): void {
    for (let index = this.#inFlight.length - 1; index >= 0; index--)
      this.#hostQueue.prependAll(this.#inFlight[index]!);
    this.#inFlight.length = 0;
    this.#inFlightBytes = 0;
  }

  /**
   * A backup ignored every `inject` and `injectAt` while it followed the log; as the new primary
   * it asks for the armed receive timeout again and starts feeding host input.
   */
  onGoLive(): void {
    if (this.#timeoutDeadlineNs !== null) {
      this.#env?.injectAt('rx-timeout', this.#timeoutDeadlineNs, {
        type: 'rx-timeout',
        data: this.#timeoutGeneration,
      });
    }
    this.#requeueInFlight();
    this.#pumpHostInput();
  }

  // ---- Guest side ------------------------------------------------------------------------------

  get #fifoEnabled(): boolean {
    return (this.#fifoControl & Fcr.Enable) !== 0;
  }

  get #loopback(): boolean {
    return (this.#modemControl & Mcr.Loopback) !== 0;
  }

  get #dataReady(): boolean {
    return (this.#lineStatus & Lsr.DataReady) !== 0;
  }

  get #divisorLatchAccess(): boolean {
    return (this.#lineControl & Lcr.DivisorLatchAccess) !== 0;
  }

  get #receiveTriggerLevel(): number {
    return RECEIVE_TRIGGER_LEVELS[(this.#fifoControl >> 6) & 3]!;
  }

  readMmio(offset: number, _width: AccessWidth): number {
    // Only offsets 0-7 are registers; QEMU faults the rest of the window, we read 0. Every width
    // reads the byte register (zero-extended), as QEMU's serial_mm does.
    if (!(offset >= 0 && offset < 8)) return 0;
    switch (offset as Register) {
      case Register.ReceiveTransmitOrDivisorLow:
        return this.#divisorLatchAccess ? this.#divisor & 0xff : this.#readReceiveBuffer();
      case Register.InterruptEnableOrDivisorHigh:
        return this.#divisorLatchAccess ? (this.#divisor >> 8) & 0xff : this.#interruptEnable;
      case Register.InterruptIdentificationOrFifoControl: {
        const value = this.#interruptIdentification;
        // Reading IIR while it reports THR empty acknowledges that interrupt.
        if ((value & IIR_ID_MASK) === Iir.TransmitterEmpty) {
          this.#transmitterEmptyPending = false;
          this.#updateInterrupt();
        }
        return value;
      }
      case Register.LineControl:
        return this.#lineControl;
      case Register.ModemControl:
        return this.#modemControl;
      case Register.LineStatus: {
        const value = this.#lineStatus;
        if (value & (Lsr.BreakInterrupt | Lsr.Overrun)) {
          this.#lineStatus &= ~(Lsr.BreakInterrupt | Lsr.Overrun);
          this.#updateInterrupt();
        }
        return value;
      }
      case Register.ModemStatus: {
        if (this.#loopback) {
          // The modem outputs are wired to the inputs: OUT2→DCD, OUT1→RI, RTS→CTS, DTR→DSR.
          const control = this.#modemControl;
          return ((control & 0x0c) << 4) | ((control & 0x02) << 3) | ((control & 0x01) << 5);
        }
        const value = this.#modemStatus;
        if (value & Msr.AnyDelta) {
          this.#modemStatus &= 0xf0;
          this.#updateInterrupt();
        }
        return value;
      }
      default:
        return this.#scratch;
    }
  }

  writeMmio(offset: number, width: AccessWidth, value: number): void {
    if (!(offset >= 0 && offset < 8)) return;
    // QEMU hands the whole access to the byte register; each register keeps its own bits.
    value = truncateToWidth(value, width);
    switch (offset as Register) {
      case Register.ReceiveTransmitOrDivisorLow:
        if (this.#divisorLatchAccess) {
          // As QEMU: the written value is OR-ed in unmasked (a wide store reaches the high byte).
          this.#divisor = ((this.#divisor & 0xff00) | value) & 0xffff;
          this.#updateLineParameters();
        } else {
          this.#transmit(value & 0xff);
        }
        return;
      case Register.InterruptEnableOrDivisorHigh:
        if (this.#divisorLatchAccess) {
          this.#divisor = ((this.#divisor & 0x00ff) | (value << 8)) & 0xffff;
          this.#updateLineParameters();
        } else {
          this.#writeInterruptEnable(value);
        }
        return;
      case Register.InterruptIdentificationOrFifoControl:
        this.#writeFifoControl(value & 0xff);
        return;
      case Register.LineControl:
        this.#lineControl = value & 0xff;
        this.#updateLineParameters();
        return;
      case Register.ModemControl:
        this.#modemControl = value & Mcr.Mask;
        // Leaving loopback reconnects the line: held bytes may enter now.
        this.#refillReceiver();
        this.#pumpHostInput();
        return;
      case Register.LineStatus:
      case Register.ModemStatus:
        return;
      default:
        this.#scratch = value & 0xff;
    }
  }

  applyEvent(event: DeviceEventPayload): void {
    if (event.type === 'rx-bytes') {
      if (!(event.data instanceof Uint8Array)) return;
      this.#noteApplied(event.data);
      const room = UART_RECEIVE_BACKLOG_BYTES_MAX - this.#receiveBacklog.length;
      if (event.data.length > room) this.#lineStatus |= Lsr.Overrun;
      this.#receiveBacklog.pushAll(event.data.subarray(0, Math.max(0, room)));
      this.#refillReceiver();
      this.#updateInterrupt();
      this.#pumpHostInput();
    } else if (event.type === 'rx-timeout') {
      // Only the latest arming counts; an older one was overtaken by a read or a new byte.
      if (event.data !== this.#timeoutGeneration || this.#timeoutDeadlineNs === null) return;
      this.#timeoutDeadlineNs = null;
      if (this.#receiveFifo.length > 0) {
        this.#timeoutPending = true;
        this.#updateInterrupt();
      }
    }
  }

  reset(): void {
    this.#divisor = RESET_DIVISOR;
    this.#receiveBuffer = 0;
    this.#interruptEnable = 0;
    this.#interruptIdentification = Iir.NoInterrupt;
    this.#lineControl = 0;
    this.#modemControl = 0x08;
    this.#lineStatus = Lsr.TransmitterEmpty | Lsr.TransmitterHoldingEmpty;
    this.#modemStatus = Msr.Reset;
    this.#scratch = 0;
    this.#fifoControl = 0;
    this.#transmitterEmptyPending = false;
    this.#timeoutPending = false;
    this.#characterTimeNs = RESET_CHARACTER_TIME_NS;
    this.#receiveFifo.clear();
    this.#cancelTimeout();
    // The backlog is the line, not the chip: what the host sent still arrives after a reset.
    this.#refillReceiver();
    this.#updateInterrupt();
    this.#pumpHostInput();
  }

  #readReceiveBuffer(): number {
    let value: number;
    if (this.#fifoEnabled) {
      value = this.#receiveFifo.length === 0 ? 0 : this.#receiveFifo.shift();
      if (this.#receiveFifo.length === 0) {
        this.#lineStatus &= ~(Lsr.DataReady | Lsr.BreakInterrupt);
      } else {
        this.#armTimeout();
      }
      this.#timeoutPending = false;
    } else {
      value = this.#receiveBuffer;
      this.#lineStatus &= ~(Lsr.DataReady | Lsr.BreakInterrupt);
    }
    this.#refillReceiver();
    this.#updateInterrupt();
    this.#pumpHostInput();
    return value;
  }

  #transmit(byte: number): void {
    // As QEMU: THR is briefly full (the interrupt line may drop), then the byte leaves at once.
    this.#transmitterEmptyPending = false;
    this.#lineStatus &= ~(Lsr.TransmitterHoldingEmpty | Lsr.TransmitterEmpty);
    this.#updateInterrupt();
    this.#lineStatus |= Lsr.TransmitterHoldingEmpty;
    this.#transmitterEmptyPending = true;
    this.#updateInterrupt();
    if (this.#loopback) {
      this.#receiveFromLine(byte);
    } else {
      this.#env?.output('console', Uint8Array.of(byte));
    }
    this.#lineStatus |= Lsr.TransmitterEmpty;
  }

  #writeInterruptEnable(value: number): void {
    const changed = (this.#interruptEnable ^ value) & 0x0f;
    this.#interruptEnable = value & 0x0f;
    // As QEMU (and Windows relies on it): turning the THRE interrupt on with THR empty raises it
    // anew, even after an IIR read acknowledged it.
    if (changed & Ier.TransmitterEmpty) {
      this.#transmitterEmptyPending =
        (this.#interruptEnable & Ier.TransmitterEmpty) !== 0 &&
        (this.#lineStatus & Lsr.TransmitterHoldingEmpty) !== 0;
    }
    if (changed) this.#updateInterrupt();
  }

  #writeFifoControl(value: number): void {
    // Switching the FIFOs on or off flushes both.
    if ((value ^ this.#fifoControl) & Fcr.Enable) value |= Fcr.ReceiverReset | Fcr.TransmitterReset;
    if (value & Fcr.ReceiverReset) {
      this.#lineStatus &= ~(Lsr.DataReady | Lsr.BreakInterrupt);
      this.#cancelTimeout();
      this.#timeoutPending = false;
      this.#receiveFifo.clear();
    }
    if (value & Fcr.TransmitterReset) {
      this.#lineStatus |= Lsr.TransmitterHoldingEmpty;
      this.#transmitterEmptyPending = true;
    }
    this.#fifoControl = value & Fcr.StickyMask;
    if (this.#fifoEnabled) {
      this.#interruptIdentification |= Iir.FifoEnabled;
    } else {
      this.#interruptIdentification &= ~Iir.FifoEnabled;
    }
    this.#refillReceiver();
    this.#updateInterrupt();
    this.#pumpHostInput();
  }

  /** Recomputes the character time from the divisor and line format, as QEMU does. */
  #updateLineParameters(): void {
    if (this.#divisor === 0 || this.#divisor > UART_VIRT_BAUD_BASE) return;
    const control = this.#lineControl;
    const parityBits = control & 0x08 ? 1 : 0;
    const dataBits = (control & 0x03) + 5;
    const stopBits = control & 0x04 ? 2 : 1;
    const frameBits = 1 + parityBits + dataBits + stopBits;
    const baud = Math.floor(UART_VIRT_BAUD_BASE / this.#divisor);
    this.#characterTimeNs = Math.floor(NANOSECONDS_PER_SECOND / baud) * frameBits;
  }

  /** A byte arriving at the receiver from the line in loopback: QEMU's receive path, overruns and all. */
  #receiveFromLine(byte: number): void {
    if (this.#fifoEnabled) {
      if (this.#receiveFifo.length < UART_FIFO_BYTES) {
        this.#receiveFifo.push(byte);
      } else {
        this.#lineStatus |= Lsr.Overrun;
      }
      this.#lineStatus |= Lsr.DataReady;
      this.#armTimeout();
    } else {
      if (this.#dataReady) this.#lineStatus |= Lsr.Overrun;
      this.#receiveBuffer = byte;
      this.#lineStatus |= Lsr.DataReady;
    }
    this.#updateInterrupt();
  }

  /** Moves held host bytes into the receiver while it has room (never in loopback). */
  #refillReceiver(): void {
    if (this.#receiveBacklog.length === 0 || this.#loopback) return;
    if (this.#fifoEnabled) {
      if (this.#receiveFifo.length >= UART_FIFO_BYTES) return;
      while (this.#receiveFifo.length < UART_FIFO_BYTES && this.#receiveBacklog.length > 0) {
        this.#receiveFifo.push(this.#receiveBacklog.shift());
      }
      this.#lineStatus |= Lsr.DataReady;
      this.#armTimeout();
    } else if (!this.#dataReady) {
      this.#receiveBuffer = this.#receiveBacklog.shift();
      this.#lineStatus |= Lsr.DataReady;
    }
    this.#updateInterrupt();
  }

  /** (Re)starts the character timeout: 4 character times from now, as QEMU. */
  #armTimeout(): void {
    const env = this.#env;
    if (env === undefined) return;
    this.#timeoutGeneration = (this.#timeoutGeneration + 1) >>> 0;
    this.#timeoutDeadlineNs = env.clock.monotonicNs() + 4 * this.#characterTimeNs;
    env.injectAt('rx-timeout', this.#timeoutDeadlineNs, {
      type: 'rx-timeout',
      data: this.#timeoutGeneration,
    });
  }

  #cancelTimeout(): void {
    if (this.#timeoutDeadlineNs === null) return;
    this.#timeoutDeadlineNs = null;
    this.#env?.cancelInjectAt('rx-timeout');
  }

  /** Picks the interrupt to report, highest priority first, and drives the line (QEMU's order). */
  #updateInterrupt(): void {
    const enable = this.#interruptEnable;
    let id: number = Iir.NoInterrupt;
    if (enable & Ier.ReceiverLineStatus && this.#lineStatus & Lsr.InterruptAny) {
      id = Iir.ReceiverLineStatus;
    } else if (enable & Ier.ReceivedData && this.#timeoutPending) {
      id = Iir.CharacterTimeout;
    } else if (
      enable & Ier.ReceivedData &&
      this.#dataReady &&
      (!this.#fifoEnabled || this.#receiveFifo.length >= this.#receiveTriggerLevel)
    ) {
      id = Iir.ReceivedData;
    } else if (enable & Ier.TransmitterEmpty && this.#transmitterEmptyPending) {
      id = Iir.TransmitterEmpty;
    } else if (enable & Ier.ModemStatus && this.#modemStatus & Msr.AnyDelta) {
      id = Iir.ModemStatus;
    }
    this.#interruptIdentification = id | (this.#interruptIdentification & 0xf0);
    this.#driveInterrupt(false);
  }

  #driveInterrupt(force: boolean): void {
    const level = (this.#interruptIdentification & Iir.NoInterrupt) === 0;
    if (level === this.#interruptLevel && !force) return;
    this.#interruptLevel = level;
    this.#env?.irq.set(level);
  }

  // ---- State -----------------------------------------------------------------------------------

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        divisor: this.#divisor,
        receiveBuffer: this.#receiveBuffer,
        interruptEnable: this.#interruptEnable,
        interruptIdentification: this.#interruptIdentification,
        lineControl: this.#lineControl,
        modemControl: this.#modemControl,
        lineStatus: this.#lineStatus,
        modemStatus: this.#modemStatus,
        scratch: this.#scratch,
        fifoControl: this.#fifoControl,
        transmitterEmptyPending: this.#transmitterEmptyPending,
        timeoutPending: this.#timeoutPending,
        characterTimeNs: this.#characterTimeNs,
        receiveFifo: this.#receiveFifo.toBytes(),
        receiveBacklog: this.#receiveBacklog.toBytes(),
        timeoutGeneration: this.#timeoutGeneration,
        timeoutDeadlineNs: this.#timeoutDeadlineNs,
      },
    };
  }

  restoreState(section: StateSection): void {
    const state = StateReader.open(section, this.kind, STATE_VERSION);
    const divisor = state.integer('divisor', 0xffff);
    const receiveBuffer = state.integer('receiveBuffer', 0xff);
    const interruptEnable = state.integer('interruptEnable', 0x0f);
    const interruptIdentification = state.integer('interruptIdentification', 0xff);
    const lineControl = state.integer('lineControl', 0xff);
    const modemControl = state.integer('modemControl', Mcr.Mask);
    const lineStatus = state.integer('lineStatus', 0xff);
    const modemStatus = state.integer('modemStatus', 0xff);
    const scratch = state.integer('scratch', 0xff);
    const fifoControl = state.integer('fifoControl', Fcr.StickyMask);
    const transmitterEmptyPending = state.boolean('transmitterEmptyPending');
    const timeoutPending = state.boolean('timeoutPending');
    const characterTimeNs = state.integer('characterTimeNs', Number.MAX_SAFE_INTEGER);
    const receiveFifo = state.bytes('receiveFifo', UART_FIFO_BYTES);
    const receiveBacklog = state.bytes('receiveBacklog', UART_RECEIVE_BACKLOG_BYTES_MAX);
    const timeoutGeneration = state.integer('timeoutGeneration', 0xffff_ffff);
    const timeoutDeadlineNs = state.finiteOrNull('timeoutDeadlineNs');

    this.#divisor = divisor;
    this.#receiveBuffer = receiveBuffer;
    this.#interruptEnable = interruptEnable;
    this.#interruptIdentification = interruptIdentification;
    this.#lineControl = lineControl;
    this.#modemControl = modemControl;
    this.#lineStatus = lineStatus;
    this.#modemStatus = modemStatus;
    this.#scratch = scratch;
    this.#fifoControl = fifoControl;
    this.#transmitterEmptyPending = transmitterEmptyPending;
    this.#timeoutPending = timeoutPending;
    this.#characterTimeNs = characterTimeNs;
    this.#receiveFifo.clear();
    this.#receiveFifo.pushAll(receiveFifo);
    this.#receiveBacklog.clear();
    this.#receiveBacklog.pushAll(receiveBacklog);
    this.#timeoutGeneration = timeoutGeneration;
    this.#timeoutDeadlineNs = timeoutDeadlineNs;
    // Re-arm the pending timeout and re-drive the line: the new env knows nothing of either.
    if (timeoutDeadlineNs !== null) {
      this.#env?.injectAt('rx-timeout', timeoutDeadlineNs, { type: 'rx-timeout', data: timeoutGeneration });
    } else {
      this.#env?.cancelInjectAt('rx-timeout');
    }
    this.#driveInterrupt(true);
    this.#requeueInFlight();
    this.#pumpHostInput();
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    return {
      name: nodeName('serial', placement.base),
      properties: {
        interrupts: [placement.irq],
        'interrupt-parent': [this.#interruptParentPhandle],
        'clock-frequency': [UART_CLOCK_FREQUENCY_HZ],
        reg: socReg(placement.base, UART_MMIO_SIZE_BYTES),
        compatible: 'ns16550a',
      },
    };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}
