/**
 * Device-tree conventions of QEMU 7.2's `virt` board, which the models' `deviceTree` nodes follow.
 */

/**
 * The phandles QEMU 7.2 `virt` (one hart) assigns; the models use them unless told otherwise
 * through their constructor options.
 */
export const QEMU_VIRT_PHANDLES = {
  /** `/cpus/cpu@0`. */
  cpu: 1,
  /** `/cpus/cpu@0/interrupt-controller`: the hart-local interrupt controller. */
  hartInterruptController: 2,
  /** `/soc/plic@c000000`. */
  plic: 3,
  /** `/soc/test@100000`, the syscon that the `poweroff` and `reboot` nodes point at. */
  testFinisher: 4,
} as const;

/** Interrupt numbers (`mcause` codes) that `interrupts-extended` cells name on the hart controller. */
export const HART_INTERRUPT = {
  machineSoftware: 3,
  machineTimer: 7,
  supervisorExternal: 9,
  machineExternal: 11,
} as const;

/**
 * A `reg` property under `/soc`, which has `#address-cells = 2` and `#size-cells = 2` on `virt`:
 * each value is two cells, high word first.
 */
export function socReg(base: number, sizeBytes: number): number[] {
  return [
    Math.floor(base / 2 ** 32) >>> 0,
    base >>> 0,
    Math.floor(sizeBytes / 2 ** 32) >>> 0,
    sizeBytes >>> 0,
  ];
}

/** Node name with unit address, as QEMU writes it: `serial@10000000`. */
export function nodeName(name: string, base: number): string {
  return `${name}@${base.toString(16)}`;
}
