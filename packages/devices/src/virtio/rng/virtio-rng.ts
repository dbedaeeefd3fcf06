import { type AccessWidth, type DeviceEventPayload, SnapshotError, type StateSection } from '@ftvm/core';
import { VIRTIO_QUEUE_SIZE_MAX, VirtioDeviceId } from '../constants.js';
import type { VirtioDevice, VirtioDeviceContext } from '../transport/virtio-device.js';

/**
 * virtio-rng, the entropy device (virtio 1.2 §5.4): one request queue; the device fills each
 * chain's writable buffers with random bytes. The bytes come through `env.nondet('entropy', …)`,
 * so a primary logs them and a backup or a replay writes the very same bytes. No configuration
 * space, no device features.
 *
 * The host source is injected (default: `globalThis.crypto.getRandomValues`, available in Node 20
 * and browsers); the model imports no `node:` module. One request fills at most
 * {@link VIRTIO_RNG_REQUEST_BYTES_MAX} bytes (the used length says how many).
 *
 * State (section `virtio-rng`, version 1): no fields; the queue is the transport's.
 */

/** Size of the request queue (QueueNumMax), as QEMU reports it. */
export const VIRTIO_RNG_QUEUE_SIZE_MAX = VIRTIO_QUEUE_SIZE_MAX;
/** Most bytes one request gets (so one log entry stays small). */
export const VIRTIO_RNG_REQUEST_BYTES_MAX = 4096;
/** The key of the non-deterministic reads. */
export const RNG_NONDET_KEY = 'entropy';

const STATE_VERSION = 1;
/** `getRandomValues` fills at most 65 536 bytes per call. */
const GET_RANDOM_VALUES_BYTES_MAX = 65_536;

/** Where entropy comes from on the host: returns `lengthBytes` random bytes. */
export type EntropySource = (lengthBytes: number) => Uint8Array;

interface WebCrypto {
  getRandomValues(array: Uint8Array): Uint8Array;
}

/** The platform's cryptographic random source (Web Crypto, in Node 20 and browsers). */
export function webCryptoEntropySource(lengthBytes: number): Uint8Array {
  const crypto = (globalThis as { crypto?: WebCrypto }).crypto;
  if (crypto === undefined) throw new Error('globalThis.crypto is not available; pass an entropy source');
  const bytes = new Uint8Array(lengthBytes);
  for (let offset = 0; offset < lengthBytes; offset += GET_RANDOM_VALUES_BYTES_MAX) {
    crypto.getRandomValues(
      bytes.subarray(offset, Math.min(lengthBytes, offset + GET_RANDOM_VALUES_BYTES_MAX)),
    );
  }
  return bytes;
}

/** Options of {@link VirtioRng}. */
export interface VirtioRngOptions {
  /** The host's entropy (default {@link webCryptoEntropySource}). */
  readonly entropySource?: EntropySource;
}

export class VirtioRng implements VirtioDevice {
  readonly kind = 'virtio-rng';
  readonly deviceId = VirtioDeviceId.entropy;
  readonly deviceFeatures = 0n;
  readonly queueSizesMax = [VIRTIO_RNG_QUEUE_SIZE_MAX] as const;
  readonly #entropySource: EntropySource;
  #context: VirtioDeviceContext | undefined;

  constructor(options: VirtioRngOptions = {}) {
    this.#entropySource = options.entropySource ?? webCryptoEntropySource;
  }

  attach(context: VirtioDeviceContext): void {
    this.#context = context;
  }

  readConfig(_offset: number, width: AccessWidth): number {
    // No configuration space: QEMU answers all ones.
    return width === 4 ? 0xffff_ffff : (1 << (8 * width)) - 1;
  }

  writeConfig(): void {}
  activate(): void {}
  reset(): void {}

  notifyQueue(queueIndex: number): void {
    const context = this.#context;
    if (context === undefined || queueIndex !== 0) return;
    const queue = context.queues[0]!;
    let pushed = false;
    for (;;) {
      const chain = queue.popAvailable();
      if (chain === null) break;
      const lengthBytes = Math.min(chain.writableBytes, VIRTIO_RNG_REQUEST_BYTES_MAX);
      let written = 0;
      if (lengthBytes > 0) {
        const source = this.#entropySource;
        // A failing host source gives no bytes (logged as such, so a replay agrees).
        const bytes = context.env.nondet(RNG_NONDET_KEY, () => {
          try {
            const fresh = source(lengthBytes);
            return fresh instanceof Uint8Array ? fresh.slice(0, lengthBytes) : new Uint8Array(0);
          } catch {
            return new Uint8Array(0);
          }
        });
        // A log may hold anything; write only bytes, and no more than were asked for.
        if (bytes instanceof Uint8Array) written = queue.writeWritable(chain, bytes.subarray(0, lengthBytes));
      }
      queue.pushUsed(chain.headIndex, written);
      pushed = true;
    }
    if (pushed) context.usedBuffersPushed(queue);
  }

  applyEvent(_event: DeviceEventPayload): void {}

  saveState(): StateSection {
    return { kind: this.kind, version: STATE_VERSION, state: {} };
  }

  restoreState(section: StateSection): void {
    if (section?.kind !== this.kind || section.version !== STATE_VERSION) {
      throw new SnapshotError(
        `virtio-rng: cannot restore ${String(section?.kind)} v${String(section?.version)}`,
      );
    }
  }
}
