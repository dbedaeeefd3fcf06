#!/usr/bin/env node
import { exitWhenFlushed, guardProcess, main } from '../dist/index.js';

guardProcess();
// Exits as soon as the command is done, whatever handles a user device left open.
await exitWhenFlushed(await main(process.argv));
