import { expect, it } from 'vitest';
import { createFlatBus, RiscvCpu } from './index.js';

it('runs the README example', () => {
  let output = '';
  const bus = createFlatBus({
    ramBase: 0x8000_0000,
    ramSizeBytes: 64 * 1024,
    mmio: [
      {
        base: 0x1000_0000,
        size: 8,
        read: () => 0,
        write: (_offset, _width, value) => {
          output += String.fromCharCode(value);
          return true;
        },
      },
    ],
  });
  const program = [0x100002b7, 0x04800313, 0x00628023, 0x06900313, 0x00628023, 0x0000006f];
  bus.load(0x8000_0000, new Uint8Array(new Uint32Array(program).buffer));
  const cpu = new RiscvCpu({ bus });
  cpu.reset(0x8000_0000, 0, 0);
  expect(cpu.run(6)).toEqual({ steps: 6, reason: 'budget' });
  expect(output).toBe('Hi');
});
