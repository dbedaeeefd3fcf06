import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Arbiter } from '@ftvm/core';
import { serveArbiter } from './arbiter-port.js';

/** Where a host's NIC plugs in: a switch (`VirtualSwitch` of `@ftvm/net` is one). */
export interface FrameSwitch {
  attach(port: { deliver(frame: Uint8Array): void }): { send(frame: Uint8Array): void; detach(): void };
}

/**
 * The ports a host worker needs from the thread that owns the network and the arbiter: its NIC
 * on a switch port (frames as `{ frame }` both ways) and the arbiter served to it. Pass
 * `networkPort` and `arbiterPort` in the worker's spec; call `release()` once the worker exited.
 */
export function hostPorts(
  network: FrameSwitch,
  arbiter: Arbiter,
): { networkPort: MessagePort; arbiterPort: MessagePort; release(): void } {
  const frames = new MessageChannel();
  const link = network.attach({ deliver: (frame) => frames.port1.postMessage({ frame }) });
  frames.port1.on('message', (message: { frame: Uint8Array }) => link.send(message.frame));
  const arbiterChannel = new MessageChannel();
  serveArbiter(arbiter, arbiterChannel.port1);
  return {
    networkPort: frames.port2,
    arbiterPort: arbiterChannel.port2,
    release() {
      link.detach();
      frames.port1.close();
      arbiterChannel.port1.close();
    },
  };
}
