/**
 * A reference kv store in memory, with the guest's semantics (kv.c): the model the property tests
 * check the checker against, and a stand-in server for tests that need no VM.
 */
import { formatResponse, isValidKey, KV_KEY_BYTES_MAX, type KvRequest, type KvResponse } from './protocol.js';

const INT64_MAX = (1n << 63n) - 1n;
const CLIENT_HISTORY = 32;
const REQUEST_BYTES_MAX = 10 + 1 + 4 + 1 + KV_KEY_BYTES_MAX + 1 + 1024;

/** The store: GET, PUT, DEL, INCR on a map, as the guest executes them. */
export class KvReferenceStore {
  readonly data = new Map<string, string>();

  /** `capacity`: how many keys fit (the guest has 512 slots). */
  constructor(readonly capacity = 512) {}

  /** Executes one request (assumed valid: see {@link KvReferenceServer} for parsing) and answers. */
  apply(request: KvRequest): KvResponse {
    const { id, key } = request;
    const current = this.data.get(key);
    switch (request.op) {
      case 'GET':
        return current === undefined ? { id, status: 'NOTFOUND' } : { id, status: 'OK', value: current };
      case 'DEL':
        if (current === undefined) return { id, status: 'NOTFOUND' };
        this.data.delete(key);
        return { id, status: 'OK' };
      case 'PUT':
        if (current === undefined && this.data.size >= this.capacity)
          return { id, status: 'ERR', reason: 'store full' };
        this.data.set(key, request.value!);
        return { id, status: 'OK' };
      case 'INCR': {
        let value = 0n;
        if (current !== undefined) {
          if (!/^-?[0-9]{1,19}$/.test(current))
            return { id, status: 'ERR', reason: 'value is not an integer' };
          value = BigInt(current);
          if (value > INT64_MAX || value < -INT64_MAX - 1n)
            return { id, status: 'ERR', reason: 'value is not an integer' };
        }
        if (value === INT64_MAX) return { id, status: 'ERR', reason: 'integer overflow' };
        if (current === undefined && this.data.size >= this.capacity)
          return { id, status: 'ERR', reason: 'store full' };
        const next = String(value + 1n);
        this.data.set(key, next);
        return { id, status: 'OK', value: next };
      }
    }
  }
}

/**
 * The guest's request handling on top of a {@link KvReferenceStore}: parsing, ERR answers, and the
 * exactly-once memory of each client's last 32 answers.
 */
export class KvReferenceServer {
  private readonly clients = new Map<string, { ids: number[]; answers: Map<number, string> }>();

  constructor(readonly store = new KvReferenceStore()) {}

  /** Answers one datagram from `client` (an address:port), or undefined when it has no readable id. */
  handle(client: string, datagram: string): string | undefined {
    let text = datagram;
    let newline = '';
    if (text.endsWith('\n')) {
      newline = '\n';
      text = text.slice(0, text.endsWith('\r\n') ? -2 : -1);
    }
    const space = text.indexOf(' ');
    const idText = space < 0 ? text : text.slice(0, space);
    if (!/^[0-9]{1,10}$/.test(idText) || Number(idText) > 0xffff_ffff) return undefined;
    const id = Number(idText);
    let memory = this.clients.get(client);
    if (memory === undefined) {
      memory = { ids: [], answers: new Map() };
      this.clients.set(client, memory);
    }
    const remembered = memory.answers.get(id);
    if (remembered !== undefined) return remembered + newline;
    const answer = formatResponse(
      text.length > REQUEST_BYTES_MAX
        ? error(id, 'request too long')
        : space < 0
          ? error(id, 'malformed request')
          : this.execute(id, text.slice(space + 1)),
    );
    memory.ids.push(id);
    memory.answers.set(id, answer);
    if (memory.ids.length > CLIENT_HISTORY) memory.answers.delete(memory.ids.shift()!);
    return answer + newline;
  }

  private execute(id: number, text: string): KvResponse {
    const fields = text.split(' ');
    if (fields.slice(0, 3).some((field) => field.length === 0))
      return error(id, 'malformed request (empty field)');
    const [op, key, value] = fields;
    if (op !== 'GET' && op !== 'PUT' && op !== 'DEL' && op !== 'INCR') return error(id, 'unknown operation');
    if (key === undefined) return error(id, 'missing key');
    if (key.length > KV_KEY_BYTES_MAX) return error(id, 'key too long');
    if (!isValidKey(key)) return error(id, 'bad key');
    if (op === 'PUT') {
      if (value === undefined) return error(id, 'missing value');
      if (fields.length > 3) return error(id, 'value has spaces');
      if (value.length > 1024) return error(id, 'value too long');
      if (!/^[\x21-\x7e]+$/.test(value)) return error(id, 'bad value');
      return this.store.apply({ id, op, key, value });
    }
    if (fields.length > 2) return error(id, 'unexpected value');
    return this.store.apply({ id, op, key });
  }
}

function error(id: number, reason: string): KvResponse {
  return { id, status: 'ERR', reason };
}
