import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { LogChannel } from '@ftvm/core';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChannelOptions } from '../channel.js';
import {
  backup,
  describeChannelSuite,
  expectChannelError,
  primary,
  RawPeer,
  waitFor,
  watch,
} from '../channel-suite.test-support.js';
import { createSocketStream } from './socket-stream.js';
import type { ChannelListener } from './tcp.js';
import { connectTls, listenTls, type TlsCredentials, tlsError } from './tls.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Certificates {
  /** Signed by the trusted CA. */
  server: TlsCredentials;
  client: TlsCredentials;
  /** Signed by another CA (but trusting the right one, so only its own certificate is wrong). */
  rogueClient: TlsCredentials;
  rogueServer: TlsCredentials;
}

/** Makes two CAs and certificates for 127.0.0.1 with the openssl command, in a temporary directory. */
function makeCertificates(dir: string): Certificates {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  writeFileSync(
    join(dir, 'leaf.cnf'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  for (const ca of ['ca', 'other-ca']) {
    run(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-subj',
      `/CN=ftvm test ${ca}`,
      '-days',
      '2',
    );
  }
  const leaf = (name: string, ca: string) => {
    run('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    run(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-set_serial',
      String(Math.floor(Math.random() * 1e9)),
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-extfile',
      'leaf.cnf',
    );
  };
  leaf('server', 'ca');
  leaf('client', 'ca');
  leaf('rogue-client', 'other-ca');
  leaf('rogue-server', 'other-ca');
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  const credentials = (name: string): TlsCredentials => ({
    key: read(`${name}.key`),
    cert: read(`${name}.crt`),
    ca: read('ca.crt'),
  });
  return {
    server: credentials('server'),
    client: credentials('client'),
    rogueClient: credentials('rogue-client'),
    rogueServer: credentials('rogue-server'),
  };
}

const opensslPresent = hasOpenssl();
const dir = opensslPresent ? mkdtempSync(join(tmpdir(), 'ftvm-tls-')) : '';
const certificates = opensslPresent ? makeCertificates(dir) : undefined;
const listeners: ChannelListener[] = [];

afterAll(async () => {
  await Promise.all(listeners.map((listener) => listener.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function tlsPair(
  a: ChannelOptions,
  b: ChannelOptions,
  credentials: { server: TlsCredentials; client: TlsCredentials } = certificates as Certificates,
) {
  let settle!: (result: Promise<LogChannel>) => void;
  const accepted = new Promise<Promise<LogChannel>>((resolve) => {
    settle = resolve;
  });
  const listener = await listenTls(
    { ...b, ...credentials.server, onError: (error) => settle(Promise.reject(error)) },
    (channel) => settle(Promise.resolve(channel)),
  );
  listeners.push(listener);
  const connected = connectTls({ ...a, ...credentials.client, host: '127.0.0.1', port: listener.port });
  const results = await Promise.allSettled([connected, accepted.then((result) => result)]);
  await listener.close();
  return results;
}

if (!opensslPresent) {
  describe.skip('TLS (skipped: the openssl command is not installed; it makes the test certificates)', () => {
    it('needs openssl', () => {});
  });
} else {
  const certs = certificates as Certificates;

  describeChannelSuite('TLS', async () => ({
    pair: (a, b) => tlsPair(a, b),
    async raw(options: ChannelOptions) {
      let settle!: (result: Promise<LogChannel>) => void;
      const channel = new Promise<LogChannel>((resolve, reject) => {
        settle = (result) => result.then(resolve, reject);
      });
      const listener = await listenTls(
        { ...options, ...certs.server, onError: (error) => settle(Promise.reject(error)) },
        (opened) => settle(Promise.resolve(opened)),
      );
      listeners.push(listener);
      const socket = await new Promise<TLSSocket>((resolve, reject) => {
        const connected: TLSSocket = tlsConnect(
          {
            host: '127.0.0.1',
            port: listener.port,
            key: certs.client.key as string,
            cert: certs.client.cert as string,
            ca: certs.client.ca as string,
          },
          () => resolve(connected),
        );
        connected.once('error', reject);
      });
      return {
        peer: new RawPeer(createSocketStream(socket, { lingerMs: 200, mapError: tlsError })),
        channel,
      };
    },
    async close() {},
  }));

  describe('TLS transport: mutual certificates', () => {
    it('refuses a client whose certificate comes from another CA (authentication on the server)', async () => {
      const [client, server] = await tlsPair(
        { handshake: primary },
        { handshake: backup },
        { server: certs.server, client: certs.rogueClient },
      );
      // Node's server drops the connection without a TLS alert: the client sees it close.
      expect(client.status).toBe('rejected');
      if (client.status === 'rejected') {
        expectChannelError(client.reason, 'connection');
        expect((client.reason as Error).message).toMatch(/certificate/);
      }
      expect(server.status).toBe('rejected');
      if (server.status === 'rejected') expectChannelError(server.reason, 'authentication');
    });

    it('refuses a client without a certificate (authentication on the server)', async () => {
      const errors: Error[] = [];
      let opened = false;
      const listener = await listenTls(
        { handshake: backup, ...certs.server, onError: (error) => errors.push(error) },
        () => {
          opened = true;
        },
      );
      listeners.push(listener);
      const socket = tlsConnect({ host: '127.0.0.1', port: listener.port, ca: certs.client.ca as string });
      socket.on('error', () => {});
      const peer = new RawPeer(createSocketStream(socket, { mapError: tlsError }));
      await waitFor(() => errors.length === 1 && peer.gone, 'the refusal');
      expectChannelError(errors[0], 'authentication');
      expect(opened).toBe(false);
    });

    it('refuses a server whose certificate comes from another CA (authentication)', async () => {
      const [client, server] = await tlsPair(
        { handshake: primary },
        { handshake: backup },
        { server: certs.rogueServer, client: certs.client },
      );
      expect(client.status).toBe('rejected');
      if (client.status === 'rejected') expectChannelError(client.reason, 'authentication');
      expect(server.status).toBe('rejected');
    });

    it('checks a pre-shared key on top of the certificates', async () => {
      const [good, goodServer] = await tlsPair(
        { handshake: primary, preSharedKey: 'shared' },
        { handshake: backup, preSharedKey: 'shared' },
      );
      expect(good.status).toBe('fulfilled');
      expect(goodServer.status).toBe('fulfilled');
      if (good.status === 'fulfilled' && goodServer.status === 'fulfilled') {
        const seen = watch(goodServer.value);
        good.value.send({ type: 'heartbeat', counter: 3 });
        await waitFor(() => seen.messages.length === 1, 'the heartbeat');
        good.value.close();
      }
      const [bad, badServer] = await tlsPair(
        { handshake: primary, preSharedKey: 'shared' },
        { handshake: backup, preSharedKey: 'other' },
      );
      expectChannelError(bad.status === 'rejected' ? bad.reason : undefined, 'authentication');
      expectChannelError(badServer.status === 'rejected' ? badServer.reason : undefined, 'authentication');
    });
  });
}
