// Lag control on the real primary driver and machine, in the simulator's virtual time (no host
// clock, no timing of this machine): a backup that receives the log but cannot execute it.
import type { FtMessage, LogEntry } from '@ftvm/core';
import { Machine } from '@ftvm/machine';
import { describe, expect, it } from 'vitest';
import { FtPrimary } from '../src/primary.js';
import { CPU_SHARE_MIN } from '../src/primary-core.js';
import { EventLoop, Prng, SimHost, SimLink } from '../src/simulator/index.js';
import { arbiterAtEpochOne, loadGuest } from './support.js';

const config = { failureTimeoutMs: 300, heartbeatIntervalMs: 50, sliceTimeMsMax: 10 };
const MS = 1e6;

describe('lag control (the paper §2.4) on the primary driver', () => {
  it('a primary slowed to the lowest CPU share still speaks every heartbeat interval (found in the benchmark)', async () => {
    const loop = new EventLoop();
    const primaryHost = new SimHost(loop, 'host-a');
    const backupHost = new SimHost(loop, 'host-b');
    const link = new SimLink(loop, new Prng(1), {
      name: 'log',
      vmId: 'vm1',
      epoch: 1,
      hostA: primaryHost,
      hostB: backupHost,
      latencyNs: [50_000, 100_000],
      nsPerByte: 8,
    });
    const primary = new FtPrimary({
      vmId: 'vm1',
      host: 'host-a',
      epoch: 1,
      config,
      scheduler: primaryHost,
      arbiter: arbiterAtEpochOne(),
      deliver: () => {},
      createMachine: (hooks) => {
        const machine = new Machine({
          ...hooks,
          clock: 'icount',
          hostClock: primaryHost,
          checkpointIntervalSteps: 20_000_000,
        });
        machine.loadImage(loadGuest('bench'), 'bench');
        primaryHost.meter(machine);
        return machine;
      },
    });
    primary.attachBackup(link.a);
    // The backup acknowledges every log message it receives and never applies one: the lag only
    // grows, and the primary goes down to the lowest share. It sends heartbeats as a backup does.
    let beats = 0;
    const beat = () => {
      link.b.send({ type: 'heartbeat', counter: ++beats });
      backupHost.after(config.heartbeatIntervalMs * MS, beat);
    };
    beat();
    const heard: number[] = [];
    link.b.onMessage((message: FtMessage) => {
      heard.push(loop.now);
      if (message.type !== 'log') return;
      const last = message.entries[message.entries.length - 1] as LogEntry;
      link.b.send({ type: 'ack', receivedSeq: last.seq, appliedSeq: -1, appliedIcount: 0 });
    });
    const run = primary.run();
    await loop.runUntil(4000 * MS);
    expect(primary.statistics().cpuShare).toBe(CPU_SHARE_MIN);
    expect(primary.state).toBe('replicating');
    // From the first second on (the share is low by then), the backup never waits longer than a
    // heartbeat interval, a slice and the link's latency for news of the primary.
    const gaps = heard
      .filter((at) => at >= 1000 * MS)
      .map((at, index, list) => (index === 0 ? 0 : at - (list[index - 1] as number)));
    expect(gaps.length).toBeGreaterThan(40);
    expect(Math.max(...gaps)).toBeLessThan((config.heartbeatIntervalMs + config.sliceTimeMsMax + 2) * MS);
    primary.kill();
    await loop.runUntil(loop.now + 100 * MS);
    expect(await run).toEqual({ end: 'killed' });
  });
});
