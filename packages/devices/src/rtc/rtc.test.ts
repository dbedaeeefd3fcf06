import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectRestoredDeviceBehavesIdentically,
  type Operation,
  operationsArbitrary,
  type Rig,
  runOperations,
} from '../test-support.js';
import { createDeviceHarness, type DeviceHarnessOptions } from '../testing/index.js';
import { GOLDFISH_RTC_MMIO_SIZE_BYTES, GoldfishRtc } from './rtc.js';

const TIME_LOW = 0x00;
const TIME_HIGH = 0x04;
const ALARM_LOW = 0x08;
const ALARM_HIGH = 0x0c;
const IRQ_ENABLED = 0x10;
const CLEAR_ALARM = 0x14;
const ALARM_STATUS = 0x18;
const CLEAR_INTERRUPT = 0x1c;

/** 2026-11-25T03:00:00Z in nanoseconds; a multiple of 256 so a double holds it exactly. */
const START_NS = 1_795_575_600_000_000_000;

function makeRtc(options: DeviceHarnessOptions = {}) {
  const rtc = new GoldfishRtc();
  const harness = createDeviceHarness(rtc, {
    placement: { base: 0x10_1000, irq: 11 },
    realtimeNs: START_NS,
    ...options,
  });
  return { rtc, harness, env: harness.env };
}

function makeRig(options?: DeviceHarnessOptions): Rig {
  const { harness } = makeRtc(options);
  return { harness, lines: [harness.env.irq] };
}

function readTime(harness: ReturnType<typeof makeRtc>['harness']): bigint {
  const low = harness.read(TIME_LOW);
  const high = harness.read(TIME_HIGH);
  return (BigInt(high) << 32n) | BigInt(low);
}

/** Sets the alarm as a driver does: high half, then low half (which arms it). */
function setAlarm(harness: ReturnType<typeof makeRtc>['harness'], ns: bigint): void {
  harness.write(ALARM_HIGH, Number(ns >> 32n));
  harness.write(ALARM_LOW, Number(ns & 0xffff_ffffn));
}

describe('GoldfishRtc time', () => {
  it('reads the host real time in nanoseconds since the epoch', () => {
    const { harness } = makeRtc();
    expect(readTime(harness)).toBe(BigInt(START_NS));
  });

  it('latches the high half when the low half is read', () => {
    const { harness, env } = makeRtc({ realtimeNs: 0x1_ffff_ff00 });
    expect(harness.read(TIME_LOW)).toBe(0xffff_ff00);
    env.clock.advanceNs(0x200); // the count carries into the high half
    expect(harness.read(TIME_HIGH)).toBe(1); // still the latched half
    expect(harness.read(TIME_LOW)).toBe(0x100);
    expect(harness.read(TIME_HIGH)).toBe(2);
  });

  it('TIME_HIGH alone reads the last latched half and does not read the clock', () => {
    const { harness, env } = makeRtc();
    expect(harness.read(TIME_HIGH)).toBe(0);
    expect(env.clock.realtimeReads).toBe(0);
  });

  it('lets the guest set the time; it then runs on from there (QEMU: TIME_HIGH 1 reads back 1)', () => {
    const { harness, env } = makeRtc();
    harness.write(TIME_HIGH, 1);
    harness.write(TIME_LOW, 0x10);
    expect(readTime(harness)).toBe(0x1_0000_0010n);
    // Steps of 256 ns: near 1.8e18 a double (what GuestClock.realtimeNs returns) has no finer grain.
    env.clock.advanceNs(1_024);
    expect(readTime(harness)).toBe(0x1_0000_0010n + 1_024n);
  });

  it('answers 0 beyond its registers and for narrow accesses (QEMU faults those)', () => {
    const { harness, env } = makeRtc();
    for (const offset of [CLEAR_ALARM, CLEAR_INTERRUPT, 0x20, 0x24, 0xffc])
      expect(harness.read(offset)).toBe(0);
    expect(harness.read(TIME_LOW, 1)).toBe(0);
    expect(harness.read(TIME_LOW, 2)).toBe(0);
    harness.write(IRQ_ENABLED, 1, 2);
    expect(harness.read(IRQ_ENABLED)).toBe(0);
    expect(env.clock.realtimeReads).toBe(0);
  });
});

describe('GoldfishRtc alarm', () => {
  it('fires when its time comes, raising the interrupt only while IRQ_ENABLED', () => {
    const { harness, env } = makeRtc();
    harness.write(IRQ_ENABLED, 0xffff_ffff);
    expect(harness.read(IRQ_ENABLED)).toBe(1); // QEMU: bit 0 only
    setAlarm(harness, BigInt(START_NS) + 500_000_000n);
    expect(harness.read(ALARM_STATUS)).toBe(1);
    expect(env.scheduled.get('alarm')?.monotonicNs).toBe(500_000_000);
    harness.advanceTimeNs(499_999_999);
    expect(env.irq.level).toBe(false);
    harness.advanceTimeNs(1);
    expect(env.irq.level).toBe(true);
    expect(harness.read(ALARM_STATUS)).toBe(0);
    harness.write(IRQ_ENABLED, 0);
    expect(env.irq.level).toBe(false);
    harness.write(IRQ_ENABLED, 1);
    expect(env.irq.level).toBe(true); // still pending
    harness.write(CLEAR_INTERRUPT, 1);
    expect(env.irq.level).toBe(false);
  });

  it('fires at once for a time not in the future (QEMU: status 0, PLIC pending bit 11)', () => {
    const { harness, env } = makeRtc();
    harness.write(IRQ_ENABLED, 1);
    setAlarm(harness, BigInt(START_NS) - 1n);
    expect(harness.read(ALARM_STATUS)).toBe(0);
    expect(env.irq.level).toBe(true);
    expect(env.scheduled.size).toBe(0);
  });

  it('is armed only by the low half (a high-half write alone does nothing)', () => {
    const { harness, env } = makeRtc();
    harness.write(ALARM_HIGH, 0);
    expect(harness.read(ALARM_STATUS)).toBe(0);
    expect(env.irq.level).toBe(false);
    expect(harness.read(ALARM_HIGH)).toBe(0);
    harness.write(ALARM_HIGH, 0x1234);
    expect(harness.read(ALARM_HIGH)).toBe(0x1234);
  });

  it('CLEAR_ALARM disarms it (QEMU: status 1 → 0)', () => {
    const { harness, env } = makeRtc();
    harness.write(IRQ_ENABLED, 1);
    setAlarm(harness, BigInt(START_NS) + 1_000n);
    harness.write(CLEAR_ALARM, 1);
    expect(harness.read(ALARM_STATUS)).toBe(0);
    expect(env.scheduled.size).toBe(0);
    harness.advanceTimeNs(10_000);
    expect(env.irq.level).toBe(false);
  });

  it('an alarm that fires early (host real time behind) re-arms for the rest', () => {
    const { harness, env } = makeRtc();
    harness.write(IRQ_ENABLED, 1);
    setAlarm(harness, BigInt(START_NS) + 1_024n);
    env.clock.setMonotonicNs(1_024);
    env.clock.setRealtimeNs(START_NS + 512); // the wall clock was set back meanwhile
    env.inject(env.scheduled.get('alarm')!.event);
    env.scheduled.delete('alarm');
    harness.deliver();
    expect(env.irq.level).toBe(false);
    expect(harness.read(ALARM_STATUS)).toBe(1);
    expect(env.scheduled.get('alarm')?.monotonicNs).toBe(1_024 + 512);
  });

  it('a stale alarm-fired (alarm cleared since) does nothing', () => {
    const { harness, env } = makeRtc();
    harness.write(IRQ_ENABLED, 1);
    setAlarm(harness, BigInt(START_NS) + 1_000n);
    const stale = env.scheduled.get('alarm')!.event;
    harness.write(CLEAR_ALARM, 1);
    env.clock.advanceNs(5_000);
    env.inject(stale);
    harness.deliver();
    expect(env.irq.level).toBe(false);
  });
});

describe('GoldfishRtc on go-live', () => {
  it('asks again for the armed alarm, which a backup was not given', () => {
    const { rtc, harness, env } = makeRtc();
    harness.write(IRQ_ENABLED, 1);
    setAlarm(harness, BigInt(START_NS) + 2_048n);
    env.scheduled.clear(); // a backup ignores injectAt
    rtc.onGoLive();
    expect(env.scheduled.get('alarm')?.monotonicNs).toBe(2_048);
    harness.advanceTimeNs(2_048);
    expect(env.irq.level).toBe(true);
  });
});

describe('GoldfishRtc reset', () => {
  it('returns to the power-on state', () => {
    const { rtc, harness, env } = makeRtc();
    const powerOn = rtc.saveState();
    harness.write(IRQ_ENABLED, 1);
    harness.write(TIME_HIGH, 5);
    setAlarm(harness, 0xffff_0000_0000_0000n);
    readTime(harness);
    rtc.reset();
    expect(rtc.saveState()).toEqual(powerOn);
    expect(env.scheduled.size).toBe(0);
    expect(env.irq.level).toBe(false);
  });
});

describe('GoldfishRtc state', () => {
  const operations = operationsArbitrary({
    registerOffsets: [
      TIME_LOW,
      TIME_HIGH,
      ALARM_LOW,
      ALARM_HIGH,
      IRQ_ENABLED,
      CLEAR_ALARM,
      ALARM_STATUS,
      CLEAR_INTERRUPT,
    ],
    mmioSize: GOLDFISH_RTC_MMIO_SIZE_BYTES,
    eventTypes: ['alarm-fired'],
  });

  it('a restored RTC behaves identically: armed alarm, latched half, set time', () => {
    const alarmLow = Number((BigInt(START_NS) + 2_000_000n) & 0xffff_ffffn);
    const prefix: Operation[] = [
      { kind: 'write', offset: IRQ_ENABLED, width: 4, value: 1 },
      { kind: 'write', offset: ALARM_HIGH, width: 4, value: Number(BigInt(START_NS) >> 32n) },
      { kind: 'write', offset: ALARM_LOW, width: 4, value: alarmLow },
      { kind: 'read', offset: TIME_LOW, width: 4 },
      { kind: 'advance', durationNs: 1_000_000 },
    ];
    const suffix: Operation[] = [
      { kind: 'read', offset: TIME_HIGH, width: 4 },
      { kind: 'read', offset: ALARM_STATUS, width: 4 },
      { kind: 'advance', durationNs: 999_999 },
      { kind: 'read', offset: ALARM_STATUS, width: 4 },
      { kind: 'advance', durationNs: 1 },
      { kind: 'read', offset: ALARM_STATUS, width: 4 },
      { kind: 'write', offset: CLEAR_INTERRUPT, width: 4, value: 1 },
    ];
    expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
  });

  it('a restored RTC behaves identically after any workload (property)', () => {
    fc.assert(
      fc.property(operations, operations, (prefix, suffix) => {
        expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses sections it cannot read', () => {
    const { rtc } = makeRtc();
    const good = rtc.saveState();
    const state = good.state as { [key: string]: unknown };
    expect(() => rtc.restoreState({ ...good, kind: 'rtc' })).toThrow(/kind/);
    expect(() => rtc.restoreState({ ...good, state: { ...state, alarmNs: -1 } as never })).toThrow(/alarmNs/);
    expect(() => rtc.restoreState({ ...good, state: { ...state, alarmDeadlineNs: 'x' } as never })).toThrow(
      /alarmDeadlineNs/,
    );
  });
});

describe('GoldfishRtc robustness', () => {
  it('never throws on any MMIO access, event or time step (property)', () => {
    fc.assert(
      fc.property(
        operationsArbitrary({
          registerOffsets: [
            TIME_LOW,
            TIME_HIGH,
            ALARM_LOW,
            ALARM_HIGH,
            IRQ_ENABLED,
            CLEAR_ALARM,
            CLEAR_INTERRUPT,
          ],
          mmioSize: GOLDFISH_RTC_MMIO_SIZE_BYTES,
          eventTypes: ['alarm-fired'],
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
    const { harness, env } = makeRtc();
    env.clock.setRealtimeNs(Number.NaN);
    expect(() => {
      readTime(harness);
      harness.write(TIME_LOW, 5);
      setAlarm(harness, 100n);
    }).not.toThrow();
  });
});
