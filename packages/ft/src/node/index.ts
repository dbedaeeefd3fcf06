export { PortArbiter, serveArbiter } from './arbiter-port.js';
export type { FrameSwitch } from './host-ports.js';
export { hostPorts } from './host-ports.js';
export type { SharedDiskBuffers } from './shared-disk.js';
export { SharedMemoryDisk } from './shared-disk.js';
export type { VmWorkerHandle } from './vm-host.js';
export { startVmWorker } from './vm-host.js';
export type { DiskMode, VmWorkerCommand, VmWorkerMessage, VmWorkerSpec } from './vm-worker.js';
export { runVmWorker } from './vm-worker.js';
