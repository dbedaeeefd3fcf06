import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectRestoredDeviceBehavesIdentically,
  line,
  operationsArbitrary,
  type Rig,
  runOperations,
} from '../test-support.js';
import { createDeviceHarness, type DeviceHarnessOptions } from '../testing/index.js';
import { CLINT_MMIO_SIZE_BYTES, Clint } from './clint.js';

const MSIP = 0x0;
const MTIMECMP_LOW = 0x4000;
const MTIMECMP_HIGH = 0x4004;
const MTIME_LOW = 0xbff8;
const MTIME_HIGH = 0xbffc;

function makeClint(options: DeviceHarnessOptions = {}) {
  const softwareInterrupt = line();
  const timerInterrupt = line();
  const clint = new Clint({ softwareInterrupt, timerInterrupt });
  const harness = createDeviceHarness(clint, { placement: { base: 0x0200_0000 }, ...options });
  return { clint, harness, env: harness.env, softwareInterrupt, timerInterrupt };
}

function makeRig(options?: DeviceHarnessOptions): Rig {
  const { harness, softwareInterrupt, timerInterrupt } = makeClint(options);
  return { harness, lines: [softwareInterrupt, timerInterrupt] };
}

/** Writes a 64-bit mtimecmp as the guest does on RV32: high half to all ones first, then low, then high. */
function writeMtimecmp(harness: ReturnType<typeof makeClint>['harness'], ticks: bigint): void {
  harness.write(MTIMECMP_HIGH, 0xffff_ffff);
  harness.write(MTIMECMP_LOW, Number(ticks & 0xffff_ffffn));
  harness.write(MTIMECMP_HIGH, Number(ticks >> 32n));
}

describe('Clint MTIP', () => {
  it('is pending at reset, mtimecmp being 0 (QEMU: mip 0x80 at reset)', () => {
    const { harness, timerInterrupt } = makeClint();
    expect(timerInterrupt.level).toBe(true);
    expect(harness.read(MTIMECMP_LOW)).toBe(0);
    expect(harness.read(MTIMECMP_HIGH)).toBe(0);
  });

  it('is re-evaluated at once on each half written (QEMU: high 0x12345678 clears it)', () => {
    const { harness, timerInterrupt } = makeClint({ monotonicNs: 1_000_000 });
    harness.write(MTIMECMP_HIGH, 0x1234_5678);
    expect(timerInterrupt.level).toBe(false);
    expect(harness.read(MTIMECMP_HIGH)).toBe(0x1234_5678);
    harness.write(MTIMECMP_LOW, 0x9abc_def0);
    expect(harness.read(MTIMECMP_LOW)).toBe(0x9abc_def0);
    harness.write(MTIMECMP_HIGH, 0);
    expect(timerInterrupt.level).toBe(false); // mtime is 10 000 ticks, still below 0x9abcdef0
    harness.write(MTIMECMP_LOW, 10_000);
    expect(timerInterrupt.level).toBe(true);
  });

  it('arms injectAt for a future deadline and raises MTIP when it is applied', () => {
    const { harness, env, timerInterrupt } = makeClint({ monotonicNs: 5_000 }); // mtime 50
    writeMtimecmp(harness, 150n);
    expect(timerInterrupt.level).toBe(false);
    const scheduled = env.scheduled.get('mtimecmp');
    expect(scheduled?.monotonicNs).toBe(15_000); // tick 150 at 100 ns a tick
    expect(scheduled?.event.type).toBe('timer-fired');
    harness.advanceTimeNs(9_999);
    expect(timerInterrupt.level).toBe(false);
    harness.advanceTimeNs(1);
    expect(timerInterrupt.level).toBe(true);
    expect(env.scheduled.size).toBe(0);
  });

  it('drops a deadline that no longer stands: a timer-fired after mtimecmp moved on does nothing', () => {
    const { harness, env, timerInterrupt } = makeClint();
    writeMtimecmp(harness, 100n);
    const first = env.scheduled.get('mtimecmp')!;
    writeMtimecmp(harness, 1_000n);
    expect(env.scheduled.get('mtimecmp')?.monotonicNs).toBe(100_000);
    env.clock.advanceNs(20_000);
    env.inject(first.event); // the old timer, already on its way
    harness.deliver();
    expect(timerInterrupt.level).toBe(false);
    harness.advanceTimeNs(80_000);
    expect(timerInterrupt.level).toBe(true);
  });

  it('an early timer-fired (clock behind the host timer) re-arms instead of raising', () => {
    const { harness, env, timerInterrupt } = makeClint();
    writeMtimecmp(harness, 100n);
    env.inject({ type: 'timer-fired' });
    harness.deliver();
    expect(timerInterrupt.level).toBe(false);
    expect(env.scheduled.get('mtimecmp')?.monotonicNs).toBe(10_000);
  });

  it('a deadline in the past raises at once and cancels the timer', () => {
    const { harness, env, timerInterrupt } = makeClint({ monotonicNs: 1_000_000 });
    writeMtimecmp(harness, 20_000n);
    expect(env.scheduled.size).toBe(1);
    writeMtimecmp(harness, 5n);
    expect(timerInterrupt.level).toBe(true);
    expect(env.scheduled.size).toBe(0);
  });

  it('a deadline beyond what a number can name waits 2^53 ns, then re-evaluates', () => {
    const { harness, env, timerInterrupt } = makeClint();
    writeMtimecmp(harness, 0xffff_ffff_ffff_ffffn);
    expect(timerInterrupt.level).toBe(false);
    expect(env.scheduled.get('mtimecmp')?.monotonicNs).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('Clint mtime', () => {
  it('counts the 10 MHz timebase from the guest clock (floor of ns / 100)', () => {
    const { clint, harness, env } = makeClint({ monotonicNs: 12_345_678_999 });
    expect(harness.read(MTIME_LOW)).toBe(123_456_789);
    expect(harness.read(MTIME_HIGH)).toBe(0);
    expect(clint.readMtime()).toBe(123_456_789);
    env.clock.advanceNs(2 ** 32 * 100);
    expect(harness.read(MTIME_HIGH)).toBe(1);
    expect(clint.readMtime64()).toBe(2n ** 32n + 123_456_789n);
  });

  it('takes guest writes as an offset, as QEMU allows (QEMU: high 0x100 written reads back 0x100)', () => {
    const { clint, harness, env } = makeClint({ monotonicNs: 1_000 });
    harness.write(MTIME_HIGH, 0x100);
    expect(harness.read(MTIME_HIGH)).toBe(0x100);
    expect(harness.read(MTIME_LOW)).toBe(10);
    harness.write(MTIME_HIGH, 0);
    harness.write(MTIME_LOW, 0);
    expect(clint.readMtime()).toBe(0);
    env.clock.advanceNs(300);
    expect(clint.readMtime()).toBe(3);
  });

  it('moving mtime re-evaluates MTIP and re-arms the timer', () => {
    const { harness, env, timerInterrupt } = makeClint();
    writeMtimecmp(harness, 1_000n);
    expect(timerInterrupt.level).toBe(false);
    harness.write(MTIME_LOW, 2_000);
    expect(timerInterrupt.level).toBe(true);
    expect(env.scheduled.size).toBe(0);
    harness.write(MTIME_LOW, 400);
    expect(timerInterrupt.level).toBe(false);
    expect(env.scheduled.get('mtimecmp')?.monotonicNs).toBe(60_000);
    harness.advanceTimeNs(60_000);
    expect(timerInterrupt.level).toBe(true);
  });

  it('wraps at 2^64 as QEMU does', () => {
    const { clint, harness, env } = makeClint();
    harness.write(MTIME_HIGH, 0xffff_ffff);
    harness.write(MTIME_LOW, 0xffff_fffe);
    env.clock.advanceNs(500);
    expect(clint.readMtime64()).toBe(3n);
  });
});

describe('Clint on go-live', () => {
  it('asks again for the armed timer, which a backup was not given', () => {
    const { clint, harness, env, timerInterrupt } = makeClint();
    writeMtimecmp(harness, 500n);
    env.scheduled.clear(); // a backup ignores injectAt
    clint.onGoLive();
    expect(env.scheduled.get('mtimecmp')?.monotonicNs).toBe(50_000);
    harness.advanceTimeNs(50_000);
    expect(timerInterrupt.level).toBe(true);
    clint.onGoLive(); // nothing armed: nothing asked
    expect(env.scheduled.size).toBe(0);
  });
});

describe('Clint msip', () => {
  it('drives MSIP from bit 0 (QEMU: 0xffffffff reads back 1, 2 reads back 0)', () => {
    const { harness, softwareInterrupt } = makeClint();
    expect(harness.read(MSIP)).toBe(0);
    harness.write(MSIP, 0xffff_ffff);
    expect(harness.read(MSIP)).toBe(1);
    expect(softwareInterrupt.level).toBe(true);
    harness.write(MSIP, 2);
    expect(harness.read(MSIP)).toBe(0);
    expect(softwareInterrupt.level).toBe(false);
  });
});

describe('Clint holes and widths', () => {
  it('reads 0 and ignores writes for other harts and holes (QEMU: +4, +0x3ffc, +0x4008, +0x7ff0 read 0)', () => {
    const { harness, env, softwareInterrupt, timerInterrupt } = makeClint();
    for (const offset of [0x4, 0x3ffc, 0x4008, 0x7ff0, 0xbff0, 0xc000, 0xfffc]) {
      harness.write(offset, 0xffff_ffff);
      expect(harness.read(offset)).toBe(0);
    }
    expect(softwareInterrupt.level).toBe(false);
    expect(timerInterrupt.level).toBe(true);
    expect(env.clock.monotonicReads).toBe(0);
  });

  it('ignores byte and halfword accesses (QEMU faults them)', () => {
    const { harness, softwareInterrupt } = makeClint();
    harness.write(MSIP, 1, 1);
    harness.write(MSIP, 1, 2);
    expect(softwareInterrupt.level).toBe(false);
    harness.write(MSIP, 1);
    expect(harness.read(MSIP, 1)).toBe(0);
    expect(harness.read(MSIP, 2)).toBe(0);
  });

  it('reads the clock only for mtime and timer work (each reading is a logged input)', () => {
    const { harness, env } = makeClint();
    harness.read(MSIP);
    harness.read(MTIMECMP_LOW);
    harness.write(MSIP, 0);
    expect(env.clock.monotonicReads).toBe(0);
    harness.read(MTIME_LOW);
    expect(env.clock.monotonicReads).toBe(1);
  });
});

describe('Clint reset', () => {
  it('returns to the power-on state: MTIP pending, MSIP clear, no timer', () => {
    const { clint, harness, env, softwareInterrupt, timerInterrupt } = makeClint();
    const powerOn = clint.saveState();
    harness.write(MSIP, 1);
    writeMtimecmp(harness, 1_000_000n);
    harness.write(MTIME_LOW, 5);
    clint.reset();
    expect(clint.saveState()).toEqual(powerOn);
    expect(softwareInterrupt.level).toBe(false);
    expect(timerInterrupt.level).toBe(true);
    expect(env.scheduled.size).toBe(0);
  });
});

describe('Clint state', () => {
  const operations = operationsArbitrary({
    registerOffsets: [MSIP, MTIMECMP_LOW, MTIMECMP_HIGH, MTIME_LOW, MTIME_HIGH, 0x4],
    mmioSize: CLINT_MMIO_SIZE_BYTES,
    eventTypes: ['timer-fired'],
  });

  it('a restored CLINT behaves identically: armed timer, mtime offset, MSIP', () => {
    expectRestoredDeviceBehavesIdentically(
      makeRig,
      [
        { kind: 'write', offset: MSIP, width: 4, value: 1 },
        { kind: 'write', offset: MTIME_LOW, width: 4, value: 7_777 },
        { kind: 'write', offset: MTIMECMP_LOW, width: 4, value: 10_000 },
        { kind: 'advance', durationNs: 1_000 },
      ],
      [
        { kind: 'read', offset: MTIME_LOW, width: 4 },
        { kind: 'advance', durationNs: 222_299 },
        { kind: 'read', offset: MTIME_LOW, width: 4 },
        { kind: 'advance', durationNs: 1 },
        { kind: 'read', offset: MSIP, width: 4 },
      ],
    );
  });

  it('a restored CLINT behaves identically after any workload (property)', () => {
    fc.assert(
      fc.property(operations, operations, (prefix, suffix) => {
        expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses sections it cannot read', () => {
    const { clint } = makeClint();
    const good = clint.saveState();
    expect(() => clint.restoreState({ ...good, kind: 'ns16550a' })).toThrow(/kind/);
    expect(() =>
      clint.restoreState({ ...good, state: { ...(good.state as object), mtimecmp: 'soon' } }),
    ).toThrow(/mtimecmp/);
    expect(() =>
      clint.restoreState({ ...good, state: { ...(good.state as object), mtimecmp: '18446744073709551616' } }),
    ).toThrow(/mtimecmp/);
  });
});

describe('Clint robustness', () => {
  it('never throws on any MMIO access, event or time step (property)', () => {
    fc.assert(
      fc.property(
        operationsArbitrary({
          registerOffsets: [MSIP, MTIMECMP_LOW, MTIMECMP_HIGH, MTIME_LOW, MTIME_HIGH],
          mmioSize: CLINT_MMIO_SIZE_BYTES,
          eventTypes: ['timer-fired'],
          maxLength: 200,
        }),
        (operations) => {
          runOperations(makeRig(), operations);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('survives a host clock that reads nonsense', () => {
    const { clint, harness, env } = makeClint();
    env.clock.setMonotonicNs(Number.NaN);
    expect(() => {
      harness.read(MTIME_LOW);
      harness.write(MTIMECMP_LOW, 5);
      harness.write(MTIME_HIGH, 1);
      clint.readMtime();
    }).not.toThrow();
  });
});
