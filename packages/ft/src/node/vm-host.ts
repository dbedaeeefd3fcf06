import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type MessagePort, Worker } from 'node:worker_threads';
import type { VmWorkerCommand, VmWorkerMessage, VmWorkerSpec } from './vm-worker.js';

/** A VM role running in a worker thread ("a host"), seen from the parent. */
export interface VmWorkerHandle {
  readonly worker: Worker;
  /** Sets what receives the worker's messages (events, console, statistics, the end). */
  onMessage(listener: (message: VmWorkerMessage) => void): void;
  /** Resolves when the thread has exited (killed, failed or done). */
  readonly exited: Promise<number>;
  /**
   * Primary: clone a new backup over `logPort` (the other end goes to the clone's worker), or by
   * connecting to a clone listening on TCP.
   */
  clone(log: MessagePort | { host: string; port: number }): void;
  /** Ends the role in order (a goodbye to the peer). */
  stop(): void;
  /** Fault injection: the host's thread stands still for `ms`, then goes on. */
  pause(ms: number): void;
  /** The host dies: the thread is terminated at once, its ports close without a goodbye. */
  kill(): Promise<void>;
}

/**
 * How to start the worker: its built entry beside this file, or, when running from the sources
 * (tests), the TypeScript entry through tsx's loader (a development dependency).
 */
function workerEntry(): { script: URL | string; eval: boolean; execArgv: string[] } {
  const built = new URL('./vm-worker-entry.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return { script: built, eval: false, execArgv: [] };
  const source = new URL('./vm-worker-entry.ts', import.meta.url).href;
  return {
    script: `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}); });`,
    eval: true,
    execArgv: ['--conditions=@ftvm/source'],
  };
}

/** Starts one VM role in a new worker thread. */
export function startVmWorker(spec: VmWorkerSpec): VmWorkerHandle {
  const entry = workerEntry();
  const transfer = [spec.logPort, spec.networkPort, spec.arbiterPort].filter(
    (port): port is MessagePort => port !== undefined,
  );
  const worker = new Worker(entry.script, {
    eval: entry.eval,
    workerData: spec,
    transferList: transfer,
    execArgv: entry.execArgv,
  });
  let listener: (message: VmWorkerMessage) => void = () => {};
  worker.on('message', (message: VmWorkerMessage) => listener(message));
  worker.on('error', (error) => listener({ type: 'failed', message: error.message }));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return {
    worker,
    onMessage(next) {
      listener = next;
    },
    exited,
    clone(log) {
      if ('postMessage' in log)
        worker.postMessage({ type: 'clone', logPort: log } satisfies VmWorkerCommand, [log]);
      else worker.postMessage({ type: 'clone', logTcp: log } satisfies VmWorkerCommand);
    },
    stop() {
      worker.postMessage({ type: 'stop' } satisfies VmWorkerCommand);
    },
    pause(ms) {
      worker.postMessage({ type: 'pause', ms } satisfies VmWorkerCommand);
    },
    async kill() {
      await worker.terminate();
    },
  };
}
