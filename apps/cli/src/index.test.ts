import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ImageError } from '@ftvm/core';
import { describe, expect, it } from 'vitest';
import packageJson from '../package.json' with { type: 'json' };
import { capture } from '../test/support.js';
import { main, reportFailure } from './index.js';

describe('ftvm command', () => {
  it('prints help that names the command and its options, and exits 0', async () => {
    const output = capture();
    expect(await main(['node', 'ftvm', '--help'], output)).toBe(0);
    expect(output.out).toContain('Usage: ftvm');
    expect(output.out).toContain('--version');
  });

  it('prints its version', async () => {
    const output = capture();
    expect(await main(['node', 'ftvm', '--version'], output)).toBe(0);
    expect(output.out.trim()).toBe(packageJson.version);
  });

  it('rejects an unknown option with one line and the usage status 64', async () => {
    const output = capture();
    expect(await main(['node', 'ftvm', '--no-such-flag'], output)).toBe(64);
    expect(output.err).toMatch(/^ftvm: unknown option '--no-such-flag'/);
  });

  it('says in one line that no command was given, with the usage status 64', async () => {
    const output = capture();
    expect(await main(['node', 'ftvm'], output)).toBe(64);
    expect(output.err).toBe("ftvm: no command given; try 'ftvm --help'\n");
    expect(output.out).toBe('');
  });

  it('reports an ftvm error as one line with its sysexits status', () => {
    const output = capture();
    expect(reportFailure(new ImageError('hello.elf: not an ELF file'), output)).toBe(65);
    expect(output.err).toBe('ftvm: hello.elf: not an ELF file\n');
  });

  const bin = fileURLToPath(new URL('../bin/ftvm.js', import.meta.url));
  const built = existsSync(fileURLToPath(new URL('../dist/index.js', import.meta.url)));
  it.skipIf(!built)('runs as a real process through its bin (needs `npm run build`)', () => {
    const result = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: ftvm');
  });
});
