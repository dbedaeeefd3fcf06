/**
 * The seeded simulator of fault-tolerant kv VMs (VOPR style): `runSeed(seed)` runs one whole
 * simulated run with faults and checkers; `main(argv)` is the `npm run simulate` command.
 */
export type { LinkObserver, LinkSide, SimLinkOptions } from './channel.js';
export { SimChannelEnd, SimLink } from './channel.js';
export type { KvHistoryOptions } from './checkers.js';
export { checkKvHistory, ReleaseChecker } from './checkers.js';
export { formatSeedReport, main, parseArguments, type SimulateArguments } from './cli.js';
export { SimDisk, SimSharedDisk } from './disk.js';
export type { FaultKind, PlannedFault } from './faults.js';
export { formatFault, planFaults } from './faults.js';
export type { KvOperation, KvRequest, KvResponse } from './kv-client.js';
export { KvClient, parseResponse } from './kv-client.js';
export { readKvDisk } from './kv-disk.js';
export type { SimEvent, SimHostOptions } from './loop.js';
export { EventLoop, SIM_REALTIME_BASE_NS, SimHost } from './loop.js';
export { SimNetwork } from './network.js';
export { Prng } from './prng.js';
export type { DiskMode, Sabotage, SeedResult, SeedStatistics, SimulatorOptions } from './simulator.js';
export { FOUND_BUGS, reportUnhandledRejection, runSeed, SABOTAGES } from './simulator.js';
