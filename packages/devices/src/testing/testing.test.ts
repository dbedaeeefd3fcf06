import type { AccessWidth, Device, DeviceEnv, DeviceEventPayload, StateSection } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { createDeviceHarness, createTestDeviceEnv, TestGuestMemory, TestInterruptLine } from './index.js';

/**
 * A small custom device, written the way a user would, to show the harness: a countdown timer
 * that raises its interrupt when the count reaches zero and DMA-copies a word when told.
 *   +0 (write) start: arm for `value` microseconds; (read) 1 while armed
 *   +4 (write) acknowledge: lower the interrupt
 *   +8 (write) copy the word at guest address `value` to `value + 4`
 *   +12 (read) an entropy byte from the host
 */
class CountdownDevice implements Device {
  readonly kind = 'countdown';
  readonly mmioSize = 0x1000;
  #env!: DeviceEnv;
  #armed = false;
  #fired = false;

  attach(env: DeviceEnv): void {
    this.#env = env;
  }

  readMmio(offset: number, _width: AccessWidth): number {
    if (offset === 0) return this.#armed ? 1 : 0;
    if (offset === 12) return this.#env.nondet('entropy', () => 0xa5);
    return 0;
  }

  writeMmio(offset: number, _width: AccessWidth, value: number): void {
    if (offset === 0) {
      this.#armed = true;
      const dueNs = this.#env.clock.monotonicNs() + value * 1000;
      this.#env.injectAt('countdown', dueNs, { type: 'countdown-elapsed' });
    } else if (offset === 4) {
      this.#fired = false;
      this.#env.irq.set(false);
    } else if (offset === 8 && this.#env.memory.contains(value, 8)) {
      this.#env.memory.writeU32(value + 4, this.#env.memory.readU32(value));
      this.#env.output('log', Uint8Array.of(0x21));
    }
  }

  applyEvent(event: DeviceEventPayload): void {
    if (event.type !== 'countdown-elapsed' || !this.#armed) return;
    this.#armed = false;
    this.#fired = true;
    this.#env.irq.set(true);
  }

  reset(): void {
    this.#armed = false;
    this.#fired = false;
  }

  saveState(): StateSection {
    return { kind: this.kind, version: 1, state: { armed: this.#armed, fired: this.#fired } };
  }

  restoreState(): void {}
}

describe('createDeviceHarness', () => {
  it('drives a custom device: timers fire as guest time passes, the interrupt is recorded', () => {
    const harness = createDeviceHarness(new CountdownDevice(), { placement: { name: 'countdown', irq: 5 } });
    harness.write(0, 250); // 250 µs
    expect(harness.read(0)).toBe(1);
    expect(harness.env.scheduled.get('countdown')?.monotonicNs).toBe(250_000);
    expect(harness.advanceTimeNs(249_999)).toBe(0);
    expect(harness.env.irq.level).toBe(false);
    expect(harness.advanceTimeNs(1)).toBe(1);
    expect(harness.env.irq.level).toBe(true);
    expect(harness.read(0)).toBe(0);
    harness.write(4, 0);
    expect(harness.env.irq.history).toEqual([true, false]);
    expect(harness.env.irq.risingEdges).toBe(1);
    expect(harness.placement).toEqual({ name: 'countdown', base: 0, irq: 5 });
  });

  it('records non-deterministic reads with their icount', () => {
    const harness = createDeviceHarness(new CountdownDevice());
    harness.env.setIcount(1234);
    expect(harness.read(12)).toBe(0xa5);
    expect(harness.env.nondetReads).toEqual([{ key: 'entropy', value: 0xa5, icount: 1234 }]);
  });

  it('backs DMA with RAM that marks pages dirty, and records outputs', () => {
    const harness = createDeviceHarness(new CountdownDevice(), {
      memoryBase: 0x8000_0000,
      memorySizeBytes: 0x2000,
    });
    harness.env.memory.writeU32(0x8000_1000, 0xdead_beef);
    harness.env.memory.region.dirtyPages.fill(0);
    harness.write(8, 0x8000_1000);
    expect(harness.env.memory.readU32(0x8000_1004)).toBe(0xdead_beef);
    expect([...harness.env.memory.region.dirtyPages]).toEqual([0, 1]);
    harness.write(8, 0x8000_1ffc); // would run past RAM: the device checks and does nothing
    expect(harness.env.outputs).toHaveLength(1);
    expect(harness.env.outputBytes('log')).toEqual(Uint8Array.of(0x21));
    expect(harness.env.outputText('log')).toBe('!');
  });

  it('applies events injected while delivering, and stops a device that never stops injecting', () => {
    const chatty: Device = {
      kind: 'chatty',
      mmioSize: 0x1000,
      attach(env) {
        this.applyEvent = () => env.inject({ type: 'again' });
      },
      readMmio: () => 0,
      writeMmio: () => {},
      applyEvent: () => {},
      reset: () => {},
      saveState: () => ({ kind: 'chatty', version: 1, state: null }),
      restoreState: () => {},
    };
    const harness = createDeviceHarness(chatty);
    harness.env.inject({ type: 'start' });
    expect(() => harness.deliver()).toThrow(/keeps injecting/);
  });
});

describe('createTestDeviceEnv', () => {
  it('has a settable clock whose readings are counted', () => {
    const env = createTestDeviceEnv({ monotonicNs: 10, realtimeNs: 1_000 });
    expect(env.clock.monotonicNs()).toBe(10);
    env.clock.advanceNs(5);
    expect(env.clock.monotonicNs()).toBe(15);
    expect(env.clock.realtimeNs()).toBe(1_005);
    env.clock.setRealtimeNs(7);
    expect(env.clock.realtimeNs()).toBe(7);
    expect(env.clock.monotonicReads).toBe(2);
    expect(env.clock.realtimeReads).toBe(2);
    expect(() => env.clock.advanceNs(-1)).toThrow(RangeError);
  });

  it('keeps injectAt requests by key, replaced and cancelled as the contract says', () => {
    const env = createTestDeviceEnv();
    env.injectAt('a', 100, { type: 'first' });
    env.injectAt('a', 50, { type: 'second' });
    env.injectAt('b', 50, { type: 'third' });
    expect(env.scheduled.size).toBe(2);
    expect(env.nextScheduled()).toEqual({ key: 'a', monotonicNs: 50, event: { type: 'second' } });
    env.cancelInjectAt('a');
    expect(env.nextScheduled()?.key).toBe('b');
    expect(env.scheduledHistory).toHaveLength(3);
  });

  it('releases outputs at once, or holds them until the test releases them in order', async () => {
    const free = createTestDeviceEnv();
    let released = false;
    void free.output('log', Uint8Array.of(1)).then(() => {
      released = true;
    });
    await Promise.resolve();
    expect(released).toBe(true);
    expect(free.heldOutputs).toBe(0);

    const env = createTestDeviceEnv({ holdOutputs: true });
    const order: number[] = [];
    for (const n of [1, 2, 3]) void env.output('log', Uint8Array.of(n)).then(() => order.push(n));
    expect(env.outputs.map((output) => output.data[0])).toEqual([1, 2, 3]); // recorded when made
    expect(env.heldOutputs).toBe(3);
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(env.releaseOutputs(2)).toBe(2);
    await Promise.resolve();
    expect(order).toEqual([1, 2]);
    expect(env.heldOutputs).toBe(1);
    env.holdOutputs = false;
    void env.output('log', Uint8Array.of(4)).then(() => order.push(4));
    expect(env.releaseOutputs()).toBe(1);
    await Promise.resolve();
    expect(order).toEqual([1, 2, 4, 3]); // 4 was never held
    expect(env.releaseOutputs()).toBe(0);
    expect(() => env.releaseOutputs(-1)).toThrow(RangeError);
  });

  it('records power control and injected events', () => {
    const env = createTestDeviceEnv();
    env.control.powerOff(3);
    env.control.reset();
    env.inject({ type: 'x', data: 1 });
    expect(env.control.powerOffs).toEqual([3]);
    expect(env.control.resets).toBe(1);
    expect(env.takeInjected()).toEqual([{ type: 'x', data: 1 }]);
    expect(env.injected).toEqual([]);
    expect(env.injectedHistory).toHaveLength(1);
  });
});

describe('TestGuestMemory', () => {
  it('refuses ranges outside RAM with RangeError', () => {
    const memory = new TestGuestMemory(0x1000, 0x1000);
    expect(memory.contains(0x1000, 0x1000)).toBe(true);
    expect(memory.contains(0x1ffc, 8)).toBe(false);
    expect(memory.contains(0xfff, 1)).toBe(false);
    expect(() => memory.read(0x2000, 1)).toThrow(RangeError);
    expect(() => memory.writeU16(0x1fff, 1)).toThrow(RangeError);
    memory.writeU16(0x1002, 0xbeef);
    expect(memory.readU16(0x1002)).toBe(0xbeef);
    expect(memory.read(0x1002, 2)).toEqual(Uint8Array.of(0xef, 0xbe));
  });
});

describe('TestInterruptLine', () => {
  it('counts rising edges, not repeats', () => {
    const line = new TestInterruptLine();
    for (const level of [true, true, false, false, true]) line.set(level);
    expect(line.risingEdges).toBe(2);
    expect(line.level).toBe(true);
  });
});
