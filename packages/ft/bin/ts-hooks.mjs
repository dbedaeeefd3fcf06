// Module hooks that let Node run the workspace's TypeScript sources directly (no build first):
// packages resolve through the `@ftvm/source` export condition, as vitest does, a relative `.js`
// import finds its `.ts` file, and `.ts` files are transpiled with esbuild (already installed: tsup
// and vite use it). Registered by simulate.mjs with `module.register`.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const SOURCE_CONDITION = '@ftvm/source';

export async function resolve(specifier, context, nextResolve) {
  const conditions = context.conditions.includes(SOURCE_CONDITION)
    ? context.conditions
    : [SOURCE_CONDITION, ...context.conditions];
  const withSources = { ...context, conditions };
  try {
    return await nextResolve(specifier, withSources);
  } catch (error) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    if (relative && specifier.endsWith('.js') && error?.code === 'ERR_MODULE_NOT_FOUND') {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, withSources);
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const { code } = await transform(await readFile(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'es2022',
    sourcefile: path,
    sourcemap: 'inline',
    tsconfigRaw: { compilerOptions: { useDefineForClassFields: true, verbatimModuleSyntax: true } },
  });
  return { format: 'module', source: code, shortCircuit: true };
}
