/**
 * Test support (not exported): the reference server on a real UDP socket, with seeded faults —
 * lost requests and replies, duplicated replies, no exactly-once memory, extra wrong answers.
 */
import { createSocket } from 'node:dgram';
import { seededRandom } from '../random.js';
import { KvReferenceServer, KvReferenceStore } from '../reference.js';

export interface FakeKvOptions {
  seed?: number;
  /** Probability that a request datagram is lost. */
  dropRequests?: number;
  /** Probability that a reply datagram is lost. */
  dropReplies?: number;
  /** Probability that a reply is sent twice. */
  duplicateReplies?: number;
  /** Drop the first `n` datagrams of every (client, id). */
  dropFirst?: number;
  /** Remember answers per client (the guest does); false re-executes every retry. */
  exactlyOnce?: boolean;
  /** Also send this (a wrong second answer) after each answer. */
  alsoSend?: (answer: string) => string | undefined;
}

export interface FakeKv {
  port: number;
  store: KvReferenceStore;
  received: number;
  close(): Promise<void>;
}

export async function startFakeKv(options: FakeKvOptions = {}): Promise<FakeKv> {
  const random = seededRandom(options.seed ?? 7);
  const store = new KvReferenceStore();
  const server = new KvReferenceServer(store);
  const seen = new Map<string, number>();
  const socket = createSocket('udp4');
  const fake: FakeKv = {
    port: 0,
    store,
    received: 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (message, from) => {
    fake.received++;
    const client = `${from.address}:${from.port}`;
    const text = message.toString('latin1');
    const key = `${client} ${text.split(' ')[0]}`;
    const count = (seen.get(key) ?? 0) + 1;
    seen.set(key, count);
    if (count <= (options.dropFirst ?? 0)) return;
    if (random.float() < (options.dropRequests ?? 0)) return;
    const answer =
      (options.exactlyOnce ?? true)
        ? server.handle(client, text)
        : new KvReferenceServer(store).handle(client, text);
    if (answer === undefined || random.float() < (options.dropReplies ?? 0)) return;
    const send = (reply: string) => socket.send(reply, from.port, from.address);
    send(answer);
    if (random.float() < (options.duplicateReplies ?? 0)) send(answer);
    const extra = options.alsoSend?.(answer);
    if (extra !== undefined) setTimeout(() => send(extra), 2);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  fake.port = socket.address().port;
  return fake;
}
