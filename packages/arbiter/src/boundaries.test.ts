import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('package boundaries', () => {
  it('the main entry (src/*.ts) imports no node: module and nothing but @ftvm/core', () => {
    const directory = new URL('.', import.meta.url).pathname;
    const sources = readdirSync(directory).filter(
      // The contract suite is a test helper (it imports vitest) that no entry exports.
      (name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && name !== 'contract-suite.ts',
    );
    expect(sources).toEqual(expect.arrayContaining(['index.ts', 'memory-arbiter.ts', 'validate.ts']));
    for (const name of sources) {
      const source = readFileSync(join(directory, name), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((match) => match[1]!);
      for (const imported of imports) {
        expect(imported.startsWith('./') || imported === '@ftvm/core', `${name} imports ${imported}`).toBe(
          true,
        );
      }
    }
  });
});
