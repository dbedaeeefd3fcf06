#!/usr/bin/env node
// `npm run demo`: the same as `ftvm demo` with the same options.
import { main } from '../dist/index.js';

process.exitCode = await main(process.argv);
