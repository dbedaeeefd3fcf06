import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Device, DeviceEnv } from '@ftvm/core';
import { DivergenceError, FtvmError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { scratchDirectory } from '../../test/support.js';
import {
  canLoadTypeScript,
  guardDevice,
  loadUserDevice,
  missingDeviceMembers,
  resolvePackageFrom,
  UserDeviceError,
} from './user-device.js';

/** A device whose every member does nothing, with `overrides`. */
function plainDevice(overrides: Partial<Device> = {}): Device {
  return {
    kind: 'plain',
    mmioSize: 0x1000,
    attach() {},
    readMmio: () => 0,
    writeMmio() {},
    applyEvent() {},
    reset() {},
    saveState: () => ({ kind: 'plain', version: 1, state: null }),
    restoreState() {},
    ...overrides,
  };
}

const envAt = (icount: number) => ({ icount: () => icount }) as unknown as DeviceEnv;

/** Writes `files` (path → text) under a fresh folder and returns it. */
function tree(files: Record<string, string>): string {
  const root = scratchDirectory('ftvm-device-');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('user devices', () => {
  it('resolves a package from the current folder as an import would (exports, conditions, patterns)', () => {
    const root = tree({
      'node_modules/@acme/dev/package.json': JSON.stringify({
        exports: {
          '.': { require: './main.cjs', import: './main.mjs' },
          './devices/*': { import: './lib/*.mjs' },
        },
      }),
      'node_modules/@acme/dev/main.mjs': '',
      'node_modules/@acme/dev/lib/sensor.mjs': '',
      'node_modules/plain/package.json': JSON.stringify({ main: 'entry.js' }),
      'node_modules/plain/entry.js': '',
      'project/src/.keep': '',
    });
    const from = join(root, 'project/src');
    expect(resolvePackageFrom(from, '@acme/dev')).toBe(join(root, 'node_modules/@acme/dev/main.mjs'));
    expect(resolvePackageFrom(from, '@acme/dev/devices/sensor')).toBe(
      join(root, 'node_modules/@acme/dev/lib/sensor.mjs'),
    );
    expect(resolvePackageFrom(from, 'plain')).toBe(join(root, 'node_modules/plain/entry.js'));
    expect(resolvePackageFrom(from, 'missing')).toBeUndefined();
    expect(resolvePackageFrom(from, '@acme/dev/not-exported')).toBeUndefined();
  });

  it('names the members a factory result lacks', () => {
    const { saveState: _saveState, attach: _attach, ...partial } = plainDevice();
    expect(missingDeviceMembers(partial)).toEqual(['attach', 'saveState']);
    expect(missingDeviceMembers(plainDevice())).toEqual([]);
    expect(missingDeviceMembers(undefined)).toHaveLength(9);
  });

  it('turns a throw from a device into an error naming it and the icount, status 65', () => {
    const device = guardDevice(
      plainDevice({
        readMmio() {
          throw new Error('sensor on fire');
        },
      }),
      'sensor0',
      './sensor.mjs',
    );
    device.attach(envAt(1234), { name: 'sensor0', base: 0x4000000, irq: 64 });
    let caught: unknown;
    try {
      device.readMmio(0, 4);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UserDeviceError);
    expect((caught as FtvmError).exitStatus).toBe(65);
    expect((caught as FtvmError).message).toBe(
      "device 'sensor0' (--device ./sensor.mjs) failed at icount 1234 in readMmio: sensor on fire",
    );
  });

  it("lets ftvm's own errors through unchanged (a replay's divergence raised inside nondet)", async () => {
    const divergence = new DivergenceError('nondet-mismatch', 7, 'a', 'b');
    const device = guardDevice(
      plainDevice({
        writeMmio() {
          throw divergence;
        },
        whenReadyFor: () => Promise.reject(new Error('disk gone')),
      }),
      'd',
      'm',
    );
    device.attach(envAt(7), { name: 'd', base: 0, irq: 0 });
    expect(() => device.writeMmio(0, 4, 1)).toThrow(divergence);
    await expect(device.whenReadyFor?.({ type: 'x' })).rejects.toThrow(
      "device 'd' (--device m) failed at icount 7 in whenReadyFor: disk gone",
    );
    // A member the device does not have stays absent: the machine checks for it.
    expect(guardDevice(plainDevice(), 'd', 'm').onGoLive).toBeUndefined();
  });

  it('says which factory failed, with status 65, and keeps the status of an ftvm error it throws', async () => {
    const root = tree({
      'throws.mjs': 'export default () => { throw new Error("no such sensor"); };',
      'empty.mjs': 'export default () => ({ kind: "x", mmioSize: 4096, readMmio() { return 0; } });',
    });
    const failed = await loadUserDevice('./throws.mjs', 0, root).catch((error: unknown) => error);
    expect(FtvmError.is(failed) && failed.exitStatus).toBe(65);
    expect((failed as Error).message).toBe(
      '--device ./throws.mjs: the device factory failed: no such sensor',
    );
    const empty = await loadUserDevice('./empty.mjs', 0, root).catch((error: unknown) => error);
    expect((empty as Error).message).toMatch(
      /did not return a device: it lacks attach, writeMmio, applyEvent, reset, saveState, restoreState/,
    );
  });

  it.skipIf(canLoadTypeScript())(
    'says how to build a TypeScript device module on a Node without type stripping',
    async () => {
      const root = tree({ 'dev.ts': 'export default (): number => 1;' });
      const refused = await loadUserDevice('./dev.ts', 0, root).catch((error: unknown) => error);
      expect(FtvmError.is(refused) && refused.exitStatus).toBe(64);
      expect((refused as Error).message).toContain(
        'ftvm loads .js/.mjs device modules; compile ./dev.ts first (e.g. npx tsc or tsup)',
      );
    },
  );
});
