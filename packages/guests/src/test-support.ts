// Shared by this package's tests: whether QEMU and the guest toolchain are here, and free ports.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { referenceQemuAvailable } from './qemu.js';
import { guestCompiler } from './sdk-build.js';

export const qemuMissing = referenceQemuAvailable()
  ? undefined
  : 'qemu-system-riscv32 is not installed (Debian: qemu-system-misc); skipping the QEMU runs';

export function guestToolchainVersion(): string | undefined {
  const result = spawnSync(guestCompiler, ['--version'], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.split('\n')[0] : undefined;
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolvePromise) => socket.bind(0, '127.0.0.1', resolvePromise));
  const { port } = socket.address();
  await new Promise<void>((resolvePromise) => socket.close(() => resolvePromise()));
  return port;
}
