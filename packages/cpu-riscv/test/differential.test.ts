/**
 * Differential tests against the reference QEMU: the same guest image runs on QEMU (reference
 * command line) and on RiscvCpu (a test bus with RAM at 0x8000_0000, a UART capture and the test
 * finisher); their UART transcripts must be identical. Images are built at test time.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { STRAIGHT_COMPILE_THRESHOLD } from '../src/cpu.js';
import { generateProgram } from './support/random-program.js';
import { createTestMachine, loadElf } from './support/test-machine.js';
import { buildGuest, missingTools, runOnQemu, skipMessage, temporaryDirectory } from './support/toolchain.js';

const GUEST_DIRECTORY = join(import.meta.dirname, 'guest');
const LINK_SCRIPT = join(GUEST_DIRECTORY, 'link.ld');
const toolsMissing = missingTools().length > 0;
const PROGRAM_COUNT = 16;
const BODY_LENGTH = 300;
/** Iterations of the looping programs: just past the straight-line compile threshold (260). */
const LOOPS = STRAIGHT_COMPILE_THRESHOLD + 10;

function runOnRiscvCpu(image: string, compileBlocks = true): { output: string; compiledBlocks: number } {
  const machine = createTestMachine({ compileBlocks });
  loadElf(machine, readFileSync(image));
  machine.runToCompletion(20_000_000);
  return { output: machine.output(), compiledBlocks: machine.cpu.compiledBlocks };
}

describe('differential against QEMU 7.2', () => {
  const directory = toolsMissing ? undefined : temporaryDirectory();
  afterAll(() => directory?.remove());

  it.skipIf(toolsMissing)(`probes every CSR number like QEMU does${skipMessage()}`, async () => {
    const image = join(directory!.path, 'csr-probe.elf');
    buildGuest(
      [join(GUEST_DIRECTORY, 'csr-probe.S'), join(GUEST_DIRECTORY, 'csr-probe-report.c')],
      LINK_SCRIPT,
      image,
    );
    const expected = await runOnQemu(image);
    expect(expected.split('\n').length).toBeGreaterThan(100);
    expect(runOnRiscvCpu(image).output).toBe(expected);
  });

  it.skipIf(toolsMissing)(`tours the privileged architecture like QEMU does${skipMessage()}`, async () => {
    const image = join(directory!.path, 'privilege-tour.elf');
    buildGuest(
      [join(GUEST_DIRECTORY, 'privilege-tour.S'), join(GUEST_DIRECTORY, 'privilege-tour-report.c')],
      LINK_SCRIPT,
      image,
    );
    const expected = await runOnQemu(image);
    expect(expected.split('\n').length).toBeGreaterThan(40);
    expect(runOnRiscvCpu(image).output).toBe(expected);
    expect(runOnRiscvCpu(image, false).output).toBe(expected);
  });

  it.skipIf(toolsMissing)(
    `prints a signature through the riscv-arch-test platform macros like QEMU does${skipMessage()}`,
    async () => {
      // scripts/riscv-arch-test.mjs runs the suite with these macros; the suite itself is not here.
      const image = join(directory!.path, 'arch-test-model.elf');
      buildGuest(
        [join(GUEST_DIRECTORY, 'arch-test-model.S')],
        join(import.meta.dirname, '..', '..', '..', 'scripts', 'riscv-arch-test', 'link.ld'),
        image,
      );
      const expected = await runOnQemu(image);
      const words = expected.split('\n').filter((line) => line !== '');
      expect(words).toHaveLength(44);
      expect(words.every((word) => /^[0-9a-f]{8}$/.test(word))).toBe(true);
      expect(words[0]).toBe('01234567');
      expect(words[1]).toBe('89abcdef');
      expect(words[42]).toBe('ffffffff');
      expect(words[43]).toBe('deadbeef');
      expect(runOnRiscvCpu(image).output).toBe(expected);
    },
  );

  it.skipIf(toolsMissing)(
    `runs ${PROGRAM_COUNT} random programs like QEMU does${skipMessage()}`,
    async () => {
      const report = join(GUEST_DIRECTORY, 'differential-report.c');
      for (let seed = 1; seed <= PROGRAM_COUNT; seed++) {
        const source = join(directory!.path, `random-${seed}.S`);
        const image = join(directory!.path, `random-${seed}.elf`);
        // Half of the programs loop over their body, so that compiled blocks run too: more often
        // than the CPU's threshold for straight-line code, since a random body is longer than a
        // region and most of its regions do not loop themselves.
        writeFileSync(source, generateProgram(seed, BODY_LENGTH, seed % 2 === 0 ? LOOPS : 1));
        buildGuest([source, report], LINK_SCRIPT, image);
        const expected = await runOnQemu(image);
        expect(expected, `seed ${seed}: QEMU output`).toMatch(/scratch=[0-9a-f]{8}\n$/);
        const withBlocks = runOnRiscvCpu(image);
        expect(withBlocks.output, `seed ${seed} (program in ${source})`).toBe(expected);
        if (seed % 2 === 0) expect(withBlocks.compiledBlocks).toBeGreaterThan(10);
        const interpreted = runOnRiscvCpu(image, false);
        expect(interpreted.output, `seed ${seed}, interpreter only`).toBe(expected);
        expect(interpreted.compiledBlocks).toBe(0);
      }
    },
  );
});
