import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { capture } from '../../test/support.js';
import { main } from '../index.js';

describe('the cluster commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ftvm-cli-cluster-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const certs = join(dir, 'certs');

  it('creates a CA once, then refuses to replace it', async () => {
    const first = capture();
    expect(await main(['node', 'ftvm', 'certs', 'init', '--dir', certs], first)).toBe(0);
    expect(first.out).toMatch(/created the cluster CA/);
    const again = capture();
    expect(await main(['node', 'ftvm', 'certs', 'init', '--dir', certs], again)).toBe(64);
    expect(again.err).toMatch(/^ftvm: .*already holds a CA/);
  });

  it('names a missing daemon option in one line, with the usage status', async () => {
    const output = capture();
    expect(await main(['node', 'ftvm', 'host', '--data', dir, '--certs', certs], output)).toBe(64);
    expect(output.err.trim()).toMatch(/^ftvm: the command line: name is required \(--name/);
    expect(output.err.trim().split('\n')).toHaveLength(1);
  });

  it('reports an orchestrator that cannot be reached as an I/O failure (74), in one line', async () => {
    const output = capture();
    const status = await main(
      ['node', 'ftvm', 'vm', 'inspect', 'kv', '--orchestrator', '127.0.0.1:1', '--certs', certs],
      output,
    );
    expect(status).toBe(74);
    expect(output.err).toMatch(/^ftvm: 127\.0\.0\.1:1: connect ECONNREFUSED/);
  });

  it('checks what it was given before it asks the orchestrator', async () => {
    const drive = capture();
    const args = ['vm', 'create', 'kv', '--orchestrator', '127.0.0.1:1', '--certs', certs];
    expect(
      await main(['node', 'ftvm', ...args, '--kernel', '/no/such.elf', '--drive', 'file=x.img'], drive),
    ).toBe(64);
    expect(drive.err).toMatch(/^ftvm: --drive file=x\.img: expected size=SIZE/);
    const kernel = capture();
    expect(
      await main(['node', 'ftvm', ...args, '--kernel', '/no/such.elf', '--drive', 'size=16M'], kernel),
    ).toBe(66);
    expect(kernel.err).toMatch(/^ftvm: cannot read guest image \/no\/such\.elf: no such file/);
  });

  describe('with a pre-shared key', () => {
    const psk = join(dir, 'keys', 'cluster.psk');

    it('creates a key file once (hex, mode 0600), then refuses to replace it', async () => {
      const first = capture();
      expect(await main(['node', 'ftvm', 'certs', 'psk', '--out', psk], first)).toBe(0);
      expect(first.out).toMatch(/created the pre-shared key .*cluster\.psk/);
      expect(statSync(psk).mode & 0o777).toBe(0o600);
      const key = readFileSync(psk, 'utf8');
      expect(key).toMatch(/^[0-9a-f]{64}\n$/);
      const again = capture();
      expect(await main(['node', 'ftvm', 'certs', 'psk', '--out', psk], again)).toBe(64);
      expect(again.err).toMatch(/^ftvm: .*cluster\.psk already exists/);
      expect(readFileSync(psk, 'utf8')).toBe(key);
    });

    it('takes --psk FILE wherever it takes --certs DIR', async () => {
      const output = capture();
      const status = await main(
        ['node', 'ftvm', 'vm', 'inspect', 'kv', '--orchestrator', '127.0.0.1:1', '--psk', psk],
        output,
      );
      expect(status).toBe(74);
      expect(output.err).toMatch(/^ftvm: 127\.0\.0\.1:1: connect ECONNREFUSED/);
      for (const command of ['orchestrator', 'host', 'gateway', 'vm create', 'vm ls', 'hosts']) {
        const help = capture();
        expect(await main(['node', 'ftvm', ...command.split(' '), '--help'], help)).toBe(0);
        expect(help.out, command).toMatch(/--certs <dir>/);
        expect(help.out, command).toMatch(/--psk <file>\s+the cluster's pre-shared key file/);
      }
    });

    it('wants exactly one of --certs and --psk, as a usage error in one line', async () => {
      const cases = [
        [['vm', 'ls', '--orchestrator', '127.0.0.1:1'], /is required/],
        [['vm', 'ls', '--orchestrator', '127.0.0.1:1', '--certs', certs, '--psk', psk], /alternatives/],
        [['hosts', '--orchestrator', '127.0.0.1:1'], /is required/],
        [['host', '--name', 'h1', '--data', join(dir, 'h1'), '--orchestrator', '127.0.0.1:1'], /is required/],
        [['gateway', '--orchestrator', '127.0.0.1:1', '--certs', certs, '--psk', psk], /alternatives/],
        [['orchestrator', '--store', join(dir, 'state')], /is required/],
      ] as const;
      for (const [args, message] of cases) {
        const output = capture();
        expect(await main(['node', 'ftvm', ...args], output), args.join(' ')).toBe(64);
        expect(output.err.trim().split('\n'), args.join(' ')).toHaveLength(1);
        expect(output.err, args.join(' ')).toMatch(/^ftvm: --certs (DIR .*--psk FILE|and --psk)/);
        expect(output.err, args.join(' ')).toMatch(message);
      }
      // The refused orchestrator created nothing.
      expect(existsSync(join(dir, 'state'))).toBe(false);
    });

    it('names a key file that is not a key, with the usage status', async () => {
      const bad = join(dir, 'bad.psk');
      writeFileSync(bad, 'not a key\n');
      for (const args of [
        ['vm', 'ls', '--orchestrator', '127.0.0.1:1', '--psk', bad],
        ['host', '--name', 'h1', '--data', join(dir, 'h1'), '--orchestrator', '127.0.0.1:1', '--psk', bad],
      ]) {
        const output = capture();
        expect(await main(['node', 'ftvm', ...args], output)).toBe(64);
        expect(output.err).toBe(
          `ftvm: pre-shared key ${bad} is not hex (expected 64 hex digits, as \`ftvm certs psk\` writes)\n`,
        );
      }
      const missing = capture();
      expect(
        await main(
          ['node', 'ftvm', 'vm', 'ls', '--psk', join(dir, 'none.psk'), '--orchestrator', '127.0.0.1:1'],
          missing,
        ),
      ).toBe(64);
      expect(missing.err).toMatch(
        /^ftvm: no pre-shared key .*none\.psk: make one with `ftvm certs psk --out/,
      );
    });
  });
});
