/**
 * The kv service's wire format (packages/guests/images/kv.c): one ASCII request per UDP datagram,
 * fields separated by single spaces.
 *
 *   <id> GET <key>          -> <id> OK <value> | <id> NOTFOUND
 *   <id> PUT <key> <value>  -> <id> OK
 *   <id> DEL <key>          -> <id> OK | <id> NOTFOUND
 *   <id> INCR <key>         -> <id> OK <n>          (a missing key counts as 0)
 *   anything else           -> <id> ERR <reason>
 */
import { ConfigError } from '@ftvm/core';

/** The four operations of the kv service. */
export type KvOpName = 'GET' | 'PUT' | 'DEL' | 'INCR';
export const KV_OPS: readonly KvOpName[] = ['GET', 'PUT', 'DEL', 'INCR'];

/** The UDP port the kv guest listens on. */
export const KV_PORT = 5555;
export const KV_KEY_BYTES_MAX = 64;
export const KV_VALUE_BYTES_MAX = 1024;
export const KV_ID_MAX = 0xffff_ffff;

/** One request; `value` only (and always) for PUT. */
export interface KvRequest {
  id: number;
  op: KvOpName;
  key: string;
  value?: string;
}

/** A well-formed response. `value` is present for GET and INCR answers, absent for PUT and DEL. */
export type KvResponse =
  | { id: number; status: 'OK'; value?: string }
  | { id: number; status: 'NOTFOUND' }
  | { id: number; status: 'ERR'; reason: string };

export type KvResponseStatus = KvResponse['status'];

/** What {@link parseResponse} returns: never throws. */
export type ParseResponseResult = { ok: true; value: KvResponse } | { ok: false; reason: string };

const keyPattern = /^[A-Za-z0-9_.:-]{1,64}$/;
const valuePattern = /^[\x21-\x7e]{1,1024}$/;
const idPattern = /^(?:0|[1-9][0-9]{0,9})$/;
const integerPattern = /^-?(?:0|[1-9][0-9]{0,18})$/;
const reasonPattern = /^[\x20-\x7e]+$/;

/** True for a key the service accepts: 1–64 bytes of `[A-Za-z0-9_.:-]`. */
export function isValidKey(key: string): boolean {
  return keyPattern.test(key);
}

/** True for a PUT value the service accepts: 1–1024 printable ASCII bytes, no spaces. */
export function isValidValue(value: string): boolean {
  return valuePattern.test(value);
}

/** True for a request id: an integer in 0..2^32-1. */
export function isValidId(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id <= KV_ID_MAX;
}

/** True for the decimal integer text the service writes for INCR (`-12`, `0`, `40`). */
export function isIntegerText(text: string): boolean {
  return integerPattern.test(text);
}

/** The datagram text of a request. Throws a `ConfigError` for a request the service would refuse. */
export function encodeRequest(request: KvRequest): string {
  const { id, op, key, value } = request;
  if (!isValidId(id)) throw new ConfigError(`kv: request id ${id} is not a uint32`);
  if (!KV_OPS.includes(op)) throw new ConfigError(`kv: unknown operation ${JSON.stringify(op)}`);
  if (!isValidKey(key)) throw new ConfigError(`kv: invalid key ${JSON.stringify(key)}`);
  if (op === 'PUT') {
    if (value === undefined || !isValidValue(value))
      throw new ConfigError(`kv: invalid PUT value ${JSON.stringify(value)}`);
    return `${id} PUT ${key} ${value}`;
  }
  if (value !== undefined) throw new ConfigError(`kv: ${op} takes no value`);
  return `${id} ${op} ${key}`;
}

/**
 * Parses one response datagram strictly: a canonical decimal uint32 id (no sign, no leading zero),
 * single spaces, `OK`, `OK <value>` (1–1024 printable bytes, no spaces), `NOTFOUND`, or
 * `ERR <reason>` (printable, spaces allowed). One trailing `\n` (the server mirrors a request's
 * newline) is accepted. Never throws.
 */
export function parseResponse(text: string): ParseResponseResult {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const firstSpace = body.indexOf(' ');
  if (firstSpace < 0) return { ok: false, reason: 'no status after the id' };
  const idText = body.slice(0, firstSpace);
  if (!idPattern.test(idText)) return { ok: false, reason: `bad id ${JSON.stringify(idText)}` };
  const id = Number(idText);
  if (id > KV_ID_MAX) return { ok: false, reason: `id ${idText} does not fit in 32 bits` };
  const rest = body.slice(firstSpace + 1);
  if (rest === 'OK') return { ok: true, value: { id, status: 'OK' } };
  if (rest === 'NOTFOUND') return { ok: true, value: { id, status: 'NOTFOUND' } };
  if (rest.startsWith('OK ')) {
    const value = rest.slice(3);
    if (!isValidValue(value)) return { ok: false, reason: `bad value ${JSON.stringify(value.slice(0, 40))}` };
    return { ok: true, value: { id, status: 'OK', value } };
  }
  if (rest.startsWith('ERR ')) {
    const reason = rest.slice(4);
    if (!reasonPattern.test(reason)) return { ok: false, reason: 'bad ERR reason' };
    return { ok: true, value: { id, status: 'ERR', reason } };
  }
  return { ok: false, reason: `unknown status ${JSON.stringify(rest.slice(0, 40))}` };
}

/** The canonical text of a response (what the server sends, without a newline). */
export function formatResponse(response: KvResponse): string {
  switch (response.status) {
    case 'OK':
      return response.value === undefined ? `${response.id} OK` : `${response.id} OK ${response.value}`;
    case 'NOTFOUND':
      return `${response.id} NOTFOUND`;
    case 'ERR':
      return `${response.id} ERR ${response.reason}`;
  }
}

/** True when two responses say the same thing. */
export function sameResponse(a: KvResponse, b: KvResponse): boolean {
  return formatResponse(a) === formatResponse(b);
}

/**
 * Why `response` cannot be the answer to a request of kind `op`, or undefined when it can:
 * GET → `OK <value>` | `NOTFOUND`; PUT → `OK`; DEL → `OK` | `NOTFOUND`; INCR → `OK <integer>`;
 * `ERR <reason>` answers anything.
 */
export function answerMismatch(op: KvOpName, response: KvResponse): string | undefined {
  if (response.status === 'ERR') return undefined;
  switch (op) {
    case 'GET':
      if (response.status === 'OK' && response.value === undefined) return 'GET answered OK without a value';
      return undefined;
    case 'PUT':
      if (response.status === 'NOTFOUND') return 'PUT answered NOTFOUND';
      if (response.value !== undefined) return 'PUT answered OK with a value';
      return undefined;
    case 'DEL':
      if (response.status === 'OK' && response.value !== undefined) return 'DEL answered OK with a value';
      return undefined;
    case 'INCR':
      if (response.status === 'NOTFOUND') return 'INCR answered NOTFOUND';
      if (response.value === undefined) return 'INCR answered OK without a number';
      if (!isIntegerText(response.value)) return 'INCR answered OK with a non-integer';
      return undefined;
  }
}
