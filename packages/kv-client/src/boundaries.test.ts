import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('the package boundaries', () => {
  it('keeps node: modules out of the main entry (only src/node/ may use them)', () => {
    const source = fileURLToPath(new URL('.', import.meta.url));
    const modules = readdirSync(source).filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts'));
    expect(modules).toContain('index.ts');
    for (const name of modules)
      expect(readFileSync(join(source, name), 'utf8'), name).not.toMatch(/from ['"]node:|import\(['"]node:/);
  });
});
