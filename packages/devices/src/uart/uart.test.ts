import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expectRestoredDeviceBehavesIdentically,
  operationsArbitrary,
  type Rig,
  runOperations,
} from '../test-support.js';
import { createDeviceHarness, type DeviceHarnessOptions } from '../testing/index.js';
import { Ns16550aUart, UART_FIFO_BYTES, UART_MMIO_SIZE_BYTES } from './uart.js';

// Register offsets.
const RBR = 0;
const THR = 0;
const DLL = 0;
const IER = 1;
const DLM = 1;
const IIR = 2;
const FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

/** A UART on a harness, placed as on `virt`. Values in comments marked "QEMU" were read on QEMU 7.2. */
function makeUart(options: DeviceHarnessOptions = {}) {
  const uart = new Ns16550aUart();
  const harness = createDeviceHarness(uart, { placement: { base: 0x1000_0000, irq: 10 }, ...options });
  const read = (offset: number) => harness.read(offset, 1);
  const write = (offset: number, value: number) => harness.write(offset, value, 1);
  return { uart, harness, env: harness.env, read, write };
}

function makeRig(options?: DeviceHarnessOptions): Rig {
  const { harness } = makeUart(options);
  return { harness, lines: [harness.env.irq] };
}

/** Transmits `bytes` in loopback, so they arrive at the receiver as from the line. */
function loopBytes(write: (offset: number, value: number) => void, bytes: string): void {
  for (const character of bytes) write(THR, character.charCodeAt(0));
}

describe('Ns16550aUart registers after reset', () => {
  it('reads QEMU 7.2 reset values', () => {
    const { read, write } = makeUart();
    expect(read(IER)).toBe(0x00);
    expect(read(IIR)).toBe(0x01);
    expect(read(LCR)).toBe(0x00);
    expect(read(MCR)).toBe(0x08);
    expect(read(LSR)).toBe(0x60);
    expect(read(MSR)).toBe(0xb0);
    expect(read(SCR)).toBe(0x00);
    write(LCR, 0x80);
    expect(read(DLL)).toBe(0x0c); // QEMU: 9600 baud divisor
    expect(read(DLM)).toBe(0x00);
  });

  it('keeps only the implemented bits (QEMU: IER 0xff→0x0f, MCR 0xff→0x1f, LCR 0xff→0xff)', () => {
    const { read, write } = makeUart();
    write(IER, 0xff);
    expect(read(IER)).toBe(0x0f);
    write(IER, 0);
    write(MCR, 0xff);
    expect(read(MCR)).toBe(0x1f);
    write(MCR, 0x08);
    write(LCR, 0x7f);
    expect(read(LCR)).toBe(0x7f);
    write(SCR, 0x5a);
    expect(read(SCR)).toBe(0x5a);
    write(LSR, 0x00); // read-only
    expect(read(LSR)).toBe(0x60);
  });

  it('reads 0 beyond offset 7 and ignores writes there (QEMU faults)', () => {
    const { harness, env, read } = makeUart();
    for (const offset of [8, 0x10, 0xff, UART_MMIO_SIZE_BYTES]) {
      harness.write(offset, 0x41, 1);
      expect(harness.read(offset, 4)).toBe(0);
    }
    expect(env.outputs).toEqual([]);
    expect(read(LSR)).toBe(0x60);
  });

  it('answers wide accesses with the byte register (QEMU: 32-bit read of MCR is 0x08)', () => {
    const { harness, env } = makeUart();
    expect(harness.read(MCR, 4)).toBe(0x08);
    expect(harness.read(IIR, 2)).toBe(0x01);
    harness.write(THR, 0x1234_5641, 4);
    expect(env.outputText()).toBe('A');
    harness.write(SCR, 0x1234_5678, 4);
    expect(harness.read(SCR, 1)).toBe(0x78);
  });
});

describe('Ns16550aUart transmit', () => {
  it('sends every THR byte to the console at once, THRE and TEMT staying set', () => {
    const { env, read, write } = makeUart();
    for (const character of 'Hi!\n') {
      write(THR, character.charCodeAt(0));
      expect(read(LSR) & 0x60).toBe(0x60);
    }
    expect(env.outputs.map((output) => [...output.data])).toEqual([[0x48], [0x69], [0x21], [0x0a]]);
    expect(env.outputs.every((output) => output.kind === 'console')).toBe(true);
    expect(env.outputText()).toBe('Hi!\n');
  });

  it('sends in FIFO mode too', () => {
    const { env, write, read } = makeUart();
    write(FCR, 0x07);
    for (const character of 'fifo') write(THR, character.charCodeAt(0));
    expect(env.outputText()).toBe('fifo');
    expect(read(LSR)).toBe(0x60);
  });
});

describe('Ns16550aUart divisor latch (DLAB)', () => {
  it('maps offsets 0 and 1 to the divisor while LCR.DLAB is set', () => {
    const { env, read, write } = makeUart();
    write(LCR, 0x83);
    write(DLL, 0x34);
    write(DLM, 0x12);
    expect(read(DLL)).toBe(0x34);
    expect(read(DLM)).toBe(0x12);
    expect(env.outputs).toEqual([]); // not a transmit
    write(LCR, 0x03);
    expect(read(IER)).toBe(0x00); // IER untouched
    write(LCR, 0x83);
    expect(read(DLL)).toBe(0x34);
  });
});

describe('Ns16550aUart THR-empty interrupt', () => {
  it('raises when enabled with THR empty; an IIR read acknowledges it (QEMU: IIR 0xc2 then 0xc1)', () => {
    const { env, read, write } = makeUart();
    write(FCR, 0xc7);
    expect(read(IIR)).toBe(0xc1);
    write(IER, 0x0f);
    expect(env.irq.level).toBe(true);
    expect(read(IIR)).toBe(0xc2);
    expect(env.irq.level).toBe(false);
    expect(read(IIR)).toBe(0xc1);
  });

  it('raises again when IER.THRI is turned off and on (QEMU), and after each transmit', () => {
    const { env, read, write } = makeUart();
    write(IER, 0x02);
    expect(read(IIR)).toBe(0x02);
    expect(read(IIR)).toBe(0x01);
    write(IER, 0x00);
    write(IER, 0x02);
    expect(read(IIR)).toBe(0x02);
    expect(env.irq.level).toBe(false);
    write(THR, 0x21);
    expect(env.irq.level).toBe(true);
    expect(read(IIR)).toBe(0x02);
  });

  it('drops the line while THR is briefly full, so the PLIC sees a new edge per byte (as QEMU)', () => {
    const { env, write } = makeUart();
    write(IER, 0x02);
    const edgesBefore = env.irq.risingEdges;
    write(THR, 0x41);
    write(THR, 0x42);
    expect(env.irq.risingEdges - edgesBefore).toBe(2);
    expect(env.irq.level).toBe(true);
  });

  it('a transmitter FIFO reset re-arms it', () => {
    const { read, write } = makeUart();
    write(FCR, 0x01);
    write(IER, 0x02);
    expect(read(IIR)).toBe(0xc2);
    write(FCR, 0x05);
    expect(read(IIR)).toBe(0xc2);
  });
});

describe('Ns16550aUart loopback', () => {
  it('wires the modem outputs to the inputs (QEMU: MCR 0x1f→MSR 0xf0, 0x10→0x00, 0x13→0x30)', () => {
    const { read, write } = makeUart();
    write(MCR, 0x1f);
    expect(read(MSR)).toBe(0xf0);
    write(MCR, 0x10);
    expect(read(MSR)).toBe(0x00);
    write(MCR, 0x13);
    expect(read(MSR)).toBe(0x30);
    write(MCR, 0x00);
    expect(read(MSR)).toBe(0xb0);
  });

  it('receives what it transmits, and sends nothing out (QEMU: LSR 0x61, RBR "Z", LSR 0x60)', () => {
    const { env, read, write } = makeUart();
    write(MCR, 0x1f);
    write(THR, 0x5a);
    expect(env.outputs).toEqual([]);
    expect(read(LSR)).toBe(0x61);
    expect(read(RBR)).toBe(0x5a);
    expect(read(LSR)).toBe(0x60);
  });

  it('overruns without FIFO: the newer byte replaces the older (QEMU: LSR 0x63, 0x61, RBR "B")', () => {
    const { read, write } = makeUart();
    write(MCR, 0x10);
    loopBytes(write, 'AB');
    expect(read(LSR)).toBe(0x63);
    expect(read(LSR)).toBe(0x61); // reading LSR clears OE
    expect(read(RBR)).toBe(0x42);
    expect(read(LSR)).toBe(0x60);
  });

  it('overruns with FIFO: the first 16 bytes stay, later ones are lost (QEMU: 18 sent, 16 read)', () => {
    const { read, write } = makeUart();
    write(MCR, 0x10);
    write(FCR, 0x01);
    expect(read(IIR)).toBe(0xc1);
    loopBytes(write, 'abcdefghijklmnopqr');
    expect(read(LSR)).toBe(0x63);
    expect(read(LSR)).toBe(0x61);
    let received = '';
    while (read(LSR) & 0x01) received += String.fromCharCode(read(RBR));
    expect(received).toBe('abcdefghijklmnop');
    expect(read(RBR)).toBe(0); // an empty FIFO reads 0
  });
});

describe('Ns16550aUart FIFOs and trigger levels', () => {
  it('reports the received-data interrupt only at the trigger level (QEMU: 7 bytes 0xc1, 8 bytes 0xc4)', () => {
    const { env, read, write } = makeUart();
    write(MCR, 0x10);
    write(IER, 0x01);
    write(FCR, 0x81); // FIFO on, trigger level 8
    loopBytes(write, '0123456');
    expect(read(IIR)).toBe(0xc1);
    expect(env.irq.level).toBe(false);
    loopBytes(write, '7');
    expect(read(IIR)).toBe(0xc4);
    expect(env.irq.level).toBe(true);
  });

  it.each([
    [0x01, 1],
    [0x41, 4],
    [0x81, 8],
    [0xc1, 14],
  ])('FCR %i sets trigger level %i', (fcr, level) => {
    const { read, write } = makeUart();
    write(MCR, 0x10);
    write(IER, 0x01);
    write(FCR, fcr);
    loopBytes(write, 'x'.repeat(level - 1));
    expect(read(IIR) & 0x0f).toBe(0x01);
    loopBytes(write, 'x');
    expect(read(IIR) & 0x0f).toBe(0x04);
  });

  it('a receiver FIFO reset empties it (QEMU: LSR 0x60, IIR 0xc1)', () => {
    const { read, write } = makeUart();
    write(MCR, 0x10);
    write(IER, 0x01);
    write(FCR, 0x01);
    loopBytes(write, 'abc');
    write(FCR, 0x03);
    expect(read(LSR)).toBe(0x60);
    expect(read(IIR)).toBe(0xc1);
  });

  it('switching the FIFO off flushes it and clears the IIR FIFO bits (QEMU: 0x01)', () => {
    const { read, write } = makeUart();
    write(FCR, 0x41);
    expect(read(IIR)).toBe(0xc1);
    write(FCR, 0x00);
    expect(read(IIR)).toBe(0x01);
  });
});

describe('Ns16550aUart interrupt priorities', () => {
  it('line status beats received data (QEMU: 17 bytes with IER 0x05 → 0xc6, after LSR read 0xc4)', () => {
    const { read, write } = makeUart();
    write(MCR, 0x10);
    write(IER, 0x05);
    write(FCR, 0x01);
    loopBytes(write, 'x'.repeat(17));
    expect(read(IIR)).toBe(0xc6);
    expect(read(LSR)).toBe(0x63);
    expect(read(IIR)).toBe(0xc4);
  });

  it('received data beats THR empty, which shows once the data is read', () => {
    const { read, write } = makeUart();
    write(MCR, 0x10);
    write(THR, 0x41);
    write(IER, 0x03);
    expect(read(IIR)).toBe(0x04);
    expect(read(RBR)).toBe(0x41);
    expect(read(IIR)).toBe(0x02);
    expect(read(IIR)).toBe(0x01);
  });

  it('the character timeout beats received data and is masked by IER.RDI', () => {
    const { harness, env, read, write } = makeUart();
    write(MCR, 0x10);
    write(FCR, 0xc1); // trigger level 14
    loopBytes(write, 'ab');
    expect(read(IIR)).toBe(0xc1);
    // 4 character times at the reset speed (9600 baud, 10 bits): 4 × 1 041 660 ns.
    harness.advanceTimeNs(4 * 1_041_660 - 1);
    write(IER, 0x01);
    expect(read(IIR)).toBe(0xc1);
    write(IER, 0x00);
    harness.advanceTimeNs(1);
    expect(env.irq.level).toBe(false);
    write(IER, 0x01);
    expect(read(IIR)).toBe(0xcc);
    expect(env.irq.level).toBe(true);
    expect(read(RBR)).toBe(0x61); // reading clears the timeout and restarts it
    expect(read(IIR)).toBe(0xc1);
    harness.advanceTimeNs(4 * 1_041_660);
    expect(read(IIR)).toBe(0xcc);
    expect(read(RBR)).toBe(0x62);
    harness.advanceTimeNs(10 * 1_041_660);
    expect(read(IIR)).toBe(0xc1); // nothing left: no timeout
  });

  it('the timeout follows the line speed and format (divisor 1: 399 193 baud; 8N1 → 25 050 ns a character)', () => {
    const { harness, read, write } = makeUart();
    write(LCR, 0x83);
    write(DLL, 0x01);
    write(DLM, 0x00);
    write(LCR, 0x03);
    write(MCR, 0x10);
    write(IER, 0x01);
    write(FCR, 0xc1);
    loopBytes(write, 'a');
    harness.advanceTimeNs(4 * 25_050 - 1);
    expect(read(IIR)).toBe(0xc1);
    harness.advanceTimeNs(1);
    expect(read(IIR)).toBe(0xcc);
  });

  it('a stale timeout event (overtaken by a read) does nothing', () => {
    const { harness, env, read, write } = makeUart();
    write(MCR, 0x10);
    write(IER, 0x01);
    write(FCR, 0xc1);
    loopBytes(write, 'ab');
    const stale = env.scheduled.get('rx-timeout')!;
    read(RBR); // re-arms with a new generation
    env.inject(stale.event);
    harness.deliver();
    expect(read(IIR)).toBe(0xc1);
  });
});

describe('Ns16550aUart receive from the host', () => {
  it('hands bytes to the guest through inject, and the guest reads them (FIFO mode)', () => {
    const { uart, harness, env, read, write } = makeUart();
    write(FCR, 0x01);
    write(IER, 0x01);
    uart.receive(new TextEncoder().encode('hello'));
    expect(env.injected).toEqual([{ type: 'rx-bytes', data: new TextEncoder().encode('hello') }]);
    expect(read(LSR) & 0x01).toBe(0); // nothing until the event is applied at a step boundary
    harness.deliver();
    expect(env.irq.level).toBe(true);
    let text = '';
    while (read(LSR) & 0x01) text += String.fromCharCode(read(RBR));
    expect(text).toBe('hello');
    expect(env.irq.level).toBe(false);
  });

  it('never loses input: the host half holds what does not fit and sends more as the guest drains', () => {
    const { uart, harness, env, read, write } = makeUart();
    write(FCR, 0x01);
    const sent = Uint8Array.from({ length: 1000 }, (_, index) => (index * 7) & 0xff);
    uart.receive(sent);
    expect(uart.queuedReceiveBytes).toBe(1000 - UART_FIFO_BYTES);
    const received: number[] = [];
    for (let guard = 0; guard < 10_000 && received.length < sent.length; guard++) {
      harness.deliver();
      while (read(LSR) & 0x01) received.push(read(RBR));
    }
    expect(received).toEqual([...sent]);
    expect(uart.queuedReceiveBytes).toBe(0);
    // Every injected chunk fitted: never an overrun.
    for (const event of env.injectedHistory)
      expect((event.data as Uint8Array).length).toBeLessThanOrEqual(16);
  });

  it('never loses input without FIFO (one byte at a time), and never overruns', () => {
    const { uart, harness, read } = makeUart();
    uart.receive(new TextEncoder().encode('slow line'));
    let text = '';
    for (let guard = 0; guard < 100 && text.length < 9; guard++) {
      harness.deliver();
      const status = read(LSR);
      expect(status & 0x02).toBe(0);
      if (status & 0x01) text += String.fromCharCode(read(RBR));
    }
    expect(text).toBe('slow line');
  });

  it('keeps bytes that meet a smaller receiver than expected (FIFO switched off meanwhile)', () => {
    const { uart, harness, read, write } = makeUart();
    write(FCR, 0x01);
    uart.receive(new TextEncoder().encode('0123456789'));
    write(FCR, 0x00); // before the injected event is applied
    harness.deliver();
    let text = '';
    for (let guard = 0; guard < 100 && read(LSR) & 0x01; guard++) {
      expect(read(LSR) & 0x02).toBe(0);
      text += String.fromCharCode(read(RBR));
      harness.deliver();
    }
    expect(text).toBe('0123456789');
  });

  it('holds host input while in loopback and delivers it after', () => {
    const { uart, harness, read, write } = makeUart();
    write(MCR, 0x10);
    uart.receive(Uint8Array.of(0x31, 0x32));
    harness.deliver();
    expect(read(LSR) & 0x01).toBe(0);
    expect(uart.queuedReceiveBytes).toBe(2);
    write(MCR, 0x00); // the line is back: the host half injects
    harness.deliver();
    expect(read(RBR)).toBe(0x31);
    harness.deliver();
    expect(read(RBR)).toBe(0x32);
  });

  it('never loses or repeats host input, whatever the guest and the host interleave (property)', () => {
    type Step =
      | { kind: 'receive'; bytes: Uint8Array }
      | { kind: 'deliver' }
      | { kind: 'read-one' }
      | { kind: 'fifo'; on: boolean }
      | { kind: 'loopback'; on: boolean }
      | { kind: 'lost-injections' };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('receive' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
      fc.constant({ kind: 'deliver' as const }),
      fc.constant({ kind: 'read-one' as const }),
      fc.record({ kind: fc.constant('fifo' as const), on: fc.boolean() }),
      fc.record({ kind: fc.constant('loopback' as const), on: fc.boolean() }),
      // A backup taking over: the injections it made were ignored, then it goes live.
      fc.constant({ kind: 'lost-injections' as const }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const { uart, harness, env, read, write } = makeUart();
        const sent: number[] = [];
        const received: number[] = [];
        let fifoOn = false;
        const readOne = () => {
          if (read(LSR) & 0x01) received.push(read(RBR));
        };
        for (const action of steps) {
          switch (action.kind) {
            case 'receive':
              sent.push(...action.bytes);
              uart.receive(action.bytes);
              break;
            case 'deliver':
              harness.deliver();
              break;
            case 'read-one':
              readOne();
              break;
            case 'fifo':
              // Switching the FIFO flushes it (the guest's own doing): drain first, as a driver does.
              if (action.on !== fifoOn) {
                while (read(LSR) & 0x01) received.push(read(RBR));
                write(FCR, action.on ? 0x01 : 0x00);
                fifoOn = action.on;
              }
              break;
            case 'loopback':
              write(MCR, action.on ? 0x18 : 0x08);
              break;
            case 'lost-injections':
              env.injected.length = 0;
              uart.onGoLive();
              break;
          }
          expect(read(LSR) & 0x02).toBe(0); // host input never overruns
        }
        write(MCR, 0x08);
        for (let guard = 0; guard < 10 * sent.length + 10 && received.length < sent.length; guard++) {
          harness.deliver();
          readOne();
        }
        expect(received).toEqual(sent);
      }),
      { numRuns: 300 },
    );
  });

  it('ignores malformed events', () => {
    const { uart, harness, env, read } = makeUart();
    const before = uart.saveState();
    for (const event of [
      { type: 'rx-bytes' },
      { type: 'rx-bytes', data: 'text' },
      { type: 'rx-bytes', data: [1, 2, 3] },
      { type: 'rx-timeout', data: 'soon' },
      { type: 'rx-timeout', data: 12345 },
      { type: 'something-else', data: new Uint8Array(4) },
    ]) {
      env.inject(event);
    }
    harness.deliver();
    expect(uart.saveState()).toEqual(before);
    expect(read(LSR)).toBe(0x60);
  });
});

describe('Ns16550aUart on go-live', () => {
  it('asks again for the armed timeout and feeds held host input', () => {
    const { uart, harness, env, read, write } = makeUart();
    write(MCR, 0x10);
    write(FCR, 0xc1);
    write(IER, 0x01);
    loopBytes(write, 'a');
    write(MCR, 0x00);
    const deadline = env.scheduled.get('rx-timeout')!.monotonicNs;
    env.scheduled.clear(); // a backup ignores injectAt...
    uart.receive(Uint8Array.of(0x62));
    env.injected.length = 0; // ...and inject
    uart.onGoLive();
    expect(env.scheduled.get('rx-timeout')?.monotonicNs).toBe(deadline);
    expect(env.injected).toEqual([{ type: 'rx-bytes', data: Uint8Array.of(0x62) }]);
    harness.advanceTimeNs(deadline);
    expect(read(IIR)).toBe(0xcc);
  });
});

describe('Ns16550aUart reset', () => {
  it('returns to the power-on state', () => {
    const { uart, read, write } = makeUart();
    const powerOn = uart.saveState();
    write(LCR, 0x83);
    write(DLL, 0x01);
    write(LCR, 0x03);
    write(FCR, 0xc7);
    write(IER, 0x0f);
    write(SCR, 0x99);
    write(MCR, 0x1f);
    loopBytes(write, 'abc');
    uart.reset();
    // The timeout generation counts on through resets, so a timeout armed before cannot pass for one armed after.
    const withoutGeneration = (section: ReturnType<typeof uart.saveState>) => ({
      ...(section.state as object),
      timeoutGeneration: undefined,
    });
    expect(withoutGeneration(uart.saveState())).toEqual(withoutGeneration(powerOn));
    expect(read(IIR)).toBe(0x01);
  });
});

describe('Ns16550aUart state', () => {
  const operations = operationsArbitrary({
    registerOffsets: [0, 1, 2, 3, 4, 5, 6, 7],
    mmioSize: UART_MMIO_SIZE_BYTES,
    eventTypes: ['rx-bytes', 'rx-timeout'],
    eventData: fc.uint8Array({ maxLength: 40 }),
  });

  it('a restored UART behaves identically (mid-FIFO, timeout armed, bytes in the backlog)', () => {
    const prefix = [
      { kind: 'write', offset: FCR, width: 1, value: 0x81 },
      { kind: 'write', offset: IER, width: 1, value: 0x0f },
      { kind: 'event', event: { type: 'rx-bytes', data: new Uint8Array(40).fill(0x61) } },
      { kind: 'read', offset: RBR, width: 1 },
      { kind: 'write', offset: SCR, width: 1, value: 0x42 },
    ] as const;
    const suffix = [
      ...Array.from({ length: 40 }, () => ({ kind: 'read', offset: RBR, width: 1 }) as const),
      { kind: 'advance', durationNs: 10_000_000 },
      { kind: 'read', offset: IIR, width: 1 },
      { kind: 'read', offset: LSR, width: 1 },
    ] as const;
    expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
  });

  it('a restored UART behaves identically after any workload (property)', () => {
    fc.assert(
      fc.property(operations, operations, (prefix, suffix) => {
        expectRestoredDeviceBehavesIdentically(makeRig, prefix, suffix);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses sections it cannot read', () => {
    const { uart } = makeUart();
    const good = uart.saveState();
    expect(() => uart.restoreState({ ...good, kind: 'clint' })).toThrow(/kind/);
    expect(() => uart.restoreState({ ...good, version: 99 })).toThrow(/version/);
    expect(() => uart.restoreState({ ...good, state: null })).toThrow(/not an object/);
    expect(() =>
      uart.restoreState({ ...good, state: { ...(good.state as object), lineStatus: 256 } }),
    ).toThrow(/lineStatus/);
    expect(() =>
      uart.restoreState({ ...good, state: { ...(good.state as object), receiveFifo: new Uint8Array(17) } }),
    ).toThrow(/receiveFifo/);
    expect(uart.saveState()).toEqual(good); // a refused section changes nothing
  });
});

describe('Ns16550aUart robustness', () => {
  it('never throws on any MMIO access, event or time step (property)', () => {
    fc.assert(
      fc.property(
        operationsArbitrary({
          registerOffsets: [0, 1, 2, 3, 4, 5, 6, 7],
          mmioSize: UART_MMIO_SIZE_BYTES,
          eventTypes: ['rx-bytes', 'rx-timeout'],
          eventData: fc.uint8Array({ maxLength: 100 }),
          maxLength: 200,
        }),
        (operations) => {
          const rig = makeRig();
          runOperations(rig, operations);
        },
      ),
      { numRuns: 300 },
    );
  });
});
