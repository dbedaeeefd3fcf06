#!/usr/bin/env node
// Copies the repository's LICENSE into every workspace package, so that each package's tarball
// carries it (npm packs a package's LICENSE whatever its `files` field says).
// Usage: node scripts/copy-license.mjs [--check]
//   --check  changes nothing; lists the packages whose LICENSE is missing or differs, exits 1 if any.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const license = readFileSync(join(root, 'LICENSE'));

/** The workspace package directories: the root package.json's `workspaces`, each `dir/*`. */
function workspacePackages() {
  const { workspaces } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  return workspaces.flatMap((pattern) => {
    if (!pattern.endsWith('/*')) throw new Error(`workspace pattern ${pattern}: only "dir/*" is handled`);
    const parent = join(root, pattern.slice(0, -2));
    return readdirSync(parent, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && existsSync(join(parent, entry.name, 'package.json')))
      .map((entry) => join(parent, entry.name));
  });
}

const stale = [];
for (const dir of workspacePackages()) {
  const target = join(dir, 'LICENSE');
  if (existsSync(target) && readFileSync(target).equals(license)) continue;
  if (check) stale.push(relative(root, dir));
  else writeFileSync(target, license);
}
if (stale.length > 0) {
  console.error(
    `LICENSE missing or different from the root's in: ${stale.join(', ')} (run node scripts/copy-license.mjs)`,
  );
  process.exit(1);
}
