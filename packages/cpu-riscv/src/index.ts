export { RiscvCpu, type RiscvCpuOptions } from './cpu.js';
export { createFlatBus, type FlatBus, type FlatBusMmioRegion, type FlatBusOptions } from './flat-bus.js';
