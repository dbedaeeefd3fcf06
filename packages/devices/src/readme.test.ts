import { Ns16550aUart } from '@ftvm/devices';
import { createDeviceHarness } from '@ftvm/devices/test';
import { describe, expect, it } from 'vitest';

// The README's example, run through the package's own export map (`.` and `./test`).
describe('README example', () => {
  it('attaches a UART to the test env, writes a byte and sees it on the console', () => {
    const uart = new Ns16550aUart();
    const harness = createDeviceHarness(uart, { placement: { name: 'uart0', base: 0x1000_0000, irq: 10 } });

    harness.write(0, 0x41, 1);
    expect(harness.env.outputText('console')).toBe('A');
    expect(harness.read(5, 1).toString(16)).toBe('60');

    harness.write(2, 0x01, 1);
    uart.receive(new TextEncoder().encode('hi'));
    harness.deliver();
    expect(String.fromCharCode(harness.read(0, 1), harness.read(0, 1))).toBe('hi');
  });
});
