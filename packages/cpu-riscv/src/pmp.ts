/**
 * Physical memory protection: 16 entries, as QEMU 7.2 enforces them (privileged spec 3.7).
 *
 * - Entries are checked in order; the first one that matches any byte of an access decides. If it
 *   matches only some bytes, the access fails (in every mode).
 * - M mode is held only by locked entries; with no entry matching, M mode may access everything.
 * - S and U modes need a matching entry with the permission; with no entry active at all they
 *   may access nothing.
 * - Granularity is 4 bytes (G = 0); pmpaddr holds bits 33..2 of a 34-bit physical address.
 */

export const PMP_ENTRIES = 16;
export const PMP_R = 1;
export const PMP_W = 2;
export const PMP_X = 4;
const PMP_A_SHIFT = 3;
const PMP_A_OFF = 0;
const PMP_A_TOR = 1;
const PMP_A_NA4 = 2;
const PMP_L = 0x80;
const MACHINE = 3;

export class PhysicalMemoryProtection {
  /** pmpNcfg bytes as written (QEMU 7.2 keeps all 8 bits). */
  readonly config = new Uint8Array(PMP_ENTRIES);
  /** pmpaddrN, unsigned. */
  readonly address = new Float64Array(PMP_ENTRIES);
  /** Matched range of each entry as [start, end) byte addresses; start >= end when it matches nothing. */
  private readonly rangeStart = new Float64Array(PMP_ENTRIES);
  private readonly rangeEnd = new Float64Array(PMP_ENTRIES);
  /** Number of entries whose A field is not OFF. */
  activeCount = 0;

  reset(): void {
    this.config.fill(0);
    this.address.fill(0);
    this.recompute();
  }

  private locked(index: number): boolean {
    return ((this.config[index] as number) & PMP_L) !== 0;
  }

  /** Writes pmpcfgN (N = register 0..3, four entries each). */
  writeConfigRegister(register: number, value: number): void {
    for (let byte = 0; byte < 4; byte++) {
      const index = register * 4 + byte;
      if (!this.locked(index)) this.config[index] = (value >>> (byte * 8)) & 0xff;
    }
    this.recompute();
  }

  readConfigRegister(register: number): number {
    const c = this.config;
    const base = register * 4;
    return (
      ((c[base] as number) |
        ((c[base + 1] as number) << 8) |
        ((c[base + 2] as number) << 16) |
        ((c[base + 3] as number) << 24)) >>>
      0
    );
  }

  writeAddressRegister(index: number, value: number): void {
    if (this.locked(index)) return;
    // A locked TOR entry also locks the address below it, its lower bound.
    if (index + 1 < PMP_ENTRIES) {
      const next = this.config[index + 1] as number;
      if ((next & PMP_L) !== 0 && ((next >>> PMP_A_SHIFT) & 3) === PMP_A_TOR) return;
    }
    this.address[index] = value >>> 0;
    this.recompute();
  }

  /** Restores raw registers (from a snapshot), bypassing the lock rules. */
  load(config: ArrayLike<number>, address: ArrayLike<number>): void {
    for (let i = 0; i < PMP_ENTRIES; i++) {
      this.config[i] = (config[i] as number) & 0xff;
      this.address[i] = (address[i] as number) >>> 0;
    }
    this.recompute();
  }

  private recompute(): void {
    let active = 0;
    for (let i = 0; i < PMP_ENTRIES; i++) {
      const mode = ((this.config[i] as number) >>> PMP_A_SHIFT) & 3;
      const address = this.address[i] as number;
      let start = 0;
      let end = 0;
      if (mode !== PMP_A_OFF) active++;
      if (mode === PMP_A_TOR) {
        start = i === 0 ? 0 : (this.address[i - 1] as number) * 4;
        end = address * 4;
      } else if (mode === PMP_A_NA4) {
        start = address * 4;
        end = start + 4;
      } else if (mode !== PMP_A_OFF) {
        // NAPOT: the trailing ones of pmpaddr give the size, 2^(ones + 3) bytes.
        let ones = 0;
        while (ones < 32 && Math.floor(address / 2 ** ones) % 2 === 1) ones++;
        const sizeBytes = 2 ** (ones + 3);
        start = Math.floor((address * 4) / sizeBytes) * sizeBytes;
        end = start + sizeBytes;
      }
      this.rangeStart[i] = start;
      this.rangeEnd[i] = end;
    }
    this.activeCount = active;
  }

  /**
   * The permissions (PMP_R | PMP_W | PMP_X) that `privilege` has for every byte of
   * [address, address + size), or -1 when they differ within the range (an entry covers it only
   * partly, so each access must be checked on its own).
   */
  rangePermissions(address: number, size: number, privilege: number): number {
    const last = address + size - 1;
    if (this.activeCount === 0) return privilege === MACHINE ? PMP_R | PMP_W | PMP_X : 0;
    for (let i = 0; i < PMP_ENTRIES; i++) {
      const config = this.config[i] as number;
      if (((config >>> PMP_A_SHIFT) & 3) === PMP_A_OFF) continue;
      const start = this.rangeStart[i] as number;
      const end = this.rangeEnd[i] as number;
      const startIn = address >= start && address < end;
      const lastIn = last >= start && last < end;
      if (startIn && lastIn) {
        if (privilege === MACHINE && (config & PMP_L) === 0) return PMP_R | PMP_W | PMP_X;
        return config & 7;
      }
      // Any overlap that is not whole makes the range non-uniform.
      if (start < end && address < end && last >= start) return -1;
    }
    return privilege === MACHINE ? PMP_R | PMP_W | PMP_X : 0;
  }

  /** True when `privilege` may access [address, address + size) with all of `needed`. */
  allows(address: number, size: number, privilege: number, needed: number): boolean {
    if (this.activeCount === 0) return privilege === MACHINE;
    const last = address + size - 1;
    for (let i = 0; i < PMP_ENTRIES; i++) {
      const config = this.config[i] as number;
      if (((config >>> PMP_A_SHIFT) & 3) === PMP_A_OFF) continue;
      const start = this.rangeStart[i] as number;
      const end = this.rangeEnd[i] as number;
      const startIn = address >= start && address < end;
      const lastIn = last >= start && last < end;
      if (startIn !== lastIn) return false;
      if (startIn) {
        if (privilege === MACHINE && (config & PMP_L) === 0) return true;
        return (config & needed) === needed;
      }
    }
    return privilege === MACHINE;
  }
}
