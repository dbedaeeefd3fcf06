import type {
  AccessWidth,
  Device,
  DeviceEnv,
  DeviceEventPayload,
  DevicePlacement,
  DeviceTreeNode,
  StateSection,
} from '@ftvm/core';
import { nodeName, QEMU_VIRT_PHANDLES, socReg } from '../device-tree.js';
import { StateReader } from '../state.js';

/**
 * SiFive test finisher as QEMU 7.2's `sifive_test`: one write-only register at offset 0 that
 * powers the board off or resets it. A 16- or 32-bit write of `status | code << 16`:
 *
 * | status | effect |
 * |---|---|
 * | 0x5555 (pass) | `env.control.powerOff(0)` |
 * | 0x3333 (fail) | `env.control.powerOff(code)` (QEMU exits with `code`, which the OS truncates to 8 bits) |
 * | 0x7777 (reset) | `env.control.reset()` |
 *
 * Any other value, any other offset and every read do nothing (reads return 0). Byte accesses,
 * which QEMU faults, are ignored. The device has no state.
 */

export const SIFIVE_TEST_MMIO_SIZE_BYTES = 0x1000;

/** The status values of the finisher register (its low 16 bits). */
export const FinisherStatus = {
  fail: 0x3333,
  pass: 0x5555,
  reset: 0x7777,
} as const;

const STATE_VERSION = 1;

/** Options of {@link SifiveTestFinisher}. */
export interface SifiveTestFinisherOptions {
  /** The finisher's phandle, which the `poweroff`/`reboot` nodes point at (default QEMU's, 4). */
  readonly phandle?: number;
}

/** The test finisher model; see the file comment. */
export class SifiveTestFinisher implements Device {
  readonly kind = 'sifive-test';
  readonly mmioSize = SIFIVE_TEST_MMIO_SIZE_BYTES;

  readonly #phandle: number;
  #env: DeviceEnv | undefined;

  constructor(options: SifiveTestFinisherOptions = {}) {
    this.#phandle = options.phandle ?? QEMU_VIRT_PHANDLES.testFinisher;
  }

  attach(env: DeviceEnv, _placement: DevicePlacement): void {
    this.#env = env;
  }

  readMmio(_offset: number, _width: AccessWidth): number {
    return 0;
  }

  writeMmio(offset: number, width: AccessWidth, value: number): void {
    if (offset !== 0 || width === 1) return;
    const status = value & 0xffff;
    const code = (value >>> 16) & 0xffff;
    switch (status) {
      case FinisherStatus.fail:
        this.#env?.control.powerOff(code);
        return;
      case FinisherStatus.pass:
        this.#env?.control.powerOff(0);
        return;
      case FinisherStatus.reset:
        this.#env?.control.reset();
        return;
      default:
        return;
    }
  }

  applyEvent(_event: DeviceEventPayload): void {
    // Nothing to apply: the finisher injects nothing.
  }

  reset(): void {
    // No state.
  }

  saveState(): StateSection {
    return { kind: this.kind, version: STATE_VERSION, state: {} };
  }

  restoreState(section: StateSection): void {
    StateReader.open(section, this.kind, STATE_VERSION);
  }

  deviceTree(placement: DevicePlacement): DeviceTreeNode {
    return {
      name: nodeName('test', placement.base),
      properties: {
        phandle: [this.#phandle],
        reg: socReg(placement.base, SIFIVE_TEST_MMIO_SIZE_BYTES),
        compatible: ['sifive,test1', 'sifive,test0', 'syscon'],
      },
    };
  }

  /**
   * The root-level `poweroff` and `reboot` nodes that QEMU `virt` points at this syscon, for the
   * machine to place next to `/soc`.
   */
  powerControlDeviceTreeNodes(): DeviceTreeNode[] {
    const syscon = (compatible: string, value: number): DeviceTreeNode => ({
      name: compatible === 'syscon-poweroff' ? 'poweroff' : 'reboot',
      properties: { value: [value], offset: [0], regmap: [this.#phandle], compatible },
    });
    return [syscon('syscon-poweroff', FinisherStatus.pass), syscon('syscon-reboot', FinisherStatus.reset)];
  }
}
