// The worker thread's entry point for one VM role (see vm-worker.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { runVmWorker, type VmWorkerSpec } from './vm-worker.js';

const parent = parentPort;
if (parent) {
  runVmWorker(workerData as VmWorkerSpec, parent).catch((error: unknown) => {
    parent.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  });
}
