import type { AccessWidth, Device } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { Clint } from './clint/clint.js';
import fixture from './fixtures/qemu-register-transcripts.json' with { type: 'json' };
import { Plic } from './plic/plic.js';
import { GoldfishRtc } from './rtc/rtc.js';
import { SifiveTestFinisher } from './test-finisher/test-finisher.js';
import { createDeviceHarness, type DeviceHarness, TestClock, TestInterruptLine } from './testing/index.js';
import { Ns16550aUart } from './uart/uart.js';

/**
 * Register scripts recorded on QEMU 7.2 (qemu-reference/record.mjs: a guest runs each script and
 * prints what it read), replayed here on the five models wired as on `virt`. Every read must
 * match QEMU's.
 */

/** The devices wired as on QEMU `virt`: UART on PLIC source 10, RTC on 11, PLIC and CLINT into the hart. */
function makeBoard() {
  const machineSoftware = new TestInterruptLine();
  const machineTimer = new TestInterruptLine();
  const supervisorExternal = new TestInterruptLine();
  const machineExternal = new TestInterruptLine();
  const plic = new Plic({ contexts: [machineExternal, supervisorExternal] });
  const clint = new Clint({ softwareInterrupt: machineSoftware, timerInterrupt: machineTimer });
  // Early after boot, as on QEMU; the scripts read no time.
  const clock = new TestClock(5_000_000, 1_795_575_600_000_000_000);
  const slots: { base: number; harness: DeviceHarness<Device> }[] = [];
  const place = (device: Device, name: string, base: number, irq = 0) => {
    const irqTarget = irq === 0 ? undefined : plic.sourceLine(irq);
    slots.push({
      base,
      harness: createDeviceHarness(device, { clock, irqTarget, placement: { name, base, irq } }),
    });
  };
  place(new SifiveTestFinisher(), 'test', 0x10_0000);
  place(new GoldfishRtc(), 'rtc', 0x10_1000, 11);
  place(clint, 'clint', 0x0200_0000);
  place(plic, 'plic', 0x0c00_0000);
  place(new Ns16550aUart(), 'uart', 0x1000_0000, 10);

  const slotAt = (address: number) => {
    const slot = slots.find((candidate) => {
      const offset = address - candidate.base;
      return offset >= 0 && offset < candidate.harness.device.mmioSize;
    });
    if (slot === undefined) throw new Error(`no device at 0x${address.toString(16)}`);
    return slot;
  };
  return {
    read(address: number, width: AccessWidth): number {
      const slot = slotAt(address);
      const value = slot.harness.read(address - slot.base, width);
      slot.harness.deliver();
      return value;
    },
    write(address: number, width: AccessWidth, value: number): void {
      const slot = slotAt(address);
      slot.harness.write(address - slot.base, value, width);
      slot.harness.deliver();
    },
    /** The interrupt bits of `mip` that the devices drive. */
    mip(): number {
      return (
        (machineSoftware.level ? 1 << 3 : 0) |
        (machineTimer.level ? 1 << 7 : 0) |
        (supervisorExternal.level ? 1 << 9 : 0) |
        (machineExternal.level ? 1 << 11 : 0)
      );
    },
  };
}

const widths: Record<string, AccessWidth> = { r8: 1, r16: 2, r32: 4, w8: 1, w16: 2, w32: 4 };

describe('register scripts recorded on QEMU 7.2', () => {
  it.each(fixture.transcripts.map((transcript) => [transcript.name, transcript] as const))(
    '%s',
    (_name, transcript) => {
      const board = makeBoard();
      const reads = new Map<number, number>();
      transcript.ops.forEach((op, index) => {
        const [kind, address, value] = op as [string, number, number];
        if (kind === 'mip') {
          reads.set(index, board.mip());
        } else if (kind.startsWith('r')) {
          reads.set(index, board.read(address, widths[kind]!));
        } else {
          board.write(address, widths[kind]!, value);
        }
      });
      const describeOp = (index: number) => {
        const [kind, address] = transcript.ops[index] as [string, number];
        return `#${index} ${kind} 0x${address.toString(16)}`;
      };
      const actual = transcript.reads.map(
        ([index]) => `${describeOp(index!)} = 0x${reads.get(index!)!.toString(16)}`,
      );
      const expected = transcript.reads.map(
        ([index, value]) => `${describeOp(index!)} = 0x${value!.toString(16)}`,
      );
      expect(actual).toEqual(expected);
    },
  );
});
