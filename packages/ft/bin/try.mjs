import { register } from 'node:module';
register('./ts-hooks.mjs', import.meta.url);
const { runSeed } = await import('../src/simulator/index.ts');
const seed = Number(process.argv[2]);
const r = await runSeed(seed, {});
console.log(r.ok, r.config); console.log(r.schedule.join('\n')); console.log(r.failures.join('\n'));
if (process.argv[3]) console.log(r.trace.filter(l => !l.includes('console:')).join('\n'));
