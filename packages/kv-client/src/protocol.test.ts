import { ConfigError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import {
  answerMismatch,
  encodeRequest,
  formatResponse,
  isIntegerText,
  isValidKey,
  isValidValue,
  parseResponse,
} from './protocol.js';
import { KvReferenceServer, KvReferenceStore } from './reference.js';

describe('encodeRequest', () => {
  it('writes the four requests with single spaces', () => {
    expect(encodeRequest({ id: 1, op: 'PUT', key: 'colour', value: 'blue' })).toBe('1 PUT colour blue');
    expect(encodeRequest({ id: 2, op: 'GET', key: 'a.b:c-d_E9' })).toBe('2 GET a.b:c-d_E9');
    expect(encodeRequest({ id: 0, op: 'DEL', key: 'k' })).toBe('0 DEL k');
    expect(encodeRequest({ id: 4294967295, op: 'INCR', key: 'hits' })).toBe('4294967295 INCR hits');
  });

  it('refuses what the service would refuse', () => {
    const bad = [
      { id: -1, op: 'GET', key: 'k' },
      { id: 2 ** 32, op: 'GET', key: 'k' },
      { id: 1.5, op: 'GET', key: 'k' },
      { id: 1, op: 'FLY', key: 'k' },
      { id: 1, op: 'GET', key: '' },
      { id: 1, op: 'GET', key: 'x'.repeat(65) },
      { id: 1, op: 'GET', key: 'bad key' },
      { id: 1, op: 'GET', key: 'k', value: 'v' },
      { id: 1, op: 'PUT', key: 'k' },
      { id: 1, op: 'PUT', key: 'k', value: 'two words' },
      { id: 1, op: 'PUT', key: 'k', value: 'v'.repeat(1025) },
      { id: 1, op: 'PUT', key: 'k', value: 'caf\u00e9' },
    ] as const;
    for (const request of bad)
      expect(() => encodeRequest(request as never), JSON.stringify(request)).toThrow(ConfigError);
    expect(isValidKey('x'.repeat(64))).toBe(true);
    expect(isValidValue('v'.repeat(1024))).toBe(true);
  });
});

describe('parseResponse', () => {
  it('reads the four answers', () => {
    expect(parseResponse('1 OK')).toEqual({ ok: true, value: { id: 1, status: 'OK' } });
    expect(parseResponse('2 OK blue')).toEqual({ ok: true, value: { id: 2, status: 'OK', value: 'blue' } });
    expect(parseResponse('3 NOTFOUND')).toEqual({ ok: true, value: { id: 3, status: 'NOTFOUND' } });
    expect(parseResponse('4 OK -12')).toEqual({ ok: true, value: { id: 4, status: 'OK', value: '-12' } });
    expect(parseResponse('5 ERR unknown operation')).toEqual({
      ok: true,
      value: { id: 5, status: 'ERR', reason: 'unknown operation' },
    });
    expect(parseResponse('4294967295 OK\n')).toEqual({ ok: true, value: { id: 4294967295, status: 'OK' } });
  });

  it('is strict: anything else is malformed, and it never throws', () => {
    const malformed = [
      '',
      'OK',
      '1',
      '1 ',
      '01 OK',
      '+1 OK',
      '-1 OK',
      '4294967296 OK',
      '1  OK',
      '1 ok',
      '1 OK ',
      '1 OK two words',
      '1 NOTFOUND x',
      '1 ERR',
      '1 ERR ',
      '1 MAYBE',
      '1 OK\r\n',
      '1 OK\n\n',
      `1 OK ${'v'.repeat(1025)}`,
      '1 OK caf\u00e9',
      'x OK',
    ];
    for (const text of malformed) expect(parseResponse(text).ok, JSON.stringify(text)).toBe(false);
  });

  it('round-trips through formatResponse', () => {
    for (const text of ['1 OK', '2 OK v', '3 NOTFOUND', '4 ERR store full'])
      expect(formatResponse((parseResponse(text) as { ok: true; value: never }).value)).toBe(text);
  });
});

describe('answerMismatch', () => {
  it('knows which answers fit which request', () => {
    const fits = (op: 'GET' | 'PUT' | 'DEL' | 'INCR', text: string) => {
      const parsed = parseResponse(text);
      if (!parsed.ok) throw new Error(parsed.reason);
      return answerMismatch(op, parsed.value) === undefined;
    };
    expect([fits('GET', '1 OK v'), fits('GET', '1 NOTFOUND'), fits('GET', '1 OK')]).toEqual([
      true,
      true,
      false,
    ]);
    expect([fits('PUT', '1 OK'), fits('PUT', '1 OK v'), fits('PUT', '1 NOTFOUND')]).toEqual([
      true,
      false,
      false,
    ]);
    expect([fits('DEL', '1 OK'), fits('DEL', '1 NOTFOUND'), fits('DEL', '1 OK v')]).toEqual([
      true,
      true,
      false,
    ]);
    expect([
      fits('INCR', '1 OK 3'),
      fits('INCR', '1 OK x'),
      fits('INCR', '1 OK'),
      fits('INCR', '1 NOTFOUND'),
    ]).toEqual([true, false, false, false]);
    for (const op of ['GET', 'PUT', 'DEL', 'INCR'] as const) expect(fits(op, '1 ERR store full')).toBe(true);
    expect([isIntegerText('0'), isIntegerText('-7'), isIntegerText('007'), isIntegerText('1e3')]).toEqual([
      true,
      true,
      false,
      false,
    ]);
  });
});

describe('the reference server', () => {
  it('answers as the kv guest does (the transcript of the CLI network test)', () => {
    const server = new KvReferenceServer();
    const ask = (text: string) => server.handle('10.0.2.2:4000', text);
    expect(ask('1 PUT colour blue')).toBe('1 OK');
    expect(ask('2 GET colour')).toBe('2 OK blue');
    expect(ask('3 INCR hits')).toBe('3 OK 1');
    expect(ask('3 INCR hits')).toBe('3 OK 1');
    expect(ask('4 INCR hits')).toBe('4 OK 2');
    expect(ask('5 DEL colour')).toBe('5 OK');
    expect(ask('6 GET colour')).toBe('6 NOTFOUND');
    expect(ask('7 FLY away')).toBe('7 ERR unknown operation');
    expect(ask('8 PUT bad key! x')).toBe('8 ERR value has spaces');
    expect(ask('\u0000\u0001 garbage without an id')).toBeUndefined();
    expect(ask('9 PUT colour x\n')).toBe('9 OK\n');
    expect(ask('10 INCR colour')).toBe('10 ERR value is not an integer');
    expect(ask('11 DEL nothing')).toBe('11 NOTFOUND');
  });

  it('remembers the last 32 answers of each client', () => {
    const server = new KvReferenceServer();
    expect(server.handle('a', '1 INCR n')).toBe('1 OK 1');
    expect(server.handle('b', '1 INCR n')).toBe('1 OK 2'); // another client: another id space
    for (let id = 2; id <= 32; id++) server.handle('a', `${id} GET n`);
    expect(server.handle('a', '1 INCR n')).toBe('1 OK 1'); // 32 answers back: remembered
    server.handle('a', '33 GET n');
    expect(server.handle('a', '1 INCR n')).toBe('1 OK 3'); // 33 back: forgotten, applied again
  });

  it('fills up like the guest', () => {
    const store = new KvReferenceStore(2);
    expect(store.apply({ id: 1, op: 'PUT', key: 'a', value: 'x' }).status).toBe('OK');
    expect(store.apply({ id: 2, op: 'INCR', key: 'b' })).toEqual({ id: 2, status: 'OK', value: '1' });
    expect(store.apply({ id: 3, op: 'PUT', key: 'c', value: 'x' })).toEqual({
      id: 3,
      status: 'ERR',
      reason: 'store full',
    });
    expect(store.apply({ id: 4, op: 'PUT', key: 'a', value: 'y' }).status).toBe('OK');
  });
});
