// The simulator's pieces on their own: the PRNG, the event loop and hosts, the simulated logging
// channel, the checkers (fed fabricated histories), the kv disk reader and the command line.
import type { FtMessage } from '@ftvm/core';
import type { MachineOutput } from '@ftvm/machine';
import { describe, expect, it } from 'vitest';
import {
  checkKvHistory,
  EventLoop,
  type KvRequest,
  type LinkSide,
  Prng,
  parseArguments,
  parseResponse,
  ReleaseChecker,
  readKvDisk,
  SimHost,
  SimLink,
} from '../src/simulator/index.js';

describe('Prng', () => {
  it('gives the same stream for the same seed and another for the next seed', () => {
    const draw = (seed: number) => {
      const rng = new Prng(seed);
      return Array.from({ length: 8 }, () => rng.nextUint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(2 ** 40 + 1)).not.toEqual(draw(1));
  });

  it('stays in range', () => {
    const rng = new Prng(7);
    for (let index = 0; index < 1000; index++) {
      const value = rng.int(3, 9);
      expect(value).toBeGreaterThanOrEqual(3);
      expect(value).toBeLessThanOrEqual(9);
      const float = rng.float();
      expect(float).toBeGreaterThanOrEqual(0);
      expect(float).toBeLessThan(1);
    }
    expect(() => rng.int(2, 1)).toThrow(RangeError);
  });
});

describe('EventLoop and SimHost', () => {
  it('runs events in time order, then in the order they were scheduled', async () => {
    const loop = new EventLoop();
    const seen: string[] = [];
    loop.at(20, () => seen.push('b'));
    loop.at(10, () => seen.push('a'));
    loop.at(20, () => seen.push('c'));
    await loop.runUntil(100);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(loop.now).toBe(100);
  });

  it('lets promise continuations run between events', async () => {
    const loop = new EventLoop();
    const host = new SimHost(loop, 'h');
    const seen: string[] = [];
    void (async () => {
      await host.sleep(5).done;
      seen.push('woke');
      await host.yieldToHost();
      seen.push('yielded');
    })();
    loop.at(5, () => seen.push('event at 5'));
    await loop.runUntil(10);
    expect(seen).toEqual(['woke', 'event at 5', 'yielded']);
  });

  it('a cancelled sleep ends at once; a paused host gets its events when it resumes, in order', async () => {
    const loop = new EventLoop();
    const host = new SimHost(loop, 'h');
    const sleep = host.sleep(1e9);
    let woke = false;
    void sleep.done.then(() => {
      woke = true;
    });
    sleep.cancel();
    await loop.runUntil(1);
    expect(woke).toBe(true);

    const seen: number[] = [];
    host.pause();
    host.after(10, () => seen.push(1));
    host.after(20, () => seen.push(2));
    loop.after(30, () => host.resume());
    await loop.runUntil(25);
    expect(seen).toEqual([]);
    await loop.runUntil(100);
    expect(seen).toEqual([1, 2]);
  });

  it('every clock reading moves time forward', () => {
    const loop = new EventLoop();
    const host = new SimHost(loop, 'h');
    const first = host.monotonicNs();
    expect(host.monotonicNs()).toBeGreaterThan(first);
  });
});

describe('SimLink', () => {
  function link(loop: EventLoop, latency: [number, number] = [1000, 5000]) {
    const a = new SimHost(loop, 'a');
    const b = new SimHost(loop, 'b');
    const l = new SimLink(loop, new Prng(1), {
      name: 'a→b',
      vmId: 'vm1',
      epoch: 1,
      hostA: a,
      hostB: b,
      latencyNs: latency,
      nsPerByte: 1,
    });
    const received: Record<LinkSide, number[]> = { a: [], b: [] };
    const closes: Record<LinkSide, (Error | undefined)[]> = { a: [], b: [] };
    for (const side of ['a', 'b'] as const) {
      l.end(side).onMessage((message) => {
        if (message.type === 'heartbeat') received[side].push(message.counter);
      });
      l.end(side).onClose((error) => closes[side].push(error));
    }
    return { l, received, closes };
  }
  const heartbeat = (counter: number): FtMessage => ({ type: 'heartbeat', counter });

  it('delivers in order whatever the latency draws', async () => {
    const loop = new EventLoop();
    const { l, received } = link(loop, [100, 100_000]);
    for (let counter = 0; counter < 50; counter++) l.a.send(heartbeat(counter));
    await loop.runUntil(1e9);
    expect(received.b).toEqual(Array.from({ length: 50 }, (_, index) => index));
  });

  it('a partition delays everything, loses nothing and keeps the order', async () => {
    const loop = new EventLoop();
    const { l, received } = link(loop);
    l.a.send(heartbeat(1));
    l.partition();
    l.a.send(heartbeat(2));
    await loop.runUntil(1e6);
    l.a.send(heartbeat(3));
    expect(received.b).toEqual([]);
    l.heal();
    l.a.send(heartbeat(4));
    await loop.runUntil(1e9);
    expect(received.b).toEqual([1, 2, 3, 4]);
  });

  it('a cut loses what is in flight and closes both ends with an error', async () => {
    const loop = new EventLoop();
    const { l, received, closes } = link(loop);
    l.a.send(heartbeat(1));
    l.cut('test');
    l.a.send(heartbeat(2));
    await loop.runUntil(1e9);
    expect(received.b).toEqual([]);
    expect(closes.a).toHaveLength(1);
    expect(closes.b).toHaveLength(1);
    expect(closes.a[0]).toBeInstanceOf(Error);
    expect(l.a.closed && l.b.closed).toBe(true);
  });

  it('a corrupt frame closes the receiver with an error, and the sender after it', async () => {
    const loop = new EventLoop();
    const { l, received, closes } = link(loop);
    l.a.send(heartbeat(1));
    l.corruptNext('a');
    l.a.send(heartbeat(2));
    l.a.send(heartbeat(3));
    await loop.runUntil(1e9);
    expect(received.b).toEqual([1]);
    expect(String(closes.b[0])).toMatch(/corrupt/);
    expect(String(closes.a[0])).toMatch(/corrupt/);
  });

  it('close() sends a goodbye first; close({ flush: false }) resets; both report once', async () => {
    const loop = new EventLoop();
    const { l, closes } = link(loop);
    const goodbyes: FtMessage[] = [];
    l.b.onMessage((message) => goodbyes.push(message));
    l.a.close();
    l.a.close();
    await loop.runUntil(1e9);
    expect(goodbyes.map((message) => message.type)).toEqual(['goodbye']);
    expect(closes.a).toEqual([undefined]);
    expect(closes.b).toEqual([undefined]);

    const second = link(loop);
    second.l.b.close({ flush: false });
    await loop.runUntil(2e9);
    expect(second.closes.b).toEqual([undefined]);
    expect(second.closes.a[0]).toBeInstanceOf(Error);
  });

  it('counts the bytes still being transmitted', async () => {
    const loop = new EventLoop();
    const { l } = link(loop);
    l.a.send({ type: 'transfer-pages', pageNumbers: [0], pages: new Uint8Array(4096) });
    expect(l.a.bufferedBytes).toBeGreaterThan(4096);
    await loop.runUntil(1e9);
    expect(l.a.bufferedBytes).toBe(0);
  });
});

const ms = 1e6;

function request(fields: Partial<KvRequest> & Pick<KvRequest, 'operation' | 'key' | 'invokedNs'>): KvRequest {
  return { client: 'c', id: Math.floor(fields.invokedNs), attempts: 1, ...fields };
}

describe('checkKvHistory (fabricated histories)', () => {
  const put = (value: string, invoked: number, responded?: number) =>
    request({
      operation: 'PUT',
      key: 'k',
      value,
      invokedNs: invoked * ms,
      ...(responded === undefined
        ? {}
        : { respondedNs: responded * ms, response: { status: 'OK' as const, value: undefined } }),
    });
  const get = (value: string | undefined, invoked: number, responded: number) =>
    request({
      operation: 'GET',
      key: 'k',
      invokedNs: invoked * ms,
      respondedNs: responded * ms,
      response: value === undefined ? { status: 'NOTFOUND' } : { status: 'OK', value },
    });
  const incr = (n: number, invoked: number, responded: number, key = 'c') =>
    request({
      operation: 'INCR',
      key,
      invokedNs: invoked * ms,
      respondedNs: responded * ms,
      response: { status: 'OK', value: String(n) },
    });

  it('accepts a linearizable register history, concurrent writes included', () => {
    const history = [put('a', 1, 2), put('b', 3, 6), get('a', 4, 5), get('b', 7, 8), get(undefined, 0, 0.5)];
    expect(checkKvHistory(history, { complete: true })).toEqual([]);
  });

  it('finds an acknowledged write that a later read does not see', () => {
    const failures = checkKvHistory([put('a', 1, 2), put('b', 3, 4), get('a', 5, 6)], { complete: true });
    expect(failures.join('\n')).toMatch(/lost write/);
    expect(checkKvHistory([put('a', 1, 2), get(undefined, 3, 4)], { complete: true }).join('\n')).toMatch(
      /lost write/,
    );
  });

  it('finds a read of a value nobody wrote, and a read going back in time', () => {
    expect(checkKvHistory([get('zzz', 1, 2)], { complete: true }).join('\n')).toMatch(/nobody wrote/);
    const history = [put('a', 1, 2), put('b', 3, 10), get('b', 4, 5), get('a', 6, 7)];
    expect(checkKvHistory(history, { complete: true }).join('\n')).toMatch(/stale read/);
  });

  it('counts INCRs exactly once', () => {
    expect(checkKvHistory([incr(1, 1, 2), incr(2, 3, 4), incr(3, 3.5, 5)], { complete: true })).toEqual([]);
    expect(checkKvHistory([incr(1, 1, 2), incr(1, 3, 4)], { complete: true }).join('\n')).toMatch(
      /exactly once/,
    );
    expect(checkKvHistory([incr(1, 1, 2), incr(3, 3, 4)], { complete: true }).join('\n')).toMatch(
      /exactly once/,
    );
    const read = request({
      operation: 'GET',
      key: 'c',
      invokedNs: 5 * ms,
      respondedNs: 6 * ms,
      response: { status: 'OK', value: '1' },
      audit: true,
    });
    expect(checkKvHistory([incr(1, 1, 2), incr(2, 3, 4), read], { complete: true }).join('\n')).toMatch(
      /lost INCR/,
    );
  });

  it('reports ERR answers', () => {
    const failed = request({
      operation: 'PUT',
      key: 'k',
      value: 'v',
      invokedNs: ms,
      respondedNs: 2 * ms,
      response: { status: 'ERR', reason: 'disk write failed' },
    });
    expect(checkKvHistory([failed], { complete: true }).join('\n')).toMatch(/unexpected answer/);
  });

  it('parses kv answers', () => {
    expect(parseResponse('12 OK')).toEqual({ id: 12, response: { status: 'OK', value: undefined } });
    expect(parseResponse('3 OK v')).toEqual({ id: 3, response: { status: 'OK', value: 'v' } });
    expect(parseResponse('4 NOTFOUND')).toEqual({ id: 4, response: { status: 'NOTFOUND' } });
    expect(parseResponse('5 ERR bad key')).toEqual({ id: 5, response: { status: 'ERR', reason: 'bad key' } });
    expect(parseResponse('nonsense')).toBeUndefined();
  });
});

describe('ReleaseChecker', () => {
  const output = (coveringSeq: number): MachineOutput => ({
    device: 'virtio6',
    kind: 'frame',
    data: new Uint8Array(1),
    icount: 1,
    coveringSeq,
    release: () => {},
  });

  it('lets an output go once its covering position was acknowledged', () => {
    const checker = new ReleaseChecker(() => 0);
    checker.backupAttached('a');
    checker.ackDelivered('a', 10);
    checker.outputReleased('a', 1, output(10));
    expect(checker.failures).toEqual([]);
    checker.outputReleased('a', 1, output(11));
    expect(checker.failures.join('\n')).toMatch(/output rule/);
  });

  it('lets a primary that won its epoch alone release at once, until a backup is attached again', () => {
    const checker = new ReleaseChecker(() => 0);
    checker.epochWon('a', 2);
    checker.outputReleased('a', 2, output(50));
    expect(checker.failures).toEqual([]);
    checker.backupAttached('a');
    checker.outputReleased('a', 2, output(51));
    expect(checker.failures.join('\n')).toMatch(/output rule/);
  });

  it('finds two hosts releasing in one epoch', () => {
    const checker = new ReleaseChecker(() => 0);
    checker.epochWon('a', 3);
    checker.epochWon('b', 3);
    checker.outputReleased('a', 3, output(1));
    checker.outputReleased('b', 3, output(1));
    expect(checker.failures.join('\n')).toMatch(/split brain/);
  });
});

describe('readKvDisk', () => {
  it('finds no store on a blank disk', () => {
    expect(readKvDisk(new Uint8Array(1600 * 512))).toMatch(/no kv store/);
  });
});

describe('parseArguments', () => {
  it('reads --seeds and --from, with defaults', () => {
    expect(parseArguments(['--seeds', '5', '--from=100'])).toMatchObject({ seeds: 5, from: 100 });
    expect(parseArguments([])).toMatchObject({ seeds: 1, from: 1 });
    expect(parseArguments(['--seeds', 'x'])).toMatch(/whole number/);
    expect(parseArguments(['--bogus'])).toMatch(/unknown argument/);
    expect(
      parseArguments([
        '--disk-mode',
        'backup-reads',
        '--faults-max=3',
        '--no-fencing',
        '--sabotage',
        'lost-write',
      ]),
    ).toMatchObject({ diskMode: 'backup-reads', faultsMax: 3, fencing: false, sabotage: 'lost-write' });
    expect(parseArguments(['--sabotage', 'nonsense'])).toMatch(/release-early, lost-write, disk-copy/);
    expect(parseArguments(['--sabotage', 'disk-copy', '--disk-mode', 'shared'])).toMatch(
      /needs separate disks/,
    );
  });
});
