import { FT_PROTOCOL_VERSION, type FtMessage, type Handshake, type LogChannel } from '@ftvm/core';
import { createMemoryChannelPair } from '@ftvm/transport';
import { connectTcp, listenTcp } from '@ftvm/transport/node';
import { expect, it } from 'vitest';
import { waitFor } from './channel-suite.test-support.js';

// The README's example, through the package's own export map (`.` and `./node`), with what it
// prints collected instead.
it('runs the README example', async () => {
  const printed: unknown[][] = [];
  const console = { log: (...items: unknown[]) => printed.push(items) };

  const primary: Handshake = {
    vmId: 'vm-1',
    epoch: 1,
    role: 'primary',
    protocolVersion: FT_PROTOCOL_VERSION,
    host: 'host-a',
  };
  const backup: Handshake = { ...primary, role: 'backup', host: 'host-b' };

  /** The backup's side: acknowledge every log message. */
  function serveBackup(channel: LogChannel): void {
    channel.onMessage((message) => {
      if (message.type === 'log') {
        const last = message.entries[message.entries.length - 1]!;
        channel.send({ type: 'ack', receivedSeq: last.seq, appliedSeq: -1, appliedIcount: -1 });
      }
    });
    channel.onClose((error) => console.log('backup: closed', error ?? 'in order'));
  }

  const pair = await createMemoryChannelPair({ a: { handshake: primary }, b: { handshake: backup } });
  serveBackup(pair.b);
  pair.a.onMessage((message) => console.log('primary got', message));
  pair.a.send({
    type: 'log',
    entries: [
      { kind: 'progress', seq: 0, icount: 1000 },
      { kind: 'progress', seq: 1, icount: 2000 },
    ],
  });

  const preSharedKey = 'a long random secret shared by both hosts';
  const listener = await listenTcp(
    { host: '127.0.0.1', port: 0, handshake: backup, preSharedKey },
    serveBackup,
  );
  const channel = await connectTcp({
    host: '127.0.0.1',
    port: listener.port,
    handshake: primary,
    preSharedKey,
  });
  const acks: FtMessage[] = [];
  let closed: Error | undefined | 'open' = 'open';
  channel.onClose((error) => {
    closed = error;
  });
  channel.onMessage((message) => {
    acks.push(message);
    if (message.type === 'ack') channel.close();
  });
  channel.send({ type: 'log', entries: [{ kind: 'progress', seq: 0, icount: 500 }] });
  await listener.close();

  await waitFor(() => closed !== 'open' && printed.length === 2, 'the example to finish');
  expect(printed[0]).toEqual([
    'primary got',
    { type: 'ack', receivedSeq: 1, appliedSeq: -1, appliedIcount: -1 },
  ]);
  expect(printed[1]).toEqual(['backup: closed', 'in order']);
  expect(acks).toEqual([{ type: 'ack', receivedSeq: 0, appliedSeq: -1, appliedIcount: -1 }]);
  expect(closed).toBeUndefined();
  pair.a.close();
});
