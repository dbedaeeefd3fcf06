import { mkdtempSync, rmSync } from 'node:fs';
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
});
