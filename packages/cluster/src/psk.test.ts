import { createHmac } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { ChannelError, ConfigError, FT_PROTOCOL_VERSION, type Handshake, type LogChannel } from '@ftvm/core';
import { connectTls, listenTls } from '@ftvm/transport/node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { probeHttpOverTls, tempDir } from '../test/support.js';
import { checkCredentialSource, clientTlsOptions, loadClusterCredentials } from './auth.js';
import { initCertificates, loadCredentials } from './certs.js';
import { HostFrameLink } from './frame-link.js';
import { GatewayService } from './gateway-service.js';
import { HostAgent } from './host-agent.js';
import { ApiClient, serveApi } from './http.js';
import { Orchestrator } from './orchestrator.js';
import { createPskFile, derivePsk, loadPskCredentials, PSK_BYTES } from './psk.js';
import { DirectoryStore } from './store.js';

/** The error `run` throws (fails the test when it throws none). */
function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('nothing was thrown');
}

/** A pino logger whose lines land in `lines`. */
function capturedLogger(lines: Record<string, unknown>[]) {
  return pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`not ${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('pre-shared key files', () => {
  const dir = tempDir();

  it('creates 32 random bytes in hex, mode 0600, in a directory it makes, and loads them', () => {
    const path = createPskFile(join(dir, 'new', 'cluster.psk'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    const credentials = loadPskCredentials(path, 'h1');
    expect(credentials).toMatchObject({ name: 'h1', file: path });
    expect(credentials.psk).toHaveLength(PSK_BYTES);
    expect(Buffer.from(credentials.psk).toString('hex')).toBe(readFileSync(path, 'utf8').trim());
    const other = loadPskCredentials(createPskFile(join(dir, 'other.psk')), 'h1');
    expect(Buffer.from(other.psk).equals(Buffer.from(credentials.psk))).toBe(false);
  });

  it('refuses to replace an existing file, with a typed error naming it', () => {
    const path = join(dir, 'kept.psk');
    writeFileSync(path, 'keep me');
    const error = thrown(() => createPskFile(path));
    expect(ConfigError.is(error)).toBe(true);
    expect((error as ConfigError).exitStatus).toBe(64);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/already exists/);
    expect(readFileSync(path, 'utf8')).toBe('keep me');
  });

  let files = 0;
  it.each([
    ['empty', '', /is empty/],
    ['not hex', `${'zz'.repeat(32)}\n`, /is not hex/],
    ['an odd number of digits', `${'a'.repeat(65)}\n`, /is not hex/],
    ['too short', `${'ab'.repeat(16)}\n`, /holds 16 bytes/],
    ['a PEM key', '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n', /is not hex/],
  ])('refuses a key file that is %s, naming the file', (_what, text, message) => {
    const path = join(dir, `bad-${files++}.psk`);
    writeFileSync(path, text);
    const error = thrown(() => loadPskCredentials(path, 'h1'));
    expect(ConfigError.is(error)).toBe(true);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(message);
  });

  it('accepts surrounding whitespace and upper-case hex (openssl rand -hex 32, edited by hand)', () => {
    const path = join(dir, 'hand.psk');
    writeFileSync(path, `  ${'AB'.repeat(32)}\r\n\n`);
    expect(Buffer.from(loadPskCredentials(path, 'h1').psk).toString('hex')).toBe('ab'.repeat(32));
  });

  it('refuses a missing file, a directory and a device with a typed error naming them', () => {
    for (const [path, message] of [
      [join(dir, 'missing.psk'), /no pre-shared key .*ftvm certs psk --out/],
      [dir, /is not a regular file/],
      ['/dev/zero', /is not a regular file/],
    ] as const) {
      const error = thrown(() => loadPskCredentials(path, 'h1'));
      expect(ConfigError.is(error), String(error)).toBe(true);
      expect(error.message).toContain(path);
      expect(error.message).toMatch(message);
    }
  });

  it('derives one key per name, HMAC-SHA256(cluster key, "ftvm-psk-1" ‖ name)', () => {
    const key = loadPskCredentials(createPskFile(join(dir, 'derive.psk')), 'h1').psk;
    const expected = createHmac('sha256', key).update('ftvm-psk-1h1').digest();
    expect(derivePsk(key, 'h1').equals(expected)).toBe(true);
    expect(derivePsk(key, 'h2').equals(expected)).toBe(false);
  });

  it('takes exactly one of --certs and --psk', () => {
    const path = createPskFile(join(dir, 'choice.psk'));
    for (const source of [{}, { certs: dir, psk: path }]) {
      const error = thrown(() => checkCredentialSource(source));
      expect(ConfigError.is(error)).toBe(true);
      expect(error.message).toMatch(/--certs/);
      expect(error.message).toMatch(/--psk/);
      expect(() => loadClusterCredentials(source, 'h1')).toThrow(error.message);
    }
    expect(loadClusterCredentials({ psk: path }, 'operator')).toMatchObject({ name: 'operator', file: path });
  });
});

describe('the control API on a pre-shared key', () => {
  const dir = tempDir();
  const path = createPskFile(join(dir, 'cluster.psk'));
  const wrong = createPskFile(join(dir, 'wrong.psk'));

  it('knows each caller by its PSK identity, and refuses a wrong key in the handshake', async () => {
    let handled = 0;
    const api = await serveApi(loadPskCredentials(path, 'orchestrator'), { host: '127.0.0.1', port: 0 }, [
      {
        method: 'GET',
        path: '/v1/who',
        peers: '*',
        handle: (request) => {
          handled++;
          return { json: { peer: request.peer } };
        },
      },
      { method: 'POST', path: '/v1/vms', peers: ['operator'], handle: () => ({ json: { ok: true } }) },
    ]);
    const address = `127.0.0.1:${api.port}`;
    const operator = new ApiClient(loadPskCredentials(path, 'operator'), address);
    const host = new ApiClient(loadPskCredentials(path, 'h1'), address);
    const intruder = new ApiClient(loadPskCredentials(wrong, 'operator'), address);
    const certs = tempDir();
    initCertificates(certs);
    const certified = new ApiClient(loadCredentials(certs, 'operator'), address);
    try {
      await expect(operator.call('GET', '/v1/who')).resolves.toEqual({ peer: 'operator' });
      // A new connection each time (no resumed session): the name comes with every handshake.
      for (let call = 0; call < 3; call++) {
        const fresh = new ApiClient(loadPskCredentials(path, 'h1'), address);
        await expect(fresh.call('GET', '/v1/who')).resolves.toEqual({ peer: 'h1' });
        fresh.close();
      }
      await expect(operator.call('POST', '/v1/vms', {})).resolves.toEqual({ ok: true });
      await expect(host.call('POST', '/v1/vms', {})).rejects.toMatchObject({ status: 403 });
      const before = handled;
      await expect(intruder.call('GET', '/v1/who')).rejects.toMatchObject({
        status: 503,
        reason: 'unavailable',
        message: expect.stringContaining(`another pre-shared key than ${wrong}`),
      });
      await expect(certified.call('GET', '/v1/who')).rejects.toMatchObject({
        status: 503,
        message: expect.stringContaining('pre-shared key, --psk, instead of certificates'),
      });
      expect(handled).toBe(before);
    } finally {
      for (const client of [operator, host, intruder, certified]) client.close();
      await api.close();
    }
  });

  it('closes a wrong-key connection before reading a byte of HTTP from it', async () => {
    let handled = 0;
    const api = await serveApi(loadPskCredentials(path, 'orchestrator'), { host: '127.0.0.1', port: 0 }, [
      {
        method: 'GET',
        path: '/v1/vms',
        peers: '*',
        handle: () => {
          handled++;
          return { json: [] };
        },
      },
    ]);
    try {
      const outcome = await probeHttpOverTls({
        host: '127.0.0.1',
        port: api.port,
        ...clientTlsOptions(loadPskCredentials(wrong, 'operator'), '127.0.0.1'),
      });
      expect(outcome).toMatch(/^refused/);
      expect(handled).toBe(0);
    } finally {
      await api.close();
    }
  });
});

describe('an orchestrator on a pre-shared key', () => {
  it('registers a host with the cluster key and never one with another key', async () => {
    const dir = tempDir();
    const path = createPskFile(join(dir, 'cluster.psk'));
    const wrong = createPskFile(join(dir, 'wrong.psk'));
    const local = { host: '127.0.0.1', port: 0 };
    const quiet = pino({ level: 'silent' });
    const orchestrator = new Orchestrator({
      listen: local,
      credentials: loadPskCredentials(path, 'orchestrator'),
      store: new DirectoryStore(join(dir, 'state')),
      sharedDir: join(dir, 'shared'),
      logger: quiet,
    });
    await orchestrator.start();
    const address = `127.0.0.1:${orchestrator.port}`;
    const intruderLines: Record<string, unknown>[] = [];
    const good = new HostAgent({
      name: 'h1',
      listen: local,
      dataDir: join(dir, 'h1'),
      orchestrators: [address],
      credentials: loadPskCredentials(path, 'h1'),
      logger: quiet,
    });
    const intruder = new HostAgent({
      name: 'h2',
      listen: local,
      dataDir: join(dir, 'h2'),
      orchestrators: [address],
      credentials: loadPskCredentials(wrong, 'h2'),
      logger: capturedLogger(intruderLines),
    });
    const operator = new ApiClient(loadPskCredentials(path, 'operator'), address);
    const badOperator = new ApiClient(loadPskCredentials(wrong, 'operator'), address);
    try {
      await good.start();
      await intruder.start();
      // The intruder says why it is not registered, once.
      await until(() => intruderLines.some((line) => line.msg === 'orchestrator not reached yet'), 'told');
      const told = intruderLines.find((line) => line.msg === 'orchestrator not reached yet');
      expect(String(told?.error)).toContain(`another pre-shared key than ${wrong}`);
      let names: string[] = [];
      // Polled meanwhile: several of the intruder's heartbeats (300 ms apart) have been refused.
      const poll = setInterval(() => {
        operator
          .call<{ name: string }[]>('GET', '/v1/hosts')
          .then((hosts) => {
            names = hosts.map((host) => host.name);
          })
          .catch(() => {});
      }, 100);
      try {
        await until(() => names.includes('h1'), 'h1 registered');
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(names).toEqual(['h1']);
      } finally {
        clearInterval(poll);
      }
      await expect(badOperator.call('GET', '/v1/vms')).rejects.toMatchObject({
        status: 503,
        message: expect.stringContaining('pre-shared key'),
      });
    } finally {
      operator.close();
      badOperator.close();
      await intruder.close();
      await good.close();
      await orchestrator.close();
    }
  });
});

describe('logging channels and gateway links on a pre-shared key', () => {
  const dir = tempDir();
  const path = createPskFile(join(dir, 'cluster.psk'));
  const wrong = createPskFile(join(dir, 'wrong.psk'));
  const primary: Handshake = {
    vmId: 'kv',
    epoch: 1,
    role: 'primary',
    protocolVersion: FT_PROTOCOL_VERSION,
    host: 'h1',
  };
  const backup: Handshake = { ...primary, role: 'backup', host: 'h2' };

  it('opens a logging channel between holders of the key, and refuses another key in the TLS handshake', async () => {
    const key = loadPskCredentials(path, 'h2').psk;
    const errors: Error[] = [];
    const opened: LogChannel[] = [];
    const listener = await listenTls(
      {
        host: '127.0.0.1',
        port: 0,
        handshake: backup,
        psk: { identity: 'h2', secret: key },
        onError: (error) => errors.push(error),
      },
      (channel) => opened.push(channel),
    );
    try {
      const refused = await connectTls({
        host: '127.0.0.1',
        port: listener.port,
        handshake: primary,
        psk: { identity: 'h1', secret: loadPskCredentials(wrong, 'h1').psk },
      }).then(
        () => undefined,
        (error: Error) => error,
      );
      expect(ChannelError.is(refused)).toBe(true);
      expect(refused).toMatchObject({ reason: 'authentication' });
      await until(() => errors.length > 0, 'the listener reports the refusal');
      expect(errors[0]).toMatchObject({ reason: 'authentication' });
      expect(opened).toHaveLength(0);

      // The cluster's own TLS options derive the same per-name key as transport's: a handshake.
      const handshook = await new Promise<boolean>((resolve) => {
        const socket = connect({
          host: '127.0.0.1',
          port: listener.port,
          ...clientTlsOptions(loadPskCredentials(path, 'h1'), '127.0.0.1'),
        });
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      expect(handshook).toBe(true);

      const channel = await connectTls({
        host: '127.0.0.1',
        port: listener.port,
        handshake: primary,
        psk: { identity: 'h1', secret: loadPskCredentials(path, 'h1').psk },
      });
      await until(() => opened.length === 1, 'the backup has its channel');
      expect(opened[0]?.peer).toMatchObject({ host: 'h1', role: 'primary' });
      channel.close({ flush: false });
      opened[0]?.close({ flush: false });
    } finally {
      await listener.close();
    }
  });

  it("refuses a host's gateway link with another key before reading its hello", async () => {
    const lines: Record<string, unknown>[] = [];
    const gateway = new GatewayService({
      listen: { host: '127.0.0.1', port: 0 },
      credentials: loadPskCredentials(path, 'gateway'),
      orchestrators: [],
      logger: capturedLogger(lines),
    });
    await gateway.start();
    const states: { connected: boolean; error?: string }[] = [];
    const link = (file: string) =>
      new HostFrameLink(
        loadPskCredentials(file, 'h1'),
        `127.0.0.1:${gateway.port}`,
        { vm: 'kv', host: 'h1' },
        () => {},
        (connected, error) => states.push({ connected, error }),
      );
    const bad = link(wrong);
    try {
      await until(() => states.length > 0, 'the link fails');
      bad.close();
      expect(states[0]).toMatchObject({ connected: false });
      expect(states[0]?.error).toContain('pre-shared key');
      // Nothing from it was read: no hello was judged.
      expect(lines.filter((line) => String(line.msg).startsWith('link refused'))).toHaveLength(0);
      // With the key, the hello is read (and refused: no orchestrator assigned kv to h1).
      const good = link(path);
      try {
        await until(() => states.some((state) => state.connected), 'the link connects');
        await until(
          () => lines.some((line) => line.msg === 'link refused: the VM is not assigned to this host'),
          'the hello judged',
        );
      } finally {
        good.close();
      }
    } finally {
      bad.close();
      await gateway.close();
    }
  });
});
