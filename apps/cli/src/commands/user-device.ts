import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Device, DeviceEnv } from '@ftvm/core';
import { ConfigError, DeviceError, ExitStatus, FtvmError } from '@ftvm/core';
import type { UserDeviceSpec } from '@ftvm/machine';

/**
 * What a device module exports (as its default export or as `createDevice`): a function that makes
 * a device from the `key=value` options given after the module on the command line.
 */
export type DeviceFactory = (options: Record<string, string>) => Device | Promise<Device>;

/**
 * A user device (or its factory) that threw: the device module is broken, not ftvm, so this is not
 * the "internal error" status (70). It is bad data (65): the module is input the user gave, as an
 * image is. It keeps the `FTVM_DEVICE` code of {@link DeviceError}.
 */
export class UserDeviceError extends FtvmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'FTVM_DEVICE', ExitStatus.dataError, options);
  }
}

/** The members every device has (`Device` in @ftvm/core), and what each must be. */
const REQUIRED_MEMBERS: readonly (readonly [keyof Device, 'string' | 'number' | 'function'])[] = [
  ['kind', 'string'],
  ['mmioSize', 'number'],
  ['attach', 'function'],
  ['readMmio', 'function'],
  ['writeMmio', 'function'],
  ['applyEvent', 'function'],
  ['reset', 'function'],
  ['saveState', 'function'],
  ['restoreState', 'function'],
];

/** The members of a device the machine calls: a throw from any of them names the device. */
const GUARDED_MEMBERS = new Set<PropertyKey>([
  'attach',
  'readMmio',
  'writeMmio',
  'applyEvent',
  'reset',
  'saveState',
  'restoreState',
  'deviceTree',
  'onGoLive',
  'whenReadyFor',
  'hostWorkPendingSince',
  'dispose',
]);
/** Called while the machine is built or taken down, not at an execution point worth naming. */
const OUTSIDE_THE_RUN = new Set<PropertyKey>(['attach', 'deviceTree', 'dispose']);

const TYPESCRIPT_EXTENSIONS = new Set(['.ts', '.mts', '.cts']);

/** Whether this Node loads TypeScript modules (type stripping: on by default from 23.6, flagged from 22.6). */
export function canLoadTypeScript(): boolean {
  const feature = (process.features as { typescript?: unknown }).typescript;
  if (feature !== undefined) return Boolean(feature);
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.some(
    (flag) => flag === '--experimental-strip-types' || flag === '--experimental-transform-types',
  );
}

function typeScriptRefused(modulePart: string, file: string): ConfigError {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  const flagged = major > 22 || (major === 22 && minor >= 6);
  return new ConfigError(
    `--device ${modulePart}: ftvm loads .js/.mjs device modules; compile ${file} first (e.g. npx tsc or tsup)` +
      (flagged
        ? ` or run Node with --experimental-strip-types (NODE_OPTIONS=--experimental-strip-types)`
        : ` — Node ${process.versions.node} cannot load TypeScript`),
  );
}

/** `@scope/name/sub/path` → the package name and the subpath its `exports` map (`./sub/path`). */
function splitPackageSpecifier(specifier: string): { name: string; subpath: string } | undefined {
  if (specifier.includes(':') || specifier.startsWith('/') || specifier.startsWith('.')) return undefined;
  const parts = specifier.split('/');
  const nameParts = specifier.startsWith('@') ? 2 : 1;
  if (parts.length < nameParts || parts.slice(0, nameParts).some((part) => part === '')) return undefined;
  const rest = parts.slice(nameParts);
  return {
    name: parts.slice(0, nameParts).join('/'),
    subpath: rest.length > 0 ? `./${rest.join('/')}` : '.',
  };
}

/** The conditions an ESM import in Node matches, in the order Node's resolver tries a package's keys. */
const IMPORT_CONDITIONS = new Set(['node', 'import', 'default']);

function conditionalTarget(target: unknown, star: string | undefined): string | undefined {
  if (typeof target === 'string') return star === undefined ? target : target.replaceAll('*', star);
  if (Array.isArray(target)) {
    for (const item of target) {
      const resolved = conditionalTarget(item, star);
      if (resolved !== undefined) return resolved;
    }
    return undefined;
  }
  if (target !== null && typeof target === 'object') {
    for (const [condition, value] of Object.entries(target)) {
      if (!IMPORT_CONDITIONS.has(condition)) continue;
      const resolved = conditionalTarget(value, star);
      if (resolved !== undefined) return resolved;
    }
  }
  return undefined;
}

/** The file a package's `exports` gives `subpath` for an import (exact keys, then `*` patterns). */
function exportsTarget(exports: unknown, subpath: string): string | undefined {
  const isSubpathMap =
    exports !== null &&
    typeof exports === 'object' &&
    !Array.isArray(exports) &&
    Object.keys(exports).some((key) => key.startsWith('.'));
  const map = (isSubpathMap ? exports : { '.': exports }) as Record<string, unknown>;
  if (Object.hasOwn(map, subpath)) return conditionalTarget(map[subpath], undefined);
  let best: { prefix: string; star: string; target: unknown } | undefined;
  for (const [key, target] of Object.entries(map)) {
    const starAt = key.indexOf('*');
    if (starAt < 0) continue;
    const prefix = key.slice(0, starAt);
    const suffix = key.slice(starAt + 1);
    if (
      subpath.startsWith(prefix) &&
      subpath.endsWith(suffix) &&
      subpath.length >= key.length &&
      (!best || prefix.length > best.prefix.length)
    ) {
      best = { prefix, star: subpath.slice(prefix.length, subpath.length - suffix.length), target };
    }
  }
  return best ? conditionalTarget(best.target, best.star) : undefined;
}

/**
 * Resolves a package specifier as an import from a module in `directory` would: the nearest
 * `node_modules/NAME` up from it, then its `exports` (or `main`). Undefined when it is not there.
 * (Node 20's `import.meta.resolve` takes no parent without a flag, and `require.resolve` matches
 * `require` conditions, not `import`.)
 */
export function resolvePackageFrom(directory: string, specifier: string): string | undefined {
  const parts = splitPackageSpecifier(specifier);
  if (!parts) return undefined;
  for (let dir = resolve(directory); ; dir = dirname(dir)) {
    const packageDirectory = join(dir, 'node_modules', parts.name);
    const manifestPath = join(packageDirectory, 'package.json');
    if (existsSync(manifestPath)) {
      let manifest: { exports?: unknown; main?: unknown };
      try {
        manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      } catch {
        return undefined;
      }
      const target =
        manifest.exports !== undefined
          ? exportsTarget(manifest.exports, parts.subpath)
          : parts.subpath === '.'
            ? typeof manifest.main === 'string'
              ? manifest.main
              : 'index.js'
            : parts.subpath;
      if (target === undefined) return undefined;
      const file = join(packageDirectory, target);
      return existsSync(file) ? file : undefined;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Wraps a user device so that a throw from any member the machine calls becomes a
 * {@link UserDeviceError} naming the device, its module and (during the run) the icount. The
 * machine dispatches MMIO and events to the object it was given, so wrapping that object is where
 * the CLI can see them. Errors ftvm throws on purpose (a replay's divergence, raised inside
 * `env.nondet`; a `SnapshotError`) pass unchanged.
 *
 * The wrapper is a plain object whose members are made once, not a Proxy: the machine reads
 * `readMmio`/`writeMmio` off it at every MMIO access, and a Proxy's trap would run each time.
 */
export function guardDevice(device: Device, name: string, modulePart: string): Device {
  let env: DeviceEnv | undefined;
  const failure = (member: PropertyKey, error: unknown): unknown => {
    if (FtvmError.is(error)) return error;
    const at = env && !OUTSIDE_THE_RUN.has(member) ? ` at icount ${env.icount()}` : '';
    const message = error instanceof Error ? error.message : String(error);
    return new UserDeviceError(
      `device '${name}' (--device ${modulePart}) failed${at} in ${String(member)}: ${message}`,
      { cause: error },
    );
  };
  const guarded: Record<PropertyKey, unknown> = {
    get kind() {
      return device.kind;
    },
    get mmioSize() {
      return device.mmioSize;
    },
  };
  for (const member of GUARDED_MEMBERS) {
    const value: unknown = (device as unknown as Record<PropertyKey, unknown>)[member];
    // A member the device does not have stays absent: the machine checks for it.
    if (typeof value !== 'function') continue;
    guarded[member] = (...args: unknown[]) => {
      if (member === 'attach') env = args[0] as DeviceEnv;
      let result: unknown;
      try {
        result = value.apply(device, args);
      } catch (error) {
        throw failure(member, error);
      }
      // whenReadyFor's promise: the machine awaits it, so its rejection is the device's too.
      if (result instanceof Promise) {
        return result.catch((error: unknown) => {
          throw failure(member, error);
        });
      }
      return result;
    };
  }
  return guarded as unknown as Device;
}

/** The members a factory's result lacks (empty when it is a device). */
export function missingDeviceMembers(value: unknown): string[] {
  if (value === null || typeof value !== 'object') return REQUIRED_MEMBERS.map(([member]) => member);
  const record = value as Record<string, unknown>;
  return REQUIRED_MEMBERS.filter(([member, type]) => typeof record[member] !== type).map(
    ([member]) => member,
  );
}

/**
 * Loads a device for `--device MODULE[,name=NAME][,base=ADDR][,irq=N][,key=value...]`. MODULE is a
 * path to a module file, or a package resolved as an import from the current folder would be (then,
 * failing that, from where ftvm is installed).
 */
export async function loadUserDevice(
  spec: string,
  index: number,
  cwd: string = process.cwd(),
): Promise<UserDeviceSpec> {
  const [modulePart, ...pairs] = spec.split(',');
  if (!modulePart) throw new ConfigError(`--device '${spec}': no module given`);
  const options: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0) throw new ConfigError(`--device '${spec}': '${pair}' is not key=value`);
    options[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  const isPath = modulePart.startsWith('.') || isAbsolute(modulePart);
  const file = isPath ? resolve(cwd, modulePart) : resolvePackageFrom(cwd, modulePart);
  if (file !== undefined && TYPESCRIPT_EXTENSIONS.has(extname(file)) && !canLoadTypeScript()) {
    throw typeScriptRefused(modulePart, isPath ? modulePart : file);
  }
  let loaded: { default?: unknown; createDevice?: unknown };
  try {
    loaded = await import(file !== undefined ? pathToFileURL(file).href : modulePart);
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
  const parseNumber = (text: string | undefined, what: string): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 0)
      throw new ConfigError(`--device '${spec}': bad ${what} '${text}'`);
    return value;
  };
  const placement = { base: parseNumber(base, 'base'), irq: parseNumber(irq, 'irq') };
  let device: Device;
  try {
    device = await factory(rest);
  } catch (error) {
    if (FtvmError.is(error)) {
      // The factory's own refusal (a bad option, say): its status, with the device named.
      throw new FtvmError(`--device ${modulePart}: ${error.message}`, error.code, error.exitStatus, {
        cause: error,
      });
    }
    throw new UserDeviceError(
      `--device ${modulePart}: the device factory failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  const missing = missingDeviceMembers(device);
  if (missing.length > 0) {
    throw new DeviceError(
      `--device: module '${modulePart}' did not return a device: it lacks ${missing.join(', ')} ` +
        `(a device has ${REQUIRED_MEMBERS.map(([member]) => member).join(', ')}; see @ftvm/core)`,
    );
  }
  return { name, device: guardDevice(device, name, modulePart), ...placement };
}
