import type { DeviceTreeNode } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { Clint } from './clint/clint.js';
import { socReg } from './device-tree.js';
import fixture from './fixtures/qemu-virt-7.2-device-tree.json' with { type: 'json' };
import { Plic } from './plic/plic.js';
import { GoldfishRtc } from './rtc/rtc.js';
import { SifiveTestFinisher } from './test-finisher/test-finisher.js';
import { line } from './test-support.js';
import { Ns16550aUart } from './uart/uart.js';

/** The fixture's node at `path` (written from QEMU 7.2's dumped device tree). */
function expected(path: keyof typeof fixture.nodes): { name: string; properties: object } {
  return { name: path.slice(path.lastIndexOf('/') + 1), properties: fixture.nodes[path] };
}

/** Node name and properties, with property order kept (it is the blob order QEMU writes). */
function shape(node: DeviceTreeNode): { name: string; properties: object; order: string[] } {
  return { name: node.name, properties: node.properties, order: Object.keys(node.properties) };
}

function expectMatches(node: DeviceTreeNode, path: keyof typeof fixture.nodes): void {
  const want = expected(path);
  expect(shape(node)).toEqual({ ...want, order: Object.keys(want.properties) });
}

describe('device-tree nodes match QEMU 7.2 virt', () => {
  it('serial@10000000', () => {
    expectMatches(
      new Ns16550aUart().deviceTree({ name: 'uart', base: 0x1000_0000, irq: 10 }),
      '/soc/serial@10000000',
    );
  });

  it('rtc@101000', () => {
    expectMatches(new GoldfishRtc().deviceTree({ name: 'rtc', base: 0x10_1000, irq: 11 }), '/soc/rtc@101000');
  });

  it('test@100000 and the poweroff/reboot syscon nodes', () => {
    const finisher = new SifiveTestFinisher();
    expectMatches(finisher.deviceTree({ name: 'finisher', base: 0x10_0000, irq: 0 }), '/soc/test@100000');
    const [poweroff, reboot] = finisher.powerControlDeviceTreeNodes();
    expectMatches(poweroff!, '/poweroff');
    expectMatches(reboot!, '/reboot');
  });

  it('plic@c000000', () => {
    const plic = new Plic({ contexts: [line(), line()] });
    expectMatches(plic.deviceTree({ name: 'plic', base: 0x0c00_0000, irq: 0 }), '/soc/plic@c000000');
  });

  it('clint@2000000', () => {
    const clint = new Clint({ softwareInterrupt: line(), timerInterrupt: line() });
    expectMatches(clint.deviceTree({ name: 'clint', base: 0x0200_0000, irq: 0 }), '/soc/clint@2000000');
  });

  it('takes phandles from the constructor', () => {
    const uart = new Ns16550aUart({ interruptParentPhandle: 9 });
    expect(
      uart.deviceTree({ name: 'uart', base: 0x1000_0000, irq: 10 }).properties['interrupt-parent'],
    ).toEqual([9]);
    const plic = new Plic({ contexts: [line(), line()], phandle: 7, hartInterruptControllerPhandle: 5 });
    const node = plic.deviceTree({ name: 'plic', base: 0x0c00_0000, irq: 0 });
    expect(node.properties.phandle).toEqual([7]);
    expect(node.properties['interrupts-extended']).toEqual([5, 11, 5, 9]);
    const finisher = new SifiveTestFinisher({ phandle: 12 });
    expect(finisher.powerControlDeviceTreeNodes()[0]!.properties.regmap).toEqual([12]);
  });

  it('writes reg cells high word first', () => {
    expect(socReg(0x1_2000_0000, 0x1000)).toEqual([1, 0x2000_0000, 0, 0x1000]);
  });
});
