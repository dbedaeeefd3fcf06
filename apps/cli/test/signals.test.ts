import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { built, echoUntilQ, scratchDirectory, writeRawProgram } from './support.js';
import { killStarted, readyThenEcho, recordLongRun, startFtvm } from './terminal-support.js';

const directory = scratchDirectory('ftvm-signals-');
const ready = writeRawProgram(join(directory, 'ready.bin'), readyThenEcho);

afterEach(killStarted);

describe.skipIf(!built)('signals stop machine commands as QEMU does (needs `npm run build`)', () => {
  for (const [signal, number] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
  ] as const) {
    it(`run: ${signal} exits ${128 + number} with "ftvm: terminating on signal ${number}"`, async () => {
      const run = startFtvm(['run', '--kernel', ready]);
      await run.waitFor('R'); // the guest runs
      run.child.kill(signal);
      expect(await run.exited()).toBe(128 + number);
      expect(run.stderr()).toBe(`ftvm: terminating on signal ${number}\n`);
    });
  }

  describe('replay', () => {
    const recording = join(directory, 'long.ftlog');
    beforeAll(async () => {
      await recordLongRun(writeRawProgram(join(directory, 'echo.bin'), echoUntilQ), recording, 4000);
    }, 120_000);

    it('replay: SIGTERM exits 143 with the message, and --stats still prints', async () => {
      const replay = startFtvm(['replay', recording, '--stats']);
      await replay.waitFor('a\n'); // the replay is under way: the guest echoed its first line
      replay.child.kill('SIGTERM');
      expect(await replay.exited()).toBe(143);
      expect(replay.stderr()).toMatch(/^ftvm: terminating on signal 15\nftvm: steps=\d+ /);
      // Stopped early: the recording's last echo ('q') was never replayed.
      expect(replay.output()).toBe('a\n');
    });
  });
});
