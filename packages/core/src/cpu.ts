import type { StateSection } from './snapshot.js';

/**
 * The execution point: the number of CPU steps since boot, where a step is one instruction
 * retired or one trap (exception or interrupt) taken. It never repeats, so one number names one
 * point on a primary and on its backup. A JavaScript number holds it exactly up to 2^53 steps.
 */
export type Icount = number;

/** Why {@link Cpu.run} returned. */
export type RunStopReason =
  /** All of the budget was executed. */
  | 'budget'
  /** The hart is in `wfi` with no interrupt pending; it resumes after one is raised. */
  | 'wfi'
  /** {@link Cpu.requestStop} was called (for example by a power-off device). */
  | 'stop';

export interface RunOutcome {
  /** Steps executed by this call; equal to the budget when `reason` is `'budget'`. */
  readonly steps: number;
  readonly reason: RunStopReason;
}

/** The interrupt lines that devices drive into the hart's `mip` register. */
export type CpuInterruptLine =
  | 'machine-software'
  | 'machine-timer'
  | 'machine-external'
  | 'supervisor-external';

/**
 * A CPU. Implemented by `@ftvm/cpu-riscv`; driven by the machine's run loop.
 *
 * Determinism: given the same memory, the same interrupt-line changes at the same icounts and the
 * same answers from the bus, a CPU does exactly the same thing. It reads no host clock, no random
 * source, and keeps no state that depends on the host.
 */
export interface Cpu {
  /** Steps since boot. Read between steps (or from an MMIO handler: then it is the current step's). */
  readonly icount: Icount;
  /** The program counter of the next instruction. */
  readonly pc: number;
  /** True while the hart waits in `wfi` for an interrupt. */
  readonly waiting: boolean;

  /**
   * Executes exactly `budget` steps, unless the hart waits in `wfi` with nothing pending or a stop
   * is requested; then it returns early and says why. Interrupts are taken only at step
   * boundaries. Called by the machine only (never from inside an MMIO handler).
   */
  run(budget: number): RunOutcome;

  /**
   * Raises or lowers an interrupt line. Called by devices (through the machine's wiring) from an
   * MMIO handler or from `applyEvent`, never from host code at an arbitrary time. The hart samples
   * it at the next step boundary.
   */
  setInterruptLine(line: CpuInterruptLine, level: boolean): void;

  /**
   * Asks the CPU to stop after the current step. Called from an MMIO handler (a power-off device)
   * or between runs. The next {@link Cpu.run} clears the request.
   */
  requestStop(): void;

  /**
   * Drops every cache derived from memory contents or from the dirty-page bitmap (decoded
   * instructions, remembered dirty pages). The machine calls it after it writes RAM behind the
   * CPU's back (loading an image, restoring a snapshot) or clears dirty pages.
   */
  invalidateMemoryCaches(): void;

  /**
   * Drops what the CPU derived from `[address, address + sizeBytes)` (decoded or compiled code of
   * those bytes). Cheaper than {@link Cpu.invalidateMemoryCaches}: the machine calls it after a
   * device wrote guest memory by DMA.
   */
  invalidateMemoryRange(address: number, sizeBytes: number): void;

  /**
   * Forgets which pages the CPU already marked dirty, keeping decoded code. The machine calls it
   * after it cleared `dirtyPages` without writing memory.
   */
  resetDirtyTracking(): void;

  /**
   * Puts the hart in its reset state (M-mode, CSRs at their reset values, no reservation, not
   * waiting) and sets the pc and the argument registers a0/a1. `icount` is NOT reset: execution
   * points never repeat, across board resets too.
   */
  reset(pc: number, a0: number, a1: number): void;

  /** Reads general-purpose register `index` (0..31) as an unsigned 32-bit number. */
  getRegister(index: number): number;

  /** Saves the whole architectural state, icount included. */
  saveState(): StateSection;
  /** Restores a state saved by {@link Cpu.saveState}; throws `SnapshotError` when it cannot. */
  restoreState(section: StateSection): void;
}
