import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ArbiterRecord, ArbiterUnavailableError } from '@ftvm/core';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeArbiterContract } from '../contract-suite.js';
import { FileArbiter } from './file-arbiter.js';

const isUnavailable = (error: unknown) => ArbiterUnavailableError.is(error);
const temporaryDirectories: string[] = [];

async function temporaryDirectory(): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'ftvm-file-arbiter-'));
  temporaryDirectories.push(directory);
  return directory;
}

afterAll(async () => {
  await Promise.all(temporaryDirectories.map((directory) => rm(directory, { recursive: true, force: true })));
});

describeArbiterContract('FileArbiter', async () => {
  const directory = await temporaryDirectory();
  return {
    clients: [new FileArbiter(directory), new FileArbiter(directory), new FileArbiter(directory)],
    cleanup: async () => {},
  };
});

describe('FileArbiter', () => {
  it('keeps one epoch-<n> file per epoch, holding the owner and a newline', async () => {
    const directory = await temporaryDirectory();
    const arbiter = new FileArbiter(directory);
    await arbiter.testAndSet('vm-1', 0, 'host-a');
    await arbiter.testAndSet('vm-1', 1, 'host-b');
    await arbiter.testAndSet('vm-1', 1, 'host-c'); // loses: no file
    expect((await readdir(join(directory, 'vm-1'))).sort()).toEqual(['epoch-1', 'epoch-2']);
    expect(await readFile(join(directory, 'vm-1', 'epoch-1'), 'utf8')).toBe('host-a\n');
    expect(await readFile(join(directory, 'vm-1', 'epoch-2'), 'utf8')).toBe('host-b\n');
  });

  it('reads the highest epoch file, ignoring other names', async () => {
    const directory = await temporaryDirectory();
    await mkdir(join(directory, 'vm'));
    for (const [name, text] of [
      ['epoch-1', 'a\n'],
      ['epoch-2', 'b\n'],
      ['epoch-10', 'c\n'],
      ['epoch-09', 'x\n'],
      ['epoch-11.tmp', 'x\n'],
      ['notes', 'x\n'],
    ]) {
      await writeFile(join(directory, 'vm', name!), text!);
    }
    expect(await new FileArbiter(directory).read('vm')).toEqual({ epoch: 10, owner: 'c' });
  });

  it('waits for a winner that is between its create and its write, and reports its owner', async () => {
    const directory = await temporaryDirectory();
    await mkdir(join(directory, 'vm'));
    const path = join(directory, 'vm', 'epoch-1');
    await writeFile(path, ''); // created, not yet written
    const arbiter = new FileArbiter(directory);
    const started = performance.now();
    const reading = arbiter.read('vm');
    const losing = arbiter.testAndSet('vm', 0, 'loser');
    setTimeout(() => void writeFile(path, 'hal'), 20); // half written: no newline yet
    setTimeout(() => void writeFile(path, 'halfway-host\n'), 60);
    expect(await reading).toEqual({ epoch: 1, owner: 'halfway-host' });
    expect(await losing).toEqual({ won: false, record: { epoch: 1, owner: 'halfway-host' } });
    expect(performance.now() - started).toBeGreaterThanOrEqual(50);
  });

  it('answers ArbiterUnavailableError for a file its writer never finished, and can still move past it', async () => {
    const directory = await temporaryDirectory();
    await mkdir(join(directory, 'vm'));
    await writeFile(join(directory, 'vm', 'epoch-1'), '');
    const arbiter = new FileArbiter(directory, { incompleteReadTimeoutMs: 50 });
    await expect(arbiter.read('vm')).rejects.toSatisfy(isUnavailable);
    await expect(arbiter.testAndSet('vm', 0, 'host-a')).rejects.toSatisfy(isUnavailable);
    expect(await arbiter.testAndSet('vm', 1, 'host-b')).toEqual({
      won: true,
      record: { epoch: 2, owner: 'host-b' },
    });
    expect(await arbiter.read('vm')).toEqual({ epoch: 2, owner: 'host-b' });
  });

  it('answers ArbiterUnavailableError for a file that holds no valid owner', async () => {
    const directory = await temporaryDirectory();
    await mkdir(join(directory, 'vm'));
    await writeFile(join(directory, 'vm', 'epoch-1'), 'bad\u0007owner\n');
    await expect(new FileArbiter(directory).read('vm')).rejects.toSatisfy(isUnavailable);
  });

  it('answers ArbiterUnavailableError, and creates nothing, when its directory does not exist', async () => {
    const parent = await temporaryDirectory();
    const missing = join(parent, 'not-mounted', 'arbiter');
    const arbiter = new FileArbiter(missing);
    // Not "epoch 0": a missing mount must not look like a VM nobody has claimed.
    await expect(arbiter.read('vm')).rejects.toSatisfy(isUnavailable);
    await expect(arbiter.testAndSet('vm', 0, 'host-a')).rejects.toSatisfy(isUnavailable);
    await expect(arbiter.testAndSet('vm', 3, 'host-a')).rejects.toSatisfy(isUnavailable);
    expect(existsSync(join(parent, 'not-mounted'))).toBe(false);
  });

  it('answers ArbiterUnavailableError when its directory is a file', async () => {
    const parent = await temporaryDirectory();
    const file = join(parent, 'a-file');
    await writeFile(file, 'x');
    const arbiter = new FileArbiter(file);
    await expect(arbiter.read('vm')).rejects.toSatisfy(isUnavailable);
    await expect(arbiter.testAndSet('vm', 0, 'host-a')).rejects.toSatisfy(isUnavailable);
  });

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) console.warn('skipping the unwritable-directory test: root can write to a read-only directory');
  it.skipIf(isRoot)('answers ArbiterUnavailableError when its directory is not writable', async () => {
    const directory = await temporaryDirectory();
    await chmod(directory, 0o555);
    try {
      const arbiter = new FileArbiter(directory);
      await expect(arbiter.testAndSet('vm', 0, 'host-a')).rejects.toSatisfy(isUnavailable);
      expect(await arbiter.read('vm')).toEqual({ epoch: 0, owner: '' });
    } finally {
      await chmod(directory, 0o755);
    }
  });
});

/**
 * Separate Node processes race on one VM: each round the test tells every process to move epoch
 * `round` → `round + 1` at the same moment; exactly one may win, and every loser must report the
 * winner's record (even when the winner has not written its file yet when the loser looks).
 */
describe('FileArbiter across processes', () => {
  const PROCESSES = 3;
  const ROUNDS = 200;
  const children: ChildProcess[] = [];
  let directory: string;

  type Reply = { round: number; won?: boolean; record?: ArbiterRecord; error?: string };

  beforeAll(async () => {
    directory = await temporaryDirectory();
    const workDirectory = await temporaryDirectory();
    // The racer: a small script bundled with the arbiter's sources, so it runs on plain Node.
    const script = join(workDirectory, 'racer.mjs');
    await build({
      stdin: {
        contents: `
          import { FileArbiter } from './file-arbiter.ts';
          const [directory, owner] = process.argv.slice(2);
          const arbiter = new FileArbiter(directory);
          process.on('message', async ({ vmId, round }) => {
            try {
              const { won, record } = await arbiter.testAndSet(vmId, round, owner);
              process.send({ round, won, record });
            } catch (error) {
              process.send({ round, error: String(error) });
            }
          });
          process.send({ round: -1 });
        `,
        resolveDir: dirname(fileURLToPath(import.meta.url)),
        loader: 'ts',
        sourcefile: 'racer.ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      conditions: ['@ftvm/source'],
      outfile: script,
      logLevel: 'error',
    });
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < PROCESSES; i++) {
      const child = fork(script, [directory, `process-${i}`], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.push(child);
      ready.push(nextReply(child));
    }
    await Promise.all(ready);
  });

  afterAll(() => {
    for (const child of children) if (child.connected) child.disconnect();
    for (const child of children) child.kill();
  });

  function nextReply(child: ChildProcess): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`racer ${child.pid} exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        resolve(message as Reply);
      });
    });
  }

  it(`gives exactly one winner in each of ${ROUNDS} rounds`, async () => {
    const wins = new Map<string, number>();
    for (let round = 0; round < ROUNDS; round++) {
      const replies = children.map((child) => nextReply(child));
      for (const child of children) child.send({ vmId: 'raced-vm', round });
      const results = await Promise.all(replies);
      for (const result of results) {
        expect(result.error).toBeUndefined();
        expect(result.round).toBe(round);
      }
      const winners = results.filter((result) => result.won === true);
      expect(winners).toHaveLength(1);
      const record = winners[0]!.record!;
      expect(record.epoch).toBe(round + 1);
      for (const result of results) expect(result.record).toEqual(record);
      wins.set(record.owner, (wins.get(record.owner) ?? 0) + 1);
    }
    expect(await new FileArbiter(directory).read('raced-vm')).toMatchObject({ epoch: ROUNDS });
    expect((await readdir(join(directory, 'raced-vm'))).length).toBe(ROUNDS);
    console.log(`file arbiter race: wins per process ${JSON.stringify(Object.fromEntries(wins))}`);
  });
});
