import {
  type AccessWidth,
  type Device,
  type DeviceEnv,
  DeviceError,
  type DeviceEventPayload,
  type DevicePlacement,
  type DeviceTreeNode,
  type InterruptLine,
  type StateSection,
} from '@ftvm/core';
import { HART_INTERRUPT, nodeName, QEMU_VIRT_PHANDLES, socReg } from '../device-tree.js';
import { StateReader } from '../state.js';

/**
 * SiFive PLIC as QEMU 7.2 `virt` configures it for one hart: 96 sources (ids 1–95 can be wired;
 * 0 means "none"), 3 priority bits, two contexts (0 = hart 0 M-mode, 1 = hart 0 S-mode), 32-bit
 * accesses only.
 *
 * | offset | register |
 * |---|---|
 * | 0x000004 + 4·(n−1) | priority of source n, n = 1…96 (0–7; offset 0, source 0, has none) |
 * | 0x001000 + 4·w | pending bits of sources 32w…32w+31, w = 0…2 (read only) |
 * | 0x002000 + 0x80·c + 4·w | enable bits of context c |
 * | 0x200000 + 0x1000·c | priority threshold of context c (0–7) |
 * | 0x200004 + 0x1000·c | claim (read) / complete (write) of context c |
 *
 * Sources are level-triggered: a rising level sets the source pending; claiming it clears the
 * pending bit and holds the source until it is completed; completing a source whose level is
 * still high makes it pending again. A context's line is raised while some enabled, pending,
 * unclaimed source has a priority above its threshold; the highest priority wins the claim,
 * the lowest id among equals. As on QEMU 7.2, writing an enable word does not re-evaluate the
 * context lines (the next priority, threshold, claim, complete or source change does), lowering a
 * source does not clear its pending bit, and a source's priority above 7 keeps its low 3 bits.
 */

/** Size of the MMIO window (QEMU 7.2 `virt`, two contexts). */
export const PLIC_MMIO_SIZE_BYTES = 0x60_0000;
/** QEMU's `num-sources` for `virt`: ids 0…95 have pending and enable bits. */
export const PLIC_SOURCE_COUNT = 96;
/** `riscv,ndev` in QEMU 7.2's device tree: the highest priority register is for source 96. */
export const PLIC_DEVICE_TREE_NDEV = 96;
/** Highest priority (3 bits). */
export const PLIC_PRIORITY_MAX = 7;
/** Number of contexts: 0 = hart 0 machine mode, 1 = hart 0 supervisor mode. */
export const PLIC_CONTEXT_COUNT = 2;

const PRIORITY_BASE = 0x4;
const PRIORITY_REGISTERS = PLIC_DEVICE_TREE_NDEV;
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x20_0000;
const CONTEXT_STRIDE = 0x1000;
const WORDS = Math.ceil(PLIC_SOURCE_COUNT / 32);
const STATE_VERSION = 1;

/** Options of {@link Plic}. */
export interface PlicOptions {
  /** The lines into the hart, one per context: `[machineExternal, supervisorExternal]`. */
  readonly contexts: readonly [InterruptLine, InterruptLine];
  /** The PLIC's own phandle (default QEMU's, 3). */
  readonly phandle?: number;
  /** Phandle of the hart's interrupt controller, for `interrupts-extended` (default QEMU's, 2). */
  readonly hartInterruptControllerPhandle?: number;
}

/** The PLIC model; see the file comment. */
export class Plic implements Device {
  readonly kind = 'sifive-plic';
  readonly mmioSize = PLIC_MMIO_SIZE_BYTES;

  readonly #contextLines: readonly InterruptLine[];
  readonly #phandle: number;
  readonly #hartInterruptControllerPhandle: number;
  readonly #sourceLines: (InterruptLine | undefined)[] = [];

  // Guest-visible state (saved). Index 0 of `#priorities` is source 0, which has no register.
  readonly #priorities = new Uint32Array(PRIORITY_REGISTERS + 1);
  readonly #thresholds = new Uint32Array(PLIC_CONTEXT_COUNT);
  readonly #pending = new Uint32Array(WORDS);
  readonly #claimed = new Uint32Array(WORDS);
  readonly #enables = new Uint32Array(WORDS * PLIC_CONTEXT_COUNT);
  /** The level each source line is at. */
  readonly #levels = new Uint32Array(WORDS);
  /**
   * The level last driven on each context line. Saved: after an enable write it may lag behind the
   * rest until the next re-evaluation, as on QEMU.
   */
  readonly #contextLevels: boolean[] = new Array(PLIC_CONTEXT_COUNT).fill(false);

  constructor(options: PlicOptions) {
    if (options.contexts.length !== PLIC_CONTEXT_COUNT) {
      throw new DeviceError(`the PLIC needs ${PLIC_CONTEXT_COUNT} context lines`);
    }
    this.#contextLines = [...options.contexts];
    this.#phandle = options.phandle ?? QEMU_VIRT_PHANDLES.plic;
    this.#hartInterruptControllerPhandle =
      options.hartInterruptControllerPhandle ?? QEMU_VIRT_PHANDLES.hartInterruptController;
  }

  /**
   * The input line of source `source` (1…95), for the machine to hand a device as its `irq`. The
   * same object every time. Throws `DeviceError` for a source the PLIC does not have.
   */
  sourceLine(source: number): InterruptLine {
    if (!Number.isInteger(source) || source < 1 || source >= PLIC_SOURCE_COUNT) {
      throw new DeviceError(`PLIC source ${source} does not exist (sources are 1…${PLIC_SOURCE_COUNT - 1})`);
    }
    let line = this.#sourceLines[source];
    if (line === undefined) {
      line = { set: (level: boolean) => this.#setSourceLevel(source, level) };
      this.#sourceLines[source] = line;
    }
    return line;
  }

  attach(_env: DeviceEnv, _placement: DevicePlacement): void {
    this.#update(true);
  }

  readMmio(offset: number, width: AccessWidth): number {
    // QEMU accepts only aligned 32-bit accesses here (others fault); we read 0.
    if (width !== 4 || offset % 4 !== 0) return 0;
    if (offset >= PRIORITY_BASE && offset < PRIORITY_BASE + 4 * PRIORITY_REGISTERS) {
      return this.#priorities[(offset - PRIORITY_BASE) / 4 + 1]!;
    }
    if (offset >= PENDING_BASE && offset < PENDING_BASE + 4 * WORDS) {
      return this.#pending[(offset - PENDING_BASE) / 4]!;
    }
    if (offset >= ENABLE_BASE && offset < ENABLE_BASE + ENABLE_STRIDE * PLIC_CONTEXT_COUNT) {
      const context = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const word = ((offset - ENABLE_BASE) % ENABLE_STRIDE) / 4;
      return word < WORDS ? this.#enables[context * WORDS + word]! : 0;
    }
    if (offset >= CONTEXT_BASE && offset < CONTEXT_BASE + CONTEXT_STRIDE * PLIC_CONTEXT_COUNT) {
      const context = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
      const register = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
      if (register === 0) return this.#thresholds[context]!;
      if (register === 4) return this.#claim(context);
    }
    return 0;
  }

  writeMmio(offset: number, width: AccessWidth, value: number): void {
    if (width !== 4 || offset % 4 !== 0) return;
    value >>>= 0;
    if (offset >= PRIORITY_BASE && offset < PRIORITY_BASE + 4 * PRIORITY_REGISTERS) {
      // 3 priority bits, write-any-read-legal: the low bits are kept.
      this.#priorities[(offset - PRIORITY_BASE) / 4 + 1] = value & PLIC_PRIORITY_MAX;
      this.#update(false);
      return;
    }
    if (offset >= ENABLE_BASE && offset < ENABLE_BASE + ENABLE_STRIDE * PLIC_CONTEXT_COUNT) {
      const context = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const word = ((offset - ENABLE_BASE) % ENABLE_STRIDE) / 4;
      // No re-evaluation here: QEMU 7.2 does none either (see the file comment).
      if (word < WORDS) this.#enables[context * WORDS + word] = value;
      return;
    }
    if (offset >= CONTEXT_BASE && offset < CONTEXT_BASE + CONTEXT_STRIDE * PLIC_CONTEXT_COUNT) {
      const context = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
      const register = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
      if (register === 0) {
        this.#thresholds[context] = value & PLIC_PRIORITY_MAX;
        this.#update(false);
      } else if (register === 4) {
        this.#complete(value);
      }
    }
    // Pending bits are read-only; everything else is a hole.
  }

  applyEvent(_event: DeviceEventPayload): void {
    // The PLIC injects nothing; a logged event for it is ignored.
  }

  reset(): void {
    this.#priorities.fill(0);
    this.#thresholds.fill(0);
    this.#pending.fill(0);
    this.#claimed.fill(0);
    this.#enables.fill(0);
    // Source levels belong to the devices, which reset themselves and drive their lines again.
    this.#update(true);
  }

  /** The source `context` would claim now: the highest priority above its threshold, or 0. */
  #best(context: number): number {
    let bestSource = 0;
    let bestPriority = this.#thresholds[context]!;
    for (let word = 0; word < WORDS; word++) {
      const candidates =
        this.#pending[word]! & ~this.#claimed[word]! & this.#enables[context * WORDS + word]!;
      if (candidates === 0) continue;
      for (let bit = 0; bit < 32; bit++) {
        if (((candidates >>> bit) & 1) === 0) continue;
        const source = word * 32 + bit;
        const priority = this.#priorities[source]!;
        if (priority > bestPriority) {
          bestSource = source;
          bestPriority = priority;
        }
      }
    }
    return bestSource;
  }

  #claim(context: number): number {
    const source = this.#best(context);
    if (source !== 0) {
      this.#setBit(this.#pending, source, false);
      this.#setBit(this.#claimed, source, true);
    }
    this.#update(false);
    return source;
  }

  #complete(source: number): void {
    // As QEMU: any context may complete any source id below the source count, claimed or not.
    if (source >= PLIC_SOURCE_COUNT) return;
    this.#setBit(this.#claimed, source, false);
    // Level-triggered: a source still asserted asks again.
    if (this.#getBit(this.#levels, source)) this.#setBit(this.#pending, source, true);
    this.#update(false);
  }

  #setSourceLevel(source: number, level: boolean): void {
    const wasHigh = this.#getBit(this.#levels, source);
    this.#setBit(this.#levels, source, level);
    // A rising level makes the source pending; lowering it leaves the pending bit as it is (QEMU).
    if (level && !wasHigh) {
      this.#setBit(this.#pending, source, true);
      this.#update(false);
    }
  }

  #update(force: boolean): void {
    for (let context = 0; context < PLIC_CONTEXT_COUNT; context++) {
      const level = this.#best(context) !== 0;
      if (level === this.#contextLevels[context] && !force) continue;
      this.#contextLevels[context] = level;
      this.#contextLines[context]!.set(level);
    }
  }

  #getBit(words: Uint32Array, source: number): boolean {
    return ((words[source >>> 5]! >>> (source & 31)) & 1) !== 0;
  }

  #setBit(words: Uint32Array, source: number, value: boolean): void {
    const mask = 1 << (source & 31);
    words[source >>> 5] = value ? words[source >>> 5]! | mask : words[source >>> 5]! & ~mask;
  }

  saveState(): StateSection {
    return {
      kind: this.kind,
      version: STATE_VERSION,
      state: {
        priorities: Array.from(this.#priorities),
        thresholds: Array.from(this.#thresholds),
        pending: Array.from(this.#pending),
        claimed: Array.from(this.#claimed),
        enables: Array.from(this.#enables),
        levels: Array.from(this.#levels),
        contextLevels: this.#contextLevels.map((level) => (level ? 1 : 0)),
      },
    };
  }

  restoreState(section: StateSection): void {
    const state = StateReader.open(section, this.kind, STATE_VERSION);
    const priorities = state.integers('priorities', PRIORITY_REGISTERS + 1, PLIC_PRIORITY_MAX);
    const thresholds = state.integers('thresholds', PLIC_CONTEXT_COUNT, PLIC_PRIORITY_MAX);
    const pending = state.integers('pending', WORDS, 0xffff_ffff);
    const claimed = state.integers('claimed', WORDS, 0xffff_ffff);
    const enables = state.integers('enables', WORDS * PLIC_CONTEXT_COUNT, 0xffff_ffff);
    const levels = state.integers('levels', WORDS, 0xffff_ffff);
    const contextLevels = state.integers('contextLevels', PLIC_CONTEXT_COUNT, 1);
    this.#priorities.set(priorities);
    this.#thresholds.set(thresholds);
    this.#pending.set(pending);
    this.#claimed.set(claimed);
    this.#enables.set(enables);
    this.#levels.set(levels);
    contextLevels.forEach((level, context) => {
      this.#contextLevels[context] = level === 1;
      this.#contextLines[context]!.set(level === 1);
    });
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    const hart = this.#hartInterruptControllerPhandle;
    return {
      name: nodeName('plic', placement.base),
      properties: {
        phandle: [this.#phandle],
        'riscv,ndev': [PLIC_DEVICE_TREE_NDEV],
        reg: socReg(placement.base, PLIC_MMIO_SIZE_BYTES),
        'interrupts-extended': [
          hart,
          HART_INTERRUPT.machineExternal,
          hart,
          HART_INTERRUPT.supervisorExternal,
        ],
        'interrupt-controller': [],
        compatible: ['sifive,plic-1.0.0', 'riscv,plic0'],
        '#address-cells': [0],
        '#interrupt-cells': [1],
      },
    };
  }
}
