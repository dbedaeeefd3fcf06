import { spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/support.js';
import { VM_CREATE } from './api.js';
import { commonName, initCertificates, issueCertificate, loadCredentials } from './certs.js';
import { HOST_CONFIG, resolveConfig } from './config.js';
import { encodeFrame, FrameReader } from './frame-link.js';
import { parseGatewayForward } from './gateway-service.js';
import { ApiClient, ApiError, parseBody, serveApi, splitAddress } from './http.js';
import { DirectoryStore } from './store.js';

describe('certificates', () => {
  const dir = tempDir();
  initCertificates(dir);

  it('makes a CA once, and refuses to replace it', () => {
    expect(existsSync(join(dir, 'ca.crt'))).toBe(true);
    expect(statSync(join(dir, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(() => initCertificates(dir)).toThrow(/already holds a CA/);
  });

  it('issues a certificate whose common name is the component, and re-issues it to rotate', () => {
    const first = issueCertificate(dir, 'h1');
    expect(commonName(first.cert)).toBe('h1');
    const second = issueCertificate(dir, 'h1');
    expect(second.cert).not.toBe(first.cert);
    expect(loadCredentials(dir, 'h1').cert).toBe(second.cert);
  });

  it('issues on first use where the CA key is, and explains what to do where it is not', () => {
    expect(commonName(loadCredentials(dir, 'gateway').cert)).toBe('gateway');
    const elsewhere = tempDir();
    expect(() => loadCredentials(elsewhere, 'h9')).toThrow(/ftvm certs issue/);
    expect(() => issueCertificate(dir, '../etc/passwd')).toThrow(/invalid component name/);
  });
});

describe('the control API', () => {
  const dir = tempDir();
  initCertificates(dir);
  const server = loadCredentials(dir, 'orchestrator');

  it('answers only the names a route allows, and names the field a body gets wrong', async () => {
    const api = await serveApi(server, { host: '127.0.0.1', port: 0 }, [
      {
        method: 'POST',
        path: '/v1/vms',
        peers: ['operator'],
        handle: (request) => ({ json: parseBody(VM_CREATE, request.body) }),
      },
      {
        method: 'GET',
        path: '/v1/vms/:name',
        peers: '*',
        handle: (request) => ({ json: { name: request.params.name, peer: request.peer } }),
      },
    ]);
    const operator = new ApiClient(loadCredentials(dir, 'operator'), `127.0.0.1:${api.port}`);
    const host = new ApiClient(loadCredentials(dir, 'h1'), `127.0.0.1:${api.port}`);
    try {
      await expect(operator.call('GET', '/v1/vms/kv')).resolves.toEqual({ name: 'kv', peer: 'operator' });
      await expect(host.call('POST', '/v1/vms', {})).rejects.toMatchObject({
        status: 403,
        reason: 'forbidden',
      });
      await expect(
        operator.call('POST', '/v1/vms', { name: 'kv', image: 'AA==', ramBytes: 'lots' }),
      ).rejects.toMatchObject({
        status: 400,
        message: expect.stringMatching(/^ramBytes: /),
      });
      await expect(operator.call('DELETE', '/v1/vms/kv')).rejects.toMatchObject({ status: 405 });
      await expect(operator.call('GET', '/nothing')).rejects.toMatchObject({ status: 404 });
      await expect(operator.call('GET', '/nothing')).rejects.toBeInstanceOf(ApiError);
    } finally {
      operator.close();
      host.close();
      await api.close();
    }
  });

  it('parses addresses, and refuses what is not HOST:PORT', () => {
    expect(splitAddress('127.0.0.1:7000')).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(splitAddress('[::1]:7000')).toEqual({ host: '::1', port: 7000 });
    expect(() => splitAddress('7000')).toThrow(/HOST:PORT/);
    expect(() => splitAddress('a:99999')).toThrow(/HOST:PORT/);
  });
});

describe('the embedded store', () => {
  it('keeps documents by key, lists a folder in order, and forgets deleted ones', async () => {
    const store = new DirectoryStore(tempDir());
    await store.put('vms/b', { n: 2 });
    await store.put('vms/a', { n: 1 });
    await store.put('images/a', { image: 'x' });
    expect(await store.get('vms/a')).toEqual({ n: 1 });
    expect(await store.list('vms/')).toEqual([
      ['vms/a', { n: 1 }],
      ['vms/b', { n: 2 }],
    ]);
    await store.delete('vms/a');
    expect(await store.get('vms/a')).toBeUndefined();
    await expect(store.put('../../x/y', {})).rejects.toThrow(/invalid store key/);
  });

  it('allows one orchestrator at a time', async () => {
    const dir = tempDir();
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      writeFileSync(join(dir, 'orchestrator.pid'), `${sleeper.pid}\n`);
      await expect(new DirectoryStore(dir).lead('o1')).rejects.toThrow(/another orchestrator/);
    } finally {
      sleeper.kill('SIGKILL');
    }
    // A lock left by a process that is gone is taken over.
    await new Promise((resolve) => sleeper.once('exit', resolve));
    await expect(new DirectoryStore(dir).lead('o1')).resolves.toBeUndefined();
  });
});

describe('the network link', () => {
  it('splits frames wherever the bytes are cut, and ends a stream with a zero length', () => {
    const frames: number[][] = [];
    const reader = new FrameReader((frame) => frames.push([...frame]));
    const bytes = Buffer.concat([encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array([4]))]);
    for (const byte of bytes) expect(reader.push(Buffer.from([byte]))).toBe(true);
    expect(frames).toEqual([[1, 2, 3], [4]]);
    expect(reader.push(Buffer.from([0, 0]))).toBe(false);
  });

  it("parses the gateway's --forward into a VM", () => {
    expect(parseGatewayForward('udp::5555-kv:5555')).toEqual({
      vm: 'kv',
      rule: {
        protocol: 'udp',
        hostAddress: undefined,
        hostPort: 5555,
        guestAddress: undefined,
        guestPort: 5555,
      },
    });
    expect(parseGatewayForward('udp:127.0.0.1:0-kv:7').rule.hostAddress).toBe('127.0.0.1');
    expect(() => parseGatewayForward('tcp::5555-kv:5555')).toThrow(/udp:\[HOSTIP\]/);
    expect(() => parseGatewayForward('udp::5555-kv:0')).toThrow(/invalid --forward/);
  });
});

describe('configuration files', () => {
  it('merges a file under the flags given, and names the field that is wrong or missing', () => {
    const dir = tempDir();
    const file = join(dir, 'host.json');
    writeFileSync(
      file,
      JSON.stringify({ name: 'h1', data: '/var/lib/ftvm', orchestrator: '10.0.0.1:7000', certs: 'certs' }),
    );
    const config = resolveConfig(
      HOST_CONFIG,
      file,
      { listen: '10.0.0.11:7101' },
      { listen: '127.0.0.1:7101' },
    );
    expect(config).toMatchObject({ name: 'h1', listen: '10.0.0.11:7101', orchestrator: '10.0.0.1:7000' });
    expect(resolveConfig(HOST_CONFIG, file, {}, { listen: '127.0.0.1:7101' }).listen).toBe('127.0.0.1:7101');
    writeFileSync(
      file,
      JSON.stringify({ name: 'h1', data: 'd', orchestrator: 'x:1', certs: 'c', listen: 'nowhere' }),
    );
    expect(() => resolveConfig(HOST_CONFIG, file, {}, {})).toThrow(
      /^config .*host\.json: listen: an address HOST:PORT$/,
    );
    writeFileSync(
      file,
      JSON.stringify({ name: 'h1', data: 'd', orchestrator: 'x:1', certs: 'c', listen: 'a:1', lisen: 'b:2' }),
    );
    expect(() => resolveConfig(HOST_CONFIG, file, {}, {})).toThrow(/lisen/);
    expect(() => resolveConfig(HOST_CONFIG, undefined, { name: 'h1' }, {})).toThrow(
      /^the command line: listen is required \(--listen, or "listen" in a --config file\)$/,
    );
    writeFileSync(file, '{ not json');
    expect(() => resolveConfig(HOST_CONFIG, file, {}, {})).toThrow(/is not JSON/);
  });
});
