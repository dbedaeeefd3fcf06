import { ImageError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { Machine } from '../src/machine.js';

/** `addi x0, x0, 0` repeated: any code will do, nothing runs here. */
const code = (bytes: number) => new Uint8Array(bytes).fill(0x13);

function wordsAt(machine: Machine, address: number, count: number): number[] {
  return Array.from({ length: count }, (_, index) => machine.bus.readMmio(address + index * 4, 4) ?? -1);
}

describe('booting a kernel behind a firmware (QEMU -bios FILE -kernel FILE)', () => {
  it('loads the firmware at the start of RAM and a raw kernel 4 MiB up, and starts at the firmware', () => {
    const machine = new Machine({ clock: 'icount' });
    const kernel = code(4096);
    kernel[0] = 0x6f; // a different first byte, to find it again
    machine.loadImage(kernel, 'Image', { firmware: { bytes: code(5000), name: 'sbi.bin' } });
    expect(machine.cpu.pc).toBe(0x8000_0000);
    expect(machine.cpu.getRegister(10)).toBe(0); // a0: hart id
    expect(machine.cpu.getRegister(11)).toBe(0x83e0_0000); // a1: device tree
    expect(machine.cpu.getRegister(12)).toBe(0x1028); // a2: fw_dynamic_info
    expect(machine.ram.bytes[0x40_0000]).toBe(0x6f);
    expect(machine.ram.bytes[0x3f_ffff]).toBe(0); // between the firmware and the kernel
  });

  it('holds QEMU 7.2’s reset vector and fw_dynamic_info in the ROM at 0x1000, as QEMU shows them', () => {
    const machine = new Machine({ clock: 'icount' });
    machine.loadImage(code(64), 'Image', { firmware: { bytes: code(64), name: 'sbi.bin' } });
    // Read from QEMU 7.2 (-M virt -m 64M -bios FW -kernel RAW) by a program printing 0x1000 onwards.
    expect(wordsAt(machine, 0x1000, 18)).toEqual([
      0x00000297, 0x02828613, 0xf1402573, 0x0202a583, 0x0182a283, 0x00028067, 0x80000000, 0, 0x83e00000, 0,
      0x4942534f, 2, 0x80400000, 1, 0, 0, 0, 0,
    ]);
    // Bytes and halves read as on QEMU; stores are ignored; the rest of the ROM reads 0.
    expect(machine.bus.readMmio(0x1001, 1)).toBe(0x02);
    expect(machine.bus.readMmio(0x1002, 2)).toBe(0);
    expect(machine.bus.writeMmio(0x1000, 4, 0x12345678)).toBe(true);
    expect(machine.bus.readMmio(0x1000, 4)).toBe(0x297);
    expect(machine.bus.readMmio(0xfffc, 4)).toBe(0);
  });

  it('without a firmware, fw_dynamic_info names the image’s own entry', () => {
    const machine = new Machine({ clock: 'icount' });
    machine.loadImage(code(64), 'hello.bin');
    expect(wordsAt(machine, 0x1018, 6)).toEqual([0x80000000, 0, 0x83e00000, 0, 0x4942534f, 2]);
    expect(wordsAt(machine, 0x1030, 1)).toEqual([0x80000000]);
  });

  it('puts the kernel past a firmware larger than 4 MiB at the next 4 MiB', () => {
    const machine = new Machine({ clock: 'icount' });
    machine.loadImage(code(16), 'Image', { firmware: { bytes: code(4 * 1024 * 1024 + 1), name: 'big.bin' } });
    expect(wordsAt(machine, 0x1030, 1)).toEqual([0x80800000]);
  });

  it('refuses a firmware not linked at the start of RAM, and a kernel that does not fit, with ImageError', () => {
    const machine = new Machine({ clock: 'icount', ramSizeBytes: 8 * 1024 * 1024 });
    // An ELF whose one segment is at 0x80001000 (built here: header, one program header, 4 bytes).
    const elf = new Uint8Array(0x60);
    const view = new DataView(elf.buffer);
    elf.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
    view.setUint16(16, 2, true); // ET_EXEC
    view.setUint16(18, 243, true); // RISC-V
    view.setUint32(24, 0x8000_1000, true); // entry
    view.setUint32(28, 52, true); // program headers
    view.setUint16(42, 32, true);
    view.setUint16(44, 1, true);
    view.setUint32(52, 1, true); // PT_LOAD
    view.setUint32(56, 0x54, true); // file offset
    view.setUint32(64, 0x8000_1000, true); // physical address
    view.setUint32(68, 4, true);
    view.setUint32(72, 4, true);
    expect(() => machine.loadImage(code(16), 'Image', { firmware: { bytes: elf, name: 'fw.elf' } })).toThrow(
      /fw\.elf: a firmware must be linked to start at 0x80000000/,
    );
    expect(() =>
      machine.loadImage(code(5 * 1024 * 1024), 'Image', { firmware: { bytes: code(16), name: 'fw.bin' } }),
    ).toThrow(ImageError);
  });
});
