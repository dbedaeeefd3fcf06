#!/usr/bin/env node
// The seeded simulator of fault-tolerant kv VMs (packages/ft/src/simulator): runs the TypeScript
// sources directly (see ts-hooks.mjs), no build first.
//   npm run simulate -- --seeds N [--from S]      (from the repository root or packages/ft)
import { register } from 'node:module';

// A reader that went away (`| head`) ends the output, not the run with a stack trace.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
register('./ts-hooks.mjs', import.meta.url);
const { main } = await import('../src/simulator/cli.ts');
process.exitCode = await main(process.argv.slice(2));
