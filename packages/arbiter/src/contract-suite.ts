/**
 * The behaviour every `Arbiter` must have, as a vitest suite that each backend's test file runs
 * against its own clients (`describeArbiterContract`). Not part of the package's exports.
 */
import { type Arbiter, ArbiterUnavailableError, ConfigError } from '@ftvm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface ContractBackend {
  /** At least two separate clients of one backend (they must see each other's moves). */
  clients: Arbiter[];
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** When set, the suite is skipped and this is printed. */
  skipReason?: string | undefined;
}

const isConfigError = (error: unknown) => ConfigError.is(error);

export function describeArbiterContract(
  name: string,
  create: () => Promise<ContractBackend>,
  options: ContractOptions = {},
): void {
  const skip = options.skipReason !== undefined;
  if (skip) console.warn(`skipping the ${name} arbiter contract: ${options.skipReason}`);
  describe.skipIf(skip)(`the Arbiter contract: ${name}`, () => {
    let backend: ContractBackend;
    let a: Arbiter;
    let b: Arbiter;
    let vmCount = 0;
    /** A VM id no other test uses (the backend is shared by the suite's tests). */
    const freshVm = () => `contract-vm-${++vmCount}`;

    beforeAll(async () => {
      backend = await create();
      expect(backend.clients.length).toBeGreaterThanOrEqual(2);
      [a, b] = backend.clients as [Arbiter, Arbiter];
    });
    afterAll(async () => {
      await backend?.cleanup();
    });

    it('knows a VM it has never seen as epoch 0 with no owner', async () => {
      const vm = freshVm();
      expect(await a.read(vm)).toEqual({ epoch: 0, owner: '' });
      expect(await b.read(vm)).toEqual({ epoch: 0, owner: '' });
    });

    it('moves 0 → 1, refuses a second 0 → 1, lets the other owner move 1 → 2, refuses stale moves', async () => {
      const vm = freshVm();
      expect(await a.testAndSet(vm, 0, 'host-a')).toEqual({
        won: true,
        record: { epoch: 1, owner: 'host-a' },
      });
      expect(await a.read(vm)).toEqual({ epoch: 1, owner: 'host-a' });
      expect(await b.read(vm)).toEqual({ epoch: 1, owner: 'host-a' });

      // A second 0 → 1 loses, changes nothing, and shows the record in the way.
      expect(await b.testAndSet(vm, 0, 'host-b')).toEqual({
        won: false,
        record: { epoch: 1, owner: 'host-a' },
      });
      expect(await a.testAndSet(vm, 0, 'host-a')).toEqual({
        won: false,
        record: { epoch: 1, owner: 'host-a' },
      });
      expect(await b.read(vm)).toEqual({ epoch: 1, owner: 'host-a' });

      // The other owner, on the other client, moves 1 → 2.
      expect(await b.testAndSet(vm, 1, 'host-b')).toEqual({
        won: true,
        record: { epoch: 2, owner: 'host-b' },
      });
      expect(await a.read(vm)).toEqual({ epoch: 2, owner: 'host-b' });

      // Stale (1 → 2 again) and future (5 → 6) moves lose and change nothing.
      expect(await a.testAndSet(vm, 1, 'host-a')).toEqual({
        won: false,
        record: { epoch: 2, owner: 'host-b' },
      });
      expect(await a.testAndSet(vm, 0, 'host-a')).toEqual({
        won: false,
        record: { epoch: 2, owner: 'host-b' },
      });
      expect(await a.testAndSet(vm, 5, 'host-a')).toEqual({
        won: false,
        record: { epoch: 2, owner: 'host-b' },
      });
      expect(await b.read(vm)).toEqual({ epoch: 2, owner: 'host-b' });
    });

    it('lets one owner win several epochs in a row', async () => {
      const vm = freshVm();
      for (let epoch = 0; epoch < 5; epoch++) {
        expect(await a.testAndSet(vm, epoch, 'host-a')).toEqual({
          won: true,
          record: { epoch: epoch + 1, owner: 'host-a' },
        });
      }
      expect(await b.read(vm)).toEqual({ epoch: 5, owner: 'host-a' });
    });

    it('keeps VMs apart', async () => {
      const first = freshVm();
      const second = freshVm();
      await a.testAndSet(first, 0, 'host-a');
      expect(await b.read(second)).toEqual({ epoch: 0, owner: '' });
      expect((await b.testAndSet(second, 0, 'host-b')).won).toBe(true);
      expect(await a.read(first)).toEqual({ epoch: 1, owner: 'host-a' });
      expect(await a.read(second)).toEqual({ epoch: 1, owner: 'host-b' });
    });

    it('takes ids and owners at the edges of what is allowed, and gives them back as they were', async () => {
      const longVm = `v${'x'.repeat(127)}`;
      const oddVm = `A.b:c-d_${vmCount++}`;
      const longOwner = 'o'.repeat(128);
      const unicodeOwner = 'hôte β 10.0.0.5:7000 ✓';
      for (const [vm, owner] of [
        [longVm, longOwner],
        [oddVm, unicodeOwner],
      ] as const) {
        expect(await a.testAndSet(vm, 0, owner)).toEqual({ won: true, record: { epoch: 1, owner } });
        expect(await b.read(vm)).toEqual({ epoch: 1, owner });
        expect(await b.testAndSet(vm, 0, 'host-b')).toEqual({ won: false, record: { epoch: 1, owner } });
      }
    });

    it('gives exactly one winner among concurrent moves from several clients', async () => {
      const vm = freshVm();
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) =>
            backend.clients[i % backend.clients.length]!.testAndSet(vm, round, `racer-${i}`),
          ),
        );
        const winners = results.filter((result) => result.won);
        expect(winners).toHaveLength(1);
        const record = winners[0]!.record;
        expect(record.epoch).toBe(round + 1);
        for (const result of results) expect(result.record).toEqual(record);
      }
      expect((await a.read(vm)).epoch).toBe(10);
    });

    it('rejects bad arguments with ConfigError and changes nothing', async () => {
      const vm = freshVm();
      await a.testAndSet(vm, 0, 'host-a');
      const badVmIds: unknown[] = ['', 'a/b', '../x', '.', '..', 'a b', 'é', 'x'.repeat(129), 7, undefined];
      for (const bad of badVmIds) {
        await expect(a.testAndSet(bad as string, 1, 'host-a')).rejects.toSatisfy(isConfigError);
        await expect(a.read(bad as string)).rejects.toSatisfy(isConfigError);
      }
      const badEpochs: unknown[] = [
        -1,
        1.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.MAX_SAFE_INTEGER,
        '1',
        null,
      ];
      for (const bad of badEpochs) {
        await expect(a.testAndSet(vm, bad as number, 'host-a')).rejects.toSatisfy(isConfigError);
      }
      const badOwners: unknown[] = [
        '',
        'a\nb',
        'tab\there',
        '\u0000',
        'x'.repeat(129),
        'zero\u200bwidth',
        42,
      ];
      for (const bad of badOwners) {
        await expect(a.testAndSet(vm, 1, bad as string)).rejects.toSatisfy(isConfigError);
      }
      expect(await b.read(vm)).toEqual({ epoch: 1, owner: 'host-a' });
    });

    it('never answers ArbiterUnavailableError on a healthy backend', async () => {
      const vm = freshVm();
      const outcomes = await Promise.allSettled([a.read(vm), a.testAndSet(vm, 0, 'host-a'), b.read(vm)]);
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') expect(ArbiterUnavailableError.is(outcome.reason)).toBe(false);
        expect(outcome.status).toBe('fulfilled');
      }
    });
  });
}
