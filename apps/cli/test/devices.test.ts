import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath } from '@ftvm/guests';
import { describe, expect, it } from 'vitest';
import { bin, built, exitWith42, scratchDirectory, writeRawProgram } from './support.js';

const directory = scratchDirectory('ftvm-devices-');

/** Loads a word from the first platform-bus device (0x0400_0000), then powers off with success. */
const readDevice = [
  0x040002b7, // lui   t0, 0x4000         the device
  0x0002a303, // lw    t1, 0(t0)
  0x001002b7, // lui   t0, 0x100          test finisher
  0x00005337, // lui   t1, 0x5
  0x55530313, // addi  t1, t1, 0x555      0x5555: pass
  0x0062a023, // sw    t1, 0(t0)
  0x0000006f, // j     .
];
const reader = writeRawProgram(join(directory, 'read-device.bin'), readDevice);
const exit42 = writeRawProgram(join(directory, 'exit42.bin'), exitWith42);

/** A device module in plain JavaScript (no imports: it must load from any folder). */
const deviceModule = `
export default function createDevice(options) {
  if (options.factory === 'throw') throw new Error('no such sensor');
  // A host half that keeps the event loop alive and has no dispose: a common mistake.
  if (options.timer === 'on') setInterval(() => {}, 1000);
  return {
    kind: 'test-plain',
    mmioSize: 0x1000,
    attach() {},
    readMmio() {
      if (options.read === 'throw') throw new Error('sensor on fire');
      return 7;
    },
    writeMmio() {},
    applyEvent() {},
    reset() {},
    saveState() { return { kind: 'test-plain', version: 1, state: null }; },
    restoreState() {},
  };
}
`;
writeFileSync(join(directory, 'plain.mjs'), deviceModule);
writeFileSync(
  join(directory, 'half.mjs'),
  'export default () => ({ kind: "half", mmioSize: 4096, readMmio() { return 0; }, writeMmio() {} });',
);

/** Runs `ftvm ARGS…` in `cwd` to the end (or for `timeoutMs`: a hang shows as status null). */
function ftvmIn(cwd: string, args: string[], timeoutMs = 60_000) {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: timeoutMs });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe.skipIf(!built)('custom devices on the command line (needs `npm run build`)', () => {
  it('exits when the guest powers off though a device left a timer running', () => {
    const result = ftvmIn(directory, ['run', '--kernel', exit42, '--device', './plain.mjs,timer=on'], 20_000);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(42);
  });

  it('names the device and the icount when the device throws during the run, status 65', () => {
    const result = ftvmIn(directory, [
      'run',
      '--kernel',
      reader,
      '--device',
      './plain.mjs,name=probe,read=throw',
    ]);
    expect(result.status).toBe(65);
    expect(result.stderr).toMatch(
      /^ftvm: device 'probe' \(--device \.\/plain\.mjs\) failed at icount \d+ in readMmio: sensor on fire\n$/,
    );
  });

  it('names the module whose factory throws (65) and the members a non-device lacks (64)', () => {
    const thrown = ftvmIn(directory, ['run', '--kernel', reader, '--device', './plain.mjs,factory=throw']);
    expect(thrown.status).toBe(65);
    expect(thrown.stderr).toBe('ftvm: --device ./plain.mjs: the device factory failed: no such sensor\n');
    const half = ftvmIn(directory, ['run', '--kernel', reader, '--device', './half.mjs']);
    expect(half.status).toBe(64);
    expect(half.stderr).toMatch(
      /did not return a device: it lacks attach, applyEvent, reset, saveState, restoreState \(/,
    );
  });

  it('resolves a device package from the current folder first', () => {
    const project = join(directory, 'project');
    const packageDirectory = join(project, 'node_modules', 'cwd-sensor');
    mkdirSync(join(packageDirectory, 'lib'), { recursive: true });
    writeFileSync(
      join(packageDirectory, 'package.json'),
      JSON.stringify({ name: 'cwd-sensor', type: 'module', exports: { '.': { import: './lib/device.js' } } }),
    );
    writeFileSync(join(packageDirectory, 'lib', 'device.js'), deviceModule);
    const result = ftvmIn(project, ['run', '--kernel', reader, '--device', 'cwd-sensor']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  const typeScript = (process.features as { typescript?: unknown }).typescript;
  it.skipIf(Boolean(typeScript))(
    'says how to build a TypeScript device module on a Node that cannot load one',
    () => {
      writeFileSync(
        join(directory, 'dev.ts'),
        'export default (options: Record<string, string>) => options;\n',
      );
      const result = ftvmIn(directory, ['run', '--kernel', reader, '--device', './dev.ts']);
      expect(result.status).toBe(64);
      expect(result.stderr).toMatch(
        /^ftvm: --device \.\/dev\.ts: ftvm loads \.js\/\.mjs device modules; compile \.\/dev\.ts first \(e\.g\. npx tsc or tsup\)/,
      );
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    },
  );

  it('replay names the devices the recording had and those given when they differ (64)', () => {
    const plain = join(directory, 'plain.ftlog');
    const withDevice = ftvmIn(directory, [
      'record',
      '--kernel',
      reader,
      '--device',
      './plain.mjs',
      '--clock',
      'icount',
      '-o',
      plain,
    ]);
    expect(withDevice.status).toBe(0);
    const missing = ftvmIn(directory, ['replay', plain]);
    expect(missing.status).toBe(64);
    expect(missing.stderr).toMatch(
      /the recording had device0 \(test-plain at 0x4000000, irq 64\); given: none\. Give the recording's devices/,
    );
    expect(ftvmIn(directory, ['replay', plain, '--device', './plain.mjs']).status).toBe(0);

    const hello = join(directory, 'hello.ftlog');
    expect(
      ftvmIn(directory, ['record', '--kernel', imagePath('hello'), '--clock', 'icount', '-o', hello]).status,
    ).toBe(0);
    // A built-in device the recording did not have was silently ignored.
    const extra = ftvmIn(directory, ['replay', hello, '--device', 'virtio-rng-device']);
    expect(extra.status).toBe(64);
    expect(extra.stderr).toMatch(/the recording had none; given: virtio-rng-device\./);
  });
});
