import type { DeviceTreeNode, RamRegion } from '@ftvm/core';
import {
  PHANDLE_CPU,
  PHANDLE_CPU_INTERRUPT_CONTROLLER,
  PHANDLE_TEST_FINISHER,
  TIMEBASE_FREQUENCY_HZ,
  UART_BASE,
  VIRTIO_MMIO_SLOT_COUNT,
} from './board.js';
import type { AttachedDevice } from './machine-core.js';

/**
 * The device tree handed to the guest: the board's nodes as QEMU 7.2's `virt` has them, RAM,
 * `/chosen` (with the boot arguments), and the node of every attached device that has one (the
 * user's devices after the board's, under `/soc`).
 */
export function buildBoardDeviceTree(
  attached: readonly AttachedDevice[],
  ram: RamRegion,
  bootArgs: string | undefined,
): DeviceTreeNode {
  const nodeOf = (name: string): DeviceTreeNode | undefined => {
    const entry = attached.find((item) => item.placement.name === name);
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
  for (const { placement, device } of attached) {
    if (boardNames.has(placement.name) || placement.name.startsWith('virtio')) continue;
    push(device.deviceTree?.(placement));
  }
  const ramCells = [0, ram.base, 0, ram.size];
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
          ...(bootArgs === undefined ? {} : { bootargs: bootArgs }),
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
        name: `memory@${ram.base.toString(16)}`,
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
