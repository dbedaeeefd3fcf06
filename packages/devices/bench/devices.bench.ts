/**
 * Costs of the device paths a guest hits often. Prints operations per second (vitest bench);
 * asserts nothing. Run: `npm run bench` in this package.
 */
import { bench, describe } from 'vitest';
import { Clint, GoldfishRtc, Ns16550aUart, Plic } from '../src/index.js';
import { createDeviceHarness, TestInterruptLine } from '../src/testing/index.js';

describe('uart', () => {
  const transmit = createDeviceHarness(new Ns16550aUart());
  bench('THR write (one console byte out)', () => {
    transmit.write(0, 0x41, 1);
    if (transmit.env.outputs.length > 100_000) transmit.env.outputs.length = 0;
  });

  const uart = new Ns16550aUart();
  const receive = createDeviceHarness(uart);
  receive.write(2, 0x01, 1);
  const chunk = new Uint8Array(16).fill(0x61);
  bench('receive 16 bytes: inject, apply, 16 × (LSR + RBR)', () => {
    uart.receive(chunk);
    receive.deliver();
    while (receive.read(5, 1) & 1) receive.read(0, 1);
    receive.env.scheduled.clear();
    receive.env.injectedHistory.length = 0;
    receive.env.scheduledHistory.length = 0;
  });
});

describe('clint', () => {
  const clint = new Clint({
    softwareInterrupt: new TestInterruptLine(),
    timerInterrupt: new TestInterruptLine(),
  });
  const harness = createDeviceHarness(clint);
  let ns = 0;
  bench('readMtime() (the time CSR)', () => {
    ns += 100;
    harness.env.clock.setMonotonicNs(ns);
    clint.readMtime();
  });
  bench('mtimecmp write (re-evaluate and arm)', () => {
    ns += 1000;
    harness.write(0x4000, ns / 100 + 50);
  });
});

describe('plic', () => {
  const plic = new Plic({ contexts: [new TestInterruptLine(), new TestInterruptLine()] });
  const harness = createDeviceHarness(plic);
  harness.write(4 * 10, 1);
  harness.write(0x2000, 1 << 10);
  const source = plic.sourceLine(10);
  bench('raise, claim, lower, complete', () => {
    source.set(true);
    harness.read(0x20_0004);
    source.set(false);
    harness.write(0x20_0004, 10);
  });
});

describe('rtc', () => {
  const harness = createDeviceHarness(new GoldfishRtc());
  bench('TIME_LOW + TIME_HIGH', () => {
    harness.read(0);
    harness.read(4);
  });
});
