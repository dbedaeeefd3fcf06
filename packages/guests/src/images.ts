import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Every prebuilt guest image, in the order they were delivered. */
export const imageNames = [
  'hello',
  'bench',
  'clock',
  'paging',
  'rng',
  'disk',
  'dmarace',
  'echo',
  'kv',
  'diskbench',
  'memtouch',
] as const;

/** The name of a prebuilt guest image. */
export type ImageName = (typeof imageNames)[number];

/** Whether `name` names a prebuilt guest image. */
export function isImageName(name: string): name is ImageName {
  return (imageNames as readonly string[]).includes(name);
}

/**
 * The absolute path of this package's root (the folder with package.json, images/ and sdk/).
 * This file sits one level down both as source (src/) and when built (dist/), ESM or CommonJS.
 */
export function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(here, '..');
  if (!existsSync(join(root, 'package.json'))) {
    throw new Error(`@ftvm/guests: cannot find the package root from ${here}`);
  }
  return root;
}

/** The absolute path of a prebuilt image's committed ELF file. */
export function imagePath(name: ImageName): string {
  if (!isImageName(name)) throw new Error(`@ftvm/guests: unknown image ${JSON.stringify(name)}`);
  return join(packageRoot(), 'images', `${name}.elf`);
}

/** The absolute path of the C SDK (include/ and src/, with crt0.S and ftvm.ld). */
export function sdkPath(): string {
  return join(packageRoot(), 'sdk');
}

/**
 * Lines a guest prints with this prefix carry values that differ from run to run (time, entropy,
 * races); compare transcripts without them.
 */
export const nondeterministicLinePrefix = '[nondet] ';

/** The lines of a console transcript that must be identical on every run (and on QEMU and ftvm). */
export function deterministicLines(transcript: string): string[] {
  return transcript
    .replaceAll('\r\n', '\n')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith(nondeterministicLinePrefix));
}
