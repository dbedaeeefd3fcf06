import type { Device, DeviceEnv, EventEntry, LogEntry, StateSection } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { HOST_CLOCK_LAG_TARGET_NS, HOST_CLOCK_RESYNC_LAG_NS } from '../src/guest-time.js';
import type { HostClock } from '../src/host.js';
import { Machine } from '../src/machine.js';
import { MemoryLog } from '../src/replay-cursor.js';
import { program } from './helpers.js';

/** An endless loop: `addi t0, t0, 1; j .-4`, as a raw image. */
const busyLoop = new Uint8Array(new Uint32Array([0x00128293, 0xffdff06f]).buffer);

/**
 * A host clock that runs the guest at a speed the test chooses: host time is a function of the
 * guest's icount (nanoseconds per step by stretch, with stalls at given steps), so every run is
 * the same whatever the real host does.
 */
class GuestSpeedClock implements HostClock {
  machine: Machine | undefined;
  constructor(
    /** [from icount, host ns per step] in icount order. */
    private readonly speeds: readonly (readonly [number, number])[],
    /** [at icount, host ns the host stalls there]. */
    private readonly stalls: readonly (readonly [number, number])[] = [],
  ) {}

  monotonicNs(): number {
    const icount = this.machine?.cpu.icount ?? 0;
    let ns = 1_000_000;
    for (let index = 0; index < this.speeds.length; index++) {
      const [from, nsPerStep] = this.speeds[index] as readonly [number, number];
      const to = this.speeds[index + 1]?.[0] ?? Number.POSITIVE_INFINITY;
      if (icount <= from) break;
      ns += (Math.min(icount, to) - from) * nsPerStep;
    }
    for (const [at, stallNs] of this.stalls) if (icount >= at) ns += stallNs;
    return ns;
  }

  realtimeNs(): number {
    return 1_764_000_000_000_000_000 + this.monotonicNs();
  }
}

interface Track {
  icount: number;
  /** Guest time just before the entry, by the rate before it. */
  beforeNs: number;
  /** Guest time from the entry on. */
  baseNs: number;
  ratePsPerStep: number;
}

/**
 * The clock entries of a log (`clock-track`, and the `clock-sample` of older recordings), with the
 * guest time each found, so the jump each made: worked out from the log alone.
 */
function clockTracks(entries: readonly LogEntry[]): Track[] {
  const tracks: Track[] = [];
  let baseNs = 0;
  let baseIcount = 0;
  let rate = 1000;
  for (const entry of entries) {
    if (entry.kind !== 'event') continue;
    const { type, data } = (entry as EventEntry).event;
    if (type !== 'clock-track' && type !== 'clock-sample') continue;
    const [newBase, newRate] = type === 'clock-track' ? (data as [number, number]) : [data as number, rate];
    const beforeNs = baseNs + Math.floor(((entry.icount - baseIcount) * rate) / 1000);
    baseNs = Math.max(newBase, beforeNs);
    baseIcount = entry.icount;
    rate = newRate;
    tracks.push({ icount: entry.icount, beforeNs, baseNs, ratePsPerStep: rate });
  }
  return tracks;
}

interface Observation {
  icount: number;
  hostNs: number;
  guestNs: number;
}

const HOST_ZERO_NS = 1_000_000;
const SLICE_STEPS = 2_000_000;

/**
 * Records the busy loop on `clock` in slices of 2 M steps, as the driver runs a guest, and looks
 * at host and guest time at every slice's end.
 */
function runBusyGuest(clock: GuestSpeedClock, slices: number) {
  const log = new MemoryLog();
  const machine = new Machine({ clock: 'host', hostClock: clock, mode: 'record', log });
  clock.machine = machine;
  machine.loadImage(busyLoop, 'busy-loop.bin');
  const observations: Observation[] = [];
  for (let slice = 0; slice < slices; slice++) {
    machine.runSlice(SLICE_STEPS);
    observations.push({
      icount: machine.cpu.icount,
      hostNs: clock.monotonicNs() - HOST_ZERO_NS,
      guestNs: machine.guestTimeNs,
    });
  }
  log.close();
  return { machine, log, observations, tracks: clockTracks(log.entries) };
}

/** Steps before the guest's speed is first measured: guest time may jump until then. */
const WARM_UP_STEPS = 200_000;

function jumpsWhileRunning(tracks: readonly Track[]): number[] {
  return tracks
    .filter((track) => track.icount > WARM_UP_STEPS)
    .map((track) => track.baseNs - track.beforeNs)
    .filter((jump) => jump > 0);
}

describe('guest time on the host clock', () => {
  for (const nsPerStep of [1.5, 2.5, 6]) {
    it(`at ${nsPerStep} ns per step: no jump once the speed is measured, just behind host time`, () => {
      const { observations, tracks } = runBusyGuest(new GuestSpeedClock([[0, nsPerStep]]), 40);
      expect(jumpsWhileRunning(tracks)).toEqual([]);
      for (const point of observations) expect(point.guestNs).toBeLessThanOrEqual(point.hostNs);
      for (const point of observations.slice(5)) {
        expect(point.hostNs - point.guestNs).toBeLessThan(3 * HOST_CLOCK_LAG_TARGET_NS);
      }
      // A steady guest costs the log next to nothing: a few entries while the speed is learnt.
      expect(tracks.length).toBeLessThan(10);
    });
  }

  for (const [name, speeds] of [
    [
      'speeds up twofold',
      [
        [0, 3],
        [20_000_000, 1.5],
      ],
    ],
    [
      'slows down twofold',
      [
        [0, 2],
        [20_000_000, 4],
      ],
    ],
    [
      'changes speed every 100,000 steps',
      Array.from({ length: 1000 }, (_, i) => [i * 100_000, 2 + ((i * 7919) % 13) / 13]),
    ],
  ] as [string, [number, number][]][]) {
    it(`when the guest ${name}: never ahead of host time, no jump, back on track soon`, () => {
      const { observations, tracks } = runBusyGuest(new GuestSpeedClock(speeds), 40);
      expect(jumpsWhileRunning(tracks)).toEqual([]);
      for (const point of observations) expect(point.guestNs).toBeLessThanOrEqual(point.hostNs);
      for (const point of observations.slice(15)) {
        expect(point.hostNs - point.guestNs).toBeLessThan(5 * HOST_CLOCK_LAG_TARGET_NS);
      }
    });
  }

  it('a 20 ms host stall is worked off without a jump, about twice as fast as the guest runs at most', () => {
    const clock = new GuestSpeedClock([[0, 2.5]], [[20_000_000, 20_000_000]]);
    const { observations, tracks } = runBusyGuest(clock, 60);
    expect(jumpsWhileRunning(tracks)).toEqual([]);
    for (const track of tracks.filter((each) => each.icount > WARM_UP_STEPS)) {
      expect(track.ratePsPerStep).toBeLessThanOrEqual(2 * 2500 * 1.1);
    }
    for (const point of observations) expect(point.guestNs).toBeLessThanOrEqual(point.hostNs);
    const last = observations.at(-1) as Observation;
    expect(last.hostNs - last.guestNs).toBeLessThan(3 * HOST_CLOCK_LAG_TARGET_NS);
  });

  it('a stall past the resynchronisation lag is closed in one jump, and guest time stays behind', () => {
    const stallNs = 4 * HOST_CLOCK_RESYNC_LAG_NS;
    const clock = new GuestSpeedClock([[0, 2.5]], [[20_000_000, stallNs]]);
    const { observations, tracks } = runBusyGuest(clock, 30);
    const jumps = jumpsWhileRunning(tracks);
    expect(jumps).toHaveLength(1);
    expect(jumps[0]).toBeGreaterThan(stallNs - 2 * HOST_CLOCK_LAG_TARGET_NS);
    for (const point of observations) expect(point.guestNs).toBeLessThanOrEqual(point.hostNs);
  });

  it('replays a recording made before rates were logged (clock-sample entries) as it was made', () => {
    const log = new MemoryLog();
    const event = (seq: number, icount: number, type: string, data: number): LogEntry => ({
      kind: 'event',
      seq,
      icount,
      device: '@machine',
      event: { type, data },
    });
    log.append(event(0, 0, 'realtime-at-boot', 1_764_000_000_000_000_000));
    log.append(event(1, 0, 'clock-sample', 5_000_000));
    log.append(event(2, 300_000, 'clock-sample', 7_000_000));
    log.append({ kind: 'progress', seq: 3, icount: 1_000_000 });
    log.close();
    const machine = new Machine({ clock: 'host', mode: 'replay', replayLog: log.reader() });
    machine.loadImage(busyLoop, 'busy-loop.bin');
    machine.runSlice(500_000);
    // 1 ns per step from the last sample, as such recordings were made.
    expect(machine.cpu.icount).toBe(500_000);
    expect(machine.guestTimeNs).toBe(7_000_000 + 200_000);
  });
});

/**
 * Arms a timer 2 ms ahead and looks at once whether it is already pending, 20 rounds: the CLINT
 * (mtimecmp = mtime + 20,000 ticks, then mip.MTIP) and the Goldfish RTC (alarm = time + 2 ms, then
 * ALARM_STATUS), with 300,000 iterations of busy work before each. Prints 'c' when MTIP was clear
 * ('C': already set) and 'a' when the alarm was still armed ('A': fired), then powers off. QEMU
 * prints "ca" 20 times. Assembled from test/fixtures/timers.S (rv32i, linked at 0x80000000).
 */
const timersProgram = new Uint8Array(
  new Uint32Array([
    0x00000413, 0x000492b7, 0x3e028293, 0xfff28293, 0xfe029ee3, 0x0200c337, 0xff830313, 0x00032383,
    0x00432e03, 0x00005eb7, 0xe20e8e93, 0x01d38f33, 0x007f3fb3, 0x01fe0e33, 0x02004337, 0xfff00513,
    0x00a32223, 0x01e32023, 0x01c32223, 0x344025f3, 0x0805f593, 0x06300613, 0x00058463, 0x04300613,
    0x10000337, 0x00c30023, 0x00101337, 0x00032383, 0x00432e03, 0x001e8eb7, 0x480e8e93, 0x01d38f33,
    0x007f3fb3, 0x01fe0e33, 0x01c32623, 0x01e32423, 0x01832583, 0x06100613, 0x00059463, 0x04100613,
    0x10000337, 0x00c30023, 0x00101337, 0x00032a23, 0x00140413, 0x01400293, 0xf45446e3, 0x00a00613,
    0x10000337, 0x00c30023, 0x00100337, 0x000052b7, 0x55528293, 0x00532023, 0x0000006f,
  ]).buffer,
);

describe('a timer armed 2 ms ahead is still pending right after', () => {
  for (const nsPerStep of [1.5, 2.5, 6]) {
    it(`on a host that runs the guest at ${nsPerStep} ns per step`, () => {
      const clock = new GuestSpeedClock([[0, nsPerStep]]);
      let console = '';
      const machine = new Machine({
        clock: 'host',
        hostClock: clock,
        onOutput: (item) => {
          if (item.kind === 'console') console += new TextDecoder().decode(item.data);
        },
      });
      clock.machine = machine;
      machine.loadImage(timersProgram, 'timers.bin');
      while (!machine.isStopped) machine.runSlice(2_000_000);
      expect(console).toBe(`${'ca'.repeat(20)}\n`);
    });
  }
});

/**
 * Runs 200,000 steps (so the guest's speed is known), lets PLIC source 64 wake it (priority 1,
 * enabled for hart 0's M-mode context, mie.MEIE; no trap is taken), waits in wfi, then counts
 * in a0 for ever.
 */
const idleUntilWoken = [
  0x000185b7, // lui   a1, 0x18
  0x6a058593, // addi  a1, a1, 1696      a1 = 100,000
  0xfff58593, // addi  a1, a1, -1
  0xfe059ee3, // bnez  a1, .-4
  0x0c0002b7, // lui   t0, 0xc000        the PLIC
  0x00100313, // li    t1, 1
  0x1062a023, // sw    t1, 256(t0)       priority of source 64
  0x0c0023b7, // lui   t2, 0xc002
  0x0063a423, // sw    t1, 8(t2)         enable source 64 for context 0
  0x00001337, // lui   t1, 0x1
  0x80030313, // addi  t1, t1, -2048     t1 = MEIE
  0x30431073, // csrw  mie, t1
  0x10500073, // wfi
  0x00150513, // addi  a0, a0, 1
  0xffdff06f, // j     .-4
];

/** A device whose interrupt the host raises through the event door: a packet, say. */
function doorbell(): Device & { ring(): void } {
  let env: DeviceEnv;
  return {
    kind: 'doorbell',
    mmioSize: 0x1000,
    attach(deviceEnv) {
      env = deviceEnv;
    },
    ring: () => env.inject({ type: 'ring' }),
    readMmio: () => 0,
    writeMmio() {},
    applyEvent: () => env.irq.set(true),
    reset() {},
    saveState: (): StateSection => ({ kind: 'doorbell', version: 1, state: null }),
    restoreState() {},
  };
}

describe('guest time when a device wakes an idle hart', () => {
  it('resumes 300 µs behind host time, as while running (at host time itself, every round after the wake was cut to the minimum)', () => {
    /** The guest at 3 ns a step, and host time that passes while it idles. */
    class IdlingClock extends GuestSpeedClock {
      idleNs = 0;
      override monotonicNs(): number {
        return super.monotonicNs() + this.idleNs;
      }
    }
    const clock = new IdlingClock([[0, 3]]);
    const bell = doorbell();
    const log = new MemoryLog();
    const machine = new Machine({
      clock: 'host',
      hostClock: clock,
      mode: 'record',
      log,
      devices: [{ name: 'bell', device: bell }],
    });
    clock.machine = machine;
    machine.loadImage(program(idleUntilWoken), 'idle-until-woken.bin');
    let outcome = machine.runSlice(1_000_000);
    while (outcome.end !== 'waiting') outcome = machine.runSlice(1_000_000);
    clock.idleNs += 20_000_000;
    bell.ring();
    const wokenAt = machine.cpu.icount;
    machine.runSlice(10_000);
    const ran = machine.cpu.icount - wokenAt;
    expect(ran).toBe(10_000);
    // Guest time resumed 300 µs behind host time and ran on at the guest's speed since.
    const behindNs = clock.monotonicNs() - HOST_ZERO_NS - machine.guestTimeNs;
    expect(behindNs).toBeGreaterThan(HOST_CLOCK_LAG_TARGET_NS - 3 * ran);
    expect(behindNs).toBeLessThanOrEqual(HOST_CLOCK_LAG_TARGET_NS);
    const wake = clockTracks(log.entries).find((track) => track.icount >= wokenAt);
    expect(wake?.baseNs).toBe(clock.monotonicNs() - HOST_ZERO_NS - 3 * ran - HOST_CLOCK_LAG_TARGET_NS);
  });
});
