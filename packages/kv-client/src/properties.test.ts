/**
 * Property tests of the checker against the reference store: simulated clients with delays, lost
 * requests, lost and duplicated replies. Histories of a correct store always pass; an injected lost
 * write, a double-applied or lost INCR, a duplicated or wrong answer is always caught.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkHistory } from './check.js';
import { cloneHistory } from './history.js';
import { parseResponse } from './protocol.js';
import { append, counterKey, type PlannedOp, type Simulated, sharedKey, simulate } from './test-support.js';

const networkFault = fc.constantFrom('none', 'none', 'none', 'lost-reply', 'lost-request', 'duplicate-reply');
const plannedOp = fc.record({
  client: fc.nat(3),
  kind: fc.constantFrom('GET', 'GET', 'PUT', 'PUT', 'DEL', 'INCR', 'INCR', 'INCR-shared'),
  key: fc.nat(2),
  thinkMs: fc.nat(3),
  applyDelayMs: fc.nat(4),
  replyDelayMs: fc.nat(4),
  fault: networkFault,
}) as fc.Arbitrary<PlannedOp>;

const scenario = fc.record({
  clients: fc.integer({ min: 1, max: 4 }),
  keys: fc.integer({ min: 1, max: 3 }),
  plan: fc.array(plannedOp, { maxLength: 60 }),
});

const runs = { numRuns: 300 };

describe('checkHistory against the reference store', () => {
  it('passes every history of a correct store', () => {
    fc.assert(
      fc.property(scenario, ({ clients, keys, plan }) => {
        const { history } = simulate(clients, keys, plan);
        const verdict = checkHistory(history);
        expect(verdict.lostWrites).toEqual([]);
        expect(verdict.incrAnomalies).toEqual([]);
        expect(verdict.responseAnomalies).toEqual([]);
        expect(verdict.ok).toBe(true);
        expect(verdict.operations).toBe(history.operations.length);
        expect(verdict.acknowledged + verdict.indeterminate).toBe(verdict.operations);
      }),
      runs,
    );
  });

  it('catches a lost acknowledged PUT (a later read sees the value it overwrote)', () => {
    fc.assert(
      fc.property(scenario, fc.nat(2), ({ clients, keys, plan }, keyIndex) => {
        const { history, endMs } = simulate(clients, keys, plan);
        const key = sharedKey(keyIndex % keys);
        const [, overwrite, read] = append(history, endMs, [
          { client: 'c0', request: { id: 90_001, op: 'PUT', key, value: 'old' }, answer: '90001 OK' },
          { client: 'c0', request: { id: 90_002, op: 'PUT', key, value: 'new' }, answer: '90002 OK' },
          { client: 'c0', request: { id: 90_003, op: 'GET', key }, answer: '90003 OK old' },
        ]);
        const verdict = checkHistory(history);
        expect(verdict.ok).toBe(false);
        expect(verdict.lostWrites).toHaveLength(1);
        expect(verdict.lostWrites[0]).toMatchObject({ key, write: overwrite, read, observed: 'old' });
        expect(verdict.incrAnomalies).toEqual([]);
        expect(verdict.responseAnomalies).toEqual([]);
      }),
      runs,
    );
  });

  it('catches an acknowledged PUT whose key a later read finds missing', () => {
    fc.assert(
      fc.property(scenario, ({ clients, keys, plan }) => {
        const { history, endMs } = simulate(clients, keys, plan);
        const [write] = append(history, endMs, [
          { client: 'c1', request: { id: 90_001, op: 'PUT', key: 'fresh', value: 'x' }, answer: '90001 OK' },
          { client: 'c2', request: { id: 90_002, op: 'GET', key: 'fresh' }, answer: '90002 NOTFOUND' },
        ]);
        const verdict = checkHistory(history);
        expect(verdict.lostWrites.map((lost) => lost.write)).toEqual([write]);
        expect(verdict.lostWrites[0]!.observed).toBeNull();
      }),
      runs,
    );
  });

  /** A plan where one client's INCRs all take effect, one of them with a service fault. */
  const faultyCounter = (service: 'double-apply' | 'forget', replies: fc.Arbitrary<PlannedOp['fault']>) =>
    fc
      .record({
        base: scenario,
        victim: fc.nat(3),
        incrs: fc.array(
          // thinkMs >= 1: the first INCR starts strictly after the reset DEL's answer (a tie could order it before).
          fc.record({
            thinkMs: fc.integer({ min: 1, max: 3 }),
            applyDelayMs: fc.nat(4),
            replyDelayMs: fc.nat(4),
            fault: replies,
          }),
          { minLength: 1, maxLength: 12 },
        ),
        which: fc.nat(),
      })
      .map(({ base, victim, incrs, which }) => {
        const client = victim % base.clients;
        const faulty = which % incrs.length;
        const own = incrs.map(
          (step, index): PlannedOp => ({
            client,
            kind: 'INCR',
            key: 0,
            ...step,
            ...(index === faulty ? { service } : {}),
          }),
        );
        // The other clients' operations stay; the victim's own INCRs are the ones above.
        const others = base.plan.filter(
          (step) => !(step.client % base.clients === client && step.kind === 'INCR'),
        );
        const plan: PlannedOp[] = [];
        for (let index = 0; index < Math.max(others.length, own.length); index++) {
          if (index < others.length) plan.push(others[index]!);
          if (index < own.length) plan.push(own[index]!);
        }
        return { clients: base.clients, keys: base.keys, plan, client };
      });

  it('catches an INCR applied twice', () => {
    fc.assert(
      fc.property(
        faultyCounter('double-apply', fc.constantFrom('none', 'lost-reply', 'duplicate-reply')),
        ({ clients, keys, plan, client }) => {
          const verdict = checkHistory(simulate(clients, keys, plan).history);
          expect(verdict.ok).toBe(false);
          expect(verdict.incrAnomalies.map((anomaly) => anomaly.key)).toContain(counterKey(client));
          expect(verdict.incrAnomalies.map((anomaly) => anomaly.kind)).toContain('too-many-increments');
          expect(verdict.lostWrites).toEqual([]);
        },
      ),
      runs,
    );
  });

  it('catches an acknowledged INCR that was lost', () => {
    fc.assert(
      fc.property(
        faultyCounter('forget', fc.constantFrom('none', 'duplicate-reply')),
        ({ clients, keys, plan, client }) => {
          const verdict = checkHistory(simulate(clients, keys, plan).history);
          expect(verdict.ok).toBe(false);
          expect(verdict.incrAnomalies.map((anomaly) => anomaly.key)).toContain(counterKey(client));
          expect(verdict.incrAnomalies.map((anomaly) => anomaly.kind)).toContain('too-few-increments');
        },
      ),
      runs,
    );
  });

  it('catches duplicated, stray, malformed and mismatched answers', () => {
    const garbage = fc.string({ maxLength: 30 }).filter((text) => !parseResponse(text).ok);
    fc.assert(
      fc.property(scenario, fc.nat(), garbage, (base, pick, junk) => {
        const simulated: Simulated = simulate(base.clients, base.keys, base.plan);
        const answered = simulated.history.operations.filter((operation) => operation.response !== undefined);
        const target = answered[pick % answered.length]!;
        const at = target.completedMs! + 1;

        const conflicting = cloneHistory(simulated.history);
        conflicting.datagrams.push({ client: target.client, atMs: at, text: `${target.id} ERR injected` });
        const stray = cloneHistory(simulated.history);
        stray.datagrams.push({ client: target.client, atMs: at, text: '4000000000 OK' });
        const malformed = cloneHistory(simulated.history);
        malformed.datagrams.push({ client: target.client, atMs: at, text: junk });
        const mismatched = cloneHistory(simulated.history);
        const wrong = target.op === 'INCR' || target.op === 'GET' ? `${target.id} OK` : `${target.id} OK 7`;
        const operation = mismatched.operations.find(
          (candidate) => candidate.client === target.client && candidate.id === target.id,
        )!;
        const parsedWrong = parseResponse(wrong);
        if (!parsedWrong.ok) throw new Error(parsedWrong.reason);
        operation.response = parsedWrong.value;
        for (const datagram of mismatched.datagrams)
          if (
            datagram.client === target.client &&
            parseResponse(datagram.text).ok &&
            datagram.text.startsWith(`${target.id} `)
          )
            datagram.text = wrong;

        const kinds = (history: typeof conflicting) =>
          checkHistory(history).responseAnomalies.map((anomaly) => anomaly.kind);
        expect(kinds(conflicting)).toEqual(['conflicting']);
        expect(kinds(stray)).toEqual(['unknown-id']);
        expect(kinds(malformed)).toEqual(['malformed']);
        expect(kinds(mismatched)).toEqual(['mismatched']);
      }),
      runs,
    );
  });
});
