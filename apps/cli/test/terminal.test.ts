import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath } from '@ftvm/guests';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { built, echoUntilQ, ftvm, scratchDirectory, writeRawProgram } from './support.js';
import {
  ftvmCommand,
  killStarted,
  noPseudoTerminal,
  readyThenEcho,
  recordLongRun,
  screenOf,
  shellWord,
  startInTerminal,
} from './terminal-support.js';

const directory = scratchDirectory('ftvm-terminal-');
const echo = writeRawProgram(join(directory, 'echo.bin'), echoUntilQ);
/** Once its `R` shows, the console is attached: stdin is raw, keys go to the guest. */
const ready = writeRawProgram(join(directory, 'ready.bin'), readyThenEcho);

afterEach(killStarted);

describe.skipIf(!built || noPseudoTerminal !== undefined)(
  `ftvm on a terminal (needs \`npm run build\`${noPseudoTerminal ? `; skipped: ${noPseudoTerminal}` : ''})`,
  () => {
    const clock = join(directory, 'clock.ftlog');
    const long = join(directory, 'long.ftlog');
    let consoleLines: string[] = [];

    beforeAll(async () => {
      const recorded = ftvm(['record', '--kernel', imagePath('clock'), '--clock', 'icount', '-o', clock]);
      expect(recorded.status).toBe(0);
      consoleLines = recorded.stdout.split('\n').filter(Boolean);
      await recordLongRun(echo, long, 4000);
    }, 120_000);

    it('replays with each console line whole on its own line, then the stats and the next command', async () => {
      const shell = startInTerminal(`${ftvmCommand(['replay', clock, '--stats'])}; echo next`);
      expect(await shell.exited()).toBe(0);
      const screen = screenOf(shell.output());
      // Nothing of the progress line is left, nothing overwrote a console line, and the stats
      // line and the shell's next output come after the console, not over it.
      expect(screen.slice(0, consoleLines.length)).toEqual(consoleLines);
      expect(screen.slice(consoleLines.length)).toEqual([
        expect.stringMatching(/^ftvm: steps=\d+ seconds=\d+\.\d+ mips=\d+\.\d+$/),
        'next',
      ]);
    });

    it('shows elapsed time, rate and time left; Ctrl-C stops the replay with 130 and the terminal as found', async () => {
      const shell = startInTerminal(ftvmCommand(['replay', long]));
      await shell.waitFor(/\| \d+:\d\d \| \d+\.\d MIPS \| ETA \d+:\d\d/);
      shell.write('\x03'); // the terminal's Ctrl-C: SIGINT to the replay
      expect(await shell.exited()).toBe(130);
      const transcript = shell.output();
      expect(transcript).toContain('ftvm: terminating on signal 2');
      // Line wrap, if anything turned it off, is back on.
      expect(transcript.lastIndexOf('\x1b[?7l')).toBeLessThanOrEqual(transcript.lastIndexOf('\x1b[?7h'));
      const screen = screenOf(transcript);
      expect(screen.some((line) => line.includes('replay ['))).toBe(false);
      expect(screen.at(-1)).toBe('ftvm: terminating on signal 2');
    });

    it('prints the escape keys on Ctrl-A h, as QEMU does', async () => {
      const shell = startInTerminal(ftvmCommand(['run', '--kernel', ready]));
      await shell.waitFor('R');
      shell.write('hi');
      await shell.waitFor('Rhi');
      shell.write('\x01h');
      await shell.waitFor('C-a C-a', 10_000);
      shell.write('\x01x');
      expect(await shell.exited()).toBe(0);
      const screen = screenOf(shell.output());
      expect(screen).toContain('C-a h    print this help');
      expect(screen).toContain('C-a x    exit emulator');
      expect(screen).toContain('C-a C-a  sends C-a');
    });

    it('stops `run` on SIGTERM with 143 and the message, the terminal back in cooked mode', async () => {
      const pidFile = join(directory, 'run.pid');
      // exec: the shell's pid becomes ftvm's, so the test can signal it.
      const shell = startInTerminal(
        `sh -c ${shellWord(`echo $$ > ${shellWord(pidFile)}; exec ${ftvmCommand(['run', '--kernel', ready])}`)}; ` +
          'echo "status=$?"; stty -a',
      );
      await shell.waitFor('R');
      shell.write('typed');
      await shell.waitFor('Rtyped');
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
      expect(await shell.exited()).toBe(0);
      const transcript = shell.output();
      expect(transcript).toContain('ftvm: terminating on signal 15');
      expect(transcript).toContain('status=143');
      // Raw mode undone: the line discipline echoes and edits lines again.
      expect(transcript).toMatch(/(^|\s)icanon(\s|$)/m);
      expect(transcript).toMatch(/(^|\s)echo(\s|$)/m);
    });
  },
);
