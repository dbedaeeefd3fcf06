import { ArbiterUnavailableError, ConfigError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import { describeArbiterContract } from './contract-suite.js';
import { MemoryArbiter, MemoryArbiterStore } from './memory-arbiter.js';

const isUnavailable = (error: unknown) => ArbiterUnavailableError.is(error);

describeArbiterContract('MemoryArbiter', async () => {
  const store = new MemoryArbiterStore();
  return {
    clients: [new MemoryArbiter({ store }), new MemoryArbiter({ store }), new MemoryArbiter({ store })],
    cleanup: async () => {},
  };
});

/** A simulator's event queue: runs what is due, in time order and then call order. */
class EventQueue {
  now = 0;
  #events: { at: number; seq: number; fn: () => void }[] = [];
  #seq = 0;
  readonly schedule = (delayMs: number, fn: () => void) => {
    this.#events.push({ at: this.now + delayMs, seq: this.#seq++, fn });
  };
  get pending(): number {
    return this.#events.length;
  }
  /** Advances time to `until`, running the events due on the way. */
  async runUntil(until: number): Promise<void> {
    for (;;) {
      this.#events.sort((x, y) => x.at - y.at || x.seq - y.seq);
      const next = this.#events[0];
      if (!next || next.at > until) break;
      this.#events.shift();
      this.now = next.at;
      next.fn();
      await new Promise((resolve) => setImmediate(resolve)); // let the answer's continuations run
    }
    this.now = until;
  }
}

describe('MemoryArbiter', () => {
  it('gives exactly one winner among many separate clients racing on the same epoch, every round', async () => {
    const store = new MemoryArbiterStore();
    const clients = Array.from({ length: 16 }, () => new MemoryArbiter({ store }));
    const wins = new Map<string, number>();
    for (let round = 0; round < 100; round++) {
      // Start order rotates, so a different client is first each round.
      const results = await Promise.all(
        clients.map((_, i) => {
          const index = (i + round) % clients.length;
          return clients[index]!.testAndSet('vm', round, `host-${index}`);
        }),
      );
      const winners = results.filter((result) => result.won);
      expect(winners).toHaveLength(1);
      const owner = winners[0]!.record.owner;
      wins.set(owner, (wins.get(owner) ?? 0) + 1);
      for (const result of results) expect(result.record).toEqual({ epoch: round + 1, owner });
    }
    expect(store.get('vm').epoch).toBe(100);
    expect(wins.size).toBe(16); // the first caller of each round wins: deterministic
  });

  it('answers in a microtask by default, in call order', async () => {
    const arbiter = new MemoryArbiter();
    const order: string[] = [];
    const first = arbiter.testAndSet('vm', 0, 'a').then((result) => order.push(`a:${result.won}`));
    const second = arbiter.testAndSet('vm', 0, 'b').then((result) => order.push(`b:${result.won}`));
    const timer = new Promise((resolve) => setTimeout(resolve, 0)).then(() => order.push('timer'));
    await Promise.all([first, second, timer]);
    expect(order).toEqual(['a:true', 'b:false', 'timer']);
  });

  it('takes its latency from an injected schedule, deterministically', async () => {
    const queue = new EventQueue();
    const store = new MemoryArbiterStore();
    const near = new MemoryArbiter({ store, latencyMs: 2, schedule: queue.schedule });
    const far = new MemoryArbiter({ store, latencyMs: 10, schedule: queue.schedule });
    const settled: string[] = [];
    // The far client asks first, but its request lands later: the near one wins.
    const farCall = far.testAndSet('vm', 0, 'far').then((result) => settled.push(`far won=${result.won}`));
    const nearCall = near
      .testAndSet('vm', 0, 'near')
      .then((result) => settled.push(`near won=${result.won}`));
    expect(queue.pending).toBe(2);
    await queue.runUntil(1);
    expect(settled).toEqual([]);
    expect(store.get('vm').epoch).toBe(0);
    await queue.runUntil(2);
    expect(settled).toEqual(['near won=true']);
    await queue.runUntil(10);
    await Promise.all([farCall, nearCall]);
    expect(settled).toEqual(['near won=true', 'far won=false']);
    expect(store.get('vm')).toEqual({ epoch: 1, owner: 'near' });
  });

  it('uses setTimeout for a latency without a schedule', async () => {
    const arbiter = new MemoryArbiter({ latencyMs: 20 });
    const started = performance.now();
    expect(await arbiter.testAndSet('vm', 0, 'a')).toEqual({ won: true, record: { epoch: 1, owner: 'a' } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
  });

  it('rejects with ArbiterUnavailableError and changes nothing while unreachable; other clients go on', async () => {
    const store = new MemoryArbiterStore();
    const primary = new MemoryArbiter({ store });
    const backup = new MemoryArbiter({ store });
    await primary.testAndSet('vm', 0, 'primary');
    primary.setUnreachable(true);
    expect(primary.unreachable).toBe(true);
    await expect(primary.testAndSet('vm', 1, 'primary')).rejects.toSatisfy(isUnavailable);
    await expect(primary.read('vm')).rejects.toSatisfy(isUnavailable);
    expect(store.get('vm')).toEqual({ epoch: 1, owner: 'primary' });
    // The backup still reaches the arbiter and takes over.
    expect(await backup.testAndSet('vm', 1, 'backup')).toEqual({
      won: true,
      record: { epoch: 2, owner: 'backup' },
    });
    primary.setUnreachable(false);
    expect(await primary.testAndSet('vm', 1, 'primary')).toEqual({
      won: false,
      record: { epoch: 2, owner: 'backup' },
    });
  });

  it('checks arguments before faults: a bad argument is a ConfigError even while unreachable', async () => {
    const arbiter = new MemoryArbiter();
    arbiter.setUnreachable(true);
    await expect(arbiter.testAndSet('a/b', 0, 'x')).rejects.toSatisfy((error) => ConfigError.is(error));
  });

  it('refuses a call in flight when the client becomes unreachable before it lands', async () => {
    const queue = new EventQueue();
    const arbiter = new MemoryArbiter({ latencyMs: 5, schedule: queue.schedule });
    const call = arbiter.testAndSet('vm', 0, 'a');
    arbiter.setUnreachable(true);
    const outcome = call.then(
      () => 'resolved',
      (error) => error,
    );
    await queue.runUntil(5);
    expect(isUnavailable(await outcome)).toBe(true);
    expect(arbiter.store.get('vm')).toEqual({ epoch: 0, owner: '' });
  });

  it('can lose replies: the move happens, the caller is told the arbiter is unavailable', async () => {
    const arbiter = new MemoryArbiter();
    arbiter.setLoseReplies(true);
    await expect(arbiter.testAndSet('vm', 0, 'a')).rejects.toSatisfy(isUnavailable);
    arbiter.setLoseReplies(false);
    expect(await arbiter.read('vm')).toEqual({ epoch: 1, owner: 'a' });
  });

  it('rejects calls after close', async () => {
    const arbiter = new MemoryArbiter();
    await arbiter.close();
    await expect(arbiter.read('vm')).rejects.toSatisfy(isUnavailable);
    await expect(arbiter.testAndSet('vm', 0, 'a')).rejects.toSatisfy(isUnavailable);
  });

  it('lists the VMs it has records for', async () => {
    const arbiter = new MemoryArbiter();
    await arbiter.testAndSet('b', 0, 'x');
    await arbiter.testAndSet('a', 0, 'x');
    await arbiter.read('c');
    expect(arbiter.store.vmIds()).toEqual(['b', 'a']);
  });

  it('refuses a negative latency', () => {
    expect(() => new MemoryArbiter({ latencyMs: -1 })).toThrow(RangeError);
  });
});
