import type { PlainValue } from './values.js';

/**
 * The saved state of one component (the CPU, one device), named and versioned on its own so that
 * a component can change its state layout without a global format version. A component that
 * cannot read a section (unknown name or a version it does not know) throws `SnapshotError`.
 */
export interface StateSection {
  /** The component kind that wrote it, e.g. `riscv-cpu`, `ns16550a`. */
  readonly kind: string;
  /** The version of that component's state layout; bump it on every change of `state`. */
  readonly version: number;
  readonly state: PlainValue;
}

/** The RAM of a snapshot: its place and the contents of every page that is not all zero. */
export interface RamSnapshot {
  readonly base: number;
  readonly size: number;
  /** Page numbers (from `base`, in pages of 4 KiB), ascending, of the pages stored in `pages`. */
  readonly pageNumbers: readonly number[];
  /** The contents of those pages, concatenated: `pageNumbers.length * 4096` bytes. */
  readonly pages: Uint8Array;
}

/**
 * A whole machine at one execution point: enough to build a machine that continues exactly as the
 * original would. The byte layout on disk is the snapshot codec's business; this is its shape.
 */
export interface MachineSnapshot {
  readonly format: 'ftvm-machine-snapshot';
  /** The version of this envelope; sections carry their own versions. */
  readonly version: 1;
  readonly icount: number;
  /** The machine configuration it was taken from (memory size, devices and their placement). */
  readonly config: PlainValue;
  readonly cpu: StateSection;
  /** Device name → that device's state. */
  readonly devices: { readonly [name: string]: StateSection };
  readonly ram: RamSnapshot;
}
