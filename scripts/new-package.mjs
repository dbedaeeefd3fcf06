#!/usr/bin/env node
// Creates the skeleton of a workspace package: package.json, tsconfig, tsup and vitest configs.
// Usage: node scripts/new-package.mjs packages/NAME "description" [dependency ...]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const [dir, description, ...dependencies] = process.argv.slice(2);
if (!dir || !description) {
  console.error('usage: node scripts/new-package.mjs packages/NAME "description" [dependency ...]');
  process.exit(64);
}
const name = `@ftvm/${basename(dir)}`;
mkdirSync(join(dir, 'src'), { recursive: true });
const write = (file, text) => {
  const path = join(dir, file);
  if (!existsSync(path)) writeFileSync(path, text);
};
const entry = (stem) => ({
  '@ftvm/source': `./src/${stem}.ts`,
  import: { types: `./dist/${stem}.d.ts`, default: `./dist/${stem}.js` },
  require: { types: `./dist/${stem}.d.cts`, default: `./dist/${stem}.cjs` },
});
const packageJson = {
  name,
  version: '0.0.0',
  description,
  license: 'Apache-2.0',
  type: 'module',
  sideEffects: false,
  engines: { node: '>=20' },
  main: './dist/index.cjs',
  module: './dist/index.js',
  types: './dist/index.d.ts',
  exports: { '.': entry('index'), './package.json': './package.json' },
  files: ['dist', 'README.md', 'LICENSE'],
  scripts: { build: 'tsup', typecheck: 'tsc --noEmit -p .', test: 'vitest run' },
  dependencies: Object.fromEntries(dependencies.map((dependency) => [dependency, '0.0.0'])),
};
write('package.json', `${JSON.stringify(packageJson, null, 2)}\n`);
write('tsconfig.json', `{\n  "extends": "../../tsconfig.base.json",\n  "include": ["src", "*.ts"]\n}\n`);
write(
  'tsup.config.ts',
  `import { defineConfig } from 'tsup';\nimport { packageBuild } from '../../tsup.shared.ts';\n\nexport default defineConfig(packageBuild());\n`,
);
write(
  'vitest.config.ts',
  `import { sharedTestConfig } from '../../vitest.shared.ts';\n\nexport default sharedTestConfig;\n`,
);
// Every tarball carries the license its package.json names.
write('LICENSE', readFileSync(new URL('../LICENSE', import.meta.url), 'utf8'));
console.log(`created ${name} in ${dir}`);
