/** What the CLI's terminal and signal tests share: a pseudo-terminal, a screen, a running ftvm. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { bin, echoUntilQ } from './support.js';

/** util-linux `script` gives a command a real pseudo-terminal; the reason when it cannot. */
export const noPseudoTerminal: string | undefined =
  process.platform !== 'linux'
    ? 'the pseudo-terminal tests use util-linux script (Linux)'
    : spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0
      ? undefined
      : 'util-linux `script` is not installed (apt-get install bsdutils): no pseudo-terminal';

/** Quotes a word for `sh`. */
export function shellWord(word: string): string {
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/** `node bin/ftvm.js ARGS…` as a shell command. */
export function ftvmCommand(args: readonly string[]): string {
  return [process.execPath, bin, ...args].map(shellWord).join(' ');
}

/** A process whose output is collected, that a test can wait on, write to and signal. */
export interface Running {
  readonly child: ChildProcess;
  /** Everything it wrote (stdout and, on a terminal, stderr: the terminal's transcript). */
  output(): string;
  stderr(): string;
  /** Resolves once the output matches, or fails after `timeoutMs`, with what was written so far. */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  write(text: string): void;
  /** Resolves with the exit status once its pipes closed (or fails after `timeoutMs`). */
  exited(timeoutMs?: number): Promise<number | null>;
}

const started: ChildProcess[] = [];

/** Kills (by pid) what {@link start} started and is still running: for `afterEach`. */
export function killStarted(): void {
  for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
}

function start(command: string, args: readonly string[], options: { cwd?: string } = {}): Running {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd });
  started.push(child);
  let output = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  child.stdin?.on('error', () => {});
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = <T>(promise: Promise<T>, timeoutMs: number, what: () => string) =>
    Promise.race([
      promise,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${what()}; output so far: ${JSON.stringify(output)}`)), timeoutMs),
      ),
    ]);
  return {
    child,
    output: () => output,
    stderr: () => stderr,
    async waitFor(pattern, timeoutMs = 30_000) {
      const matches = () => (typeof pattern === 'string' ? output.includes(pattern) : pattern.test(output));
      await deadline(
        (async () => {
          while (!matches()) {
            if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before ${pattern}`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        })(),
        timeoutMs,
        () => `no ${pattern} within ${timeoutMs} ms`,
      );
    },
    write(text) {
      child.stdin?.write(text);
    },
    exited: (timeoutMs = 30_000) => deadline(closed, timeoutMs, () => `still running after ${timeoutMs} ms`),
  };
}

/** Starts `ftvm ARGS…` with pipes on stdin, stdout and stderr. */
export function startFtvm(args: readonly string[], options: { cwd?: string } = {}): Running {
  return start(process.execPath, [bin, ...args], options);
}

/**
 * Starts a shell command on a pseudo-terminal (stdin, stdout and stderr all on it); what it writes
 * comes back as the terminal's transcript, and the returned status is the command's.
 */
export function startInTerminal(command: string): Running {
  // -q: no banner; -f: flush at once; -e: the command's status; -c: the command.
  return start('script', ['-qfec', command, '/dev/null']);
}

/**
 * What a terminal shows after `transcript`: the lines of the screen (as if it scrolled without
 * end). Understands what the CLI and the progress bar libraries write: CR, LF, erase to end of
 * line, cursor to column 1, save and restore the cursor; other escape sequences change nothing shown.
 */
export function screenOf(transcript: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let column = 0;
  let saved = { row: 0, column: 0 };
  for (let i = 0; i < transcript.length; i++) {
    const char = transcript[i] as string;
    if (char === '\x1b') {
      const csi = transcript[i + 1] === '[' ? /^([?\d;]*)([A-Za-z])/.exec(transcript.slice(i + 2)) : null;
      if (csi) {
        const [sequence, parameter, command] = csi;
        if (command === 'K' && (parameter === '' || parameter === '0')) lines[row]?.splice(column);
        if (command === 'G') column = Math.max(0, Number(parameter || '1') - 1);
        i += 1 + sequence.length;
        continue;
      }
      const next = transcript[i + 1];
      if (next === '7') saved = { row, column };
      if (next === '8') ({ row, column } = saved);
      i += 1;
      continue;
    }
    if (char === '\r') column = 0;
    else if (char === '\n') {
      row++;
      lines[row] ??= [];
    } else {
      const line = lines[row] as string[];
      while (line.length < column) line.push(' ');
      line[column++] = char;
    }
  }
  const screen = lines.map((line) => line.join('').trimEnd());
  while (screen.length > 0 && screen.at(-1) === '') screen.pop();
  return screen;
}

/**
 * Records the echo guest (`echoUntilQ` at `program`) typing a line `a` at once and `q` after
 * `busyMs`: a recording whose replay prints `a` at its start and then runs for a while (the guest
 * polls the UART all along), for tests that must act while a replay runs. (The line is ended: the
 * replay's progress is not drawn after a console line left unfinished.)
 */
export async function recordLongRun(program: string, recording: string, busyMs: number): Promise<void> {
  const recorder = startFtvm(['record', '--kernel', program, '-o', recording]);
  recorder.write('a\n');
  await recorder.waitFor('a\n');
  await new Promise((resolve) => setTimeout(resolve, busyMs));
  recorder.write('q');
  const status = await recorder.exited(60_000);
  if (status !== 0) throw new Error(`record failed (${status}): ${recorder.stderr()}`);
}

/** Prints `R` (it runs, and a terminal's stdin is raw by now), then does what `echoUntilQ` does. */
export const readyThenEcho = [
  0x100002b7, // lui   t0, 0x10000        UART
  0x05200313, // li    t1, 'R'
  0x00628023, // sb    t1, 0(t0)          THR
  ...echoUntilQ,
];
