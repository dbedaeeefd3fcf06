import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
await import(process.argv[2]);
