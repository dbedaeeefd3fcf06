import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Device } from '@ftvm/core';
import { ConfigError, DeviceError } from '@ftvm/core';
import type { UserDeviceSpec } from '@ftvm/machine';

/**
 * What a device module exports (as its default export or as `createDevice`): a function that makes
 * a device from the `key=value` options given after the module on the command line.
 */
export type DeviceFactory = (options: Record<string, string>) => Device | Promise<Device>;

/**
 * Loads a device for `--device MODULE[,name=NAME][,base=ADDR][,irq=N][,key=value...]`. MODULE is a
 * package name or a path to a module file.
 */
export async function loadUserDevice(spec: string, index: number): Promise<UserDeviceSpec> {
  const [modulePart, ...pairs] = spec.split(',');
  if (!modulePart) throw new ConfigError(`--device '${spec}': no module given`);
  const options: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new ConfigError(`--device '${spec}': '${pair}' is not key=value`);
    options[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  const isPath = modulePart.startsWith('.') || isAbsolute(modulePart);
  const specifier = isPath ? pathToFileURL(resolve(modulePart)).href : modulePart;
  let loaded: { default?: unknown; createDevice?: unknown };
  try {
    loaded = await import(specifier);
  } catch (error) {
    throw new ConfigError(`--device: cannot load module '${modulePart}': ${(error as Error).message}`, {
      cause: error,
    });
  }
  const factory = (typeof loaded.createDevice === 'function' ? loaded.createDevice : loaded.default) as
    | DeviceFactory
    | undefined;
  if (typeof factory !== 'function') {
    throw new DeviceError(
      `--device: module '${modulePart}' exports no device factory (default or createDevice)`,
    );
  }
  const { name = `device${index}`, base, irq, ...rest } = options;
  const device = await factory(rest);
  if (typeof device?.readMmio !== 'function' || typeof device.mmioSize !== 'number') {
    throw new DeviceError(`--device: module '${modulePart}' did not return a device`);
  }
  const parseNumber = (text: string | undefined, what: string): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0)
      throw new ConfigError(`--device '${spec}': bad ${what} '${text}'`);
    return value;
  };
  return { name, device, base: parseNumber(base, 'base'), irq: parseNumber(irq, 'irq') };
}
