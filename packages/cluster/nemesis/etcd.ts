import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ETCD_TEST_ARGS, findEtcdBinary, freePorts, waitEtcdHealthy } from '@ftvm/arbiter/test';

/**
 * A three-member etcd cluster on loopback for the nemesis (the store and the arbiter of a cluster
 * run with `--store etcd`). Each member logs into `DIR/etcd-eN.log` and keeps its data in
 * `DIR/etcd-eN/`; a member killed with SIGKILL is restarted with its same command line, and finds
 * its data again (etcd ignores the initial-cluster flags once its data directory exists).
 */

interface Member {
  readonly name: string;
  readonly args: readonly string[];
  readonly clientUrl: string;
  child: ChildProcess;
  exited: Promise<void>;
}

export class EtcdNodes {
  readonly #binary: string;
  readonly #dir: string;
  readonly #members: Member[] = [];

  private constructor(binary: string, dir: string) {
    this.#binary = binary;
    this.#dir = dir;
  }

  /** Starts `count` members in `dir` and waits until every one answers healthy. */
  static async start(dir: string, count = 3): Promise<EtcdNodes> {
    const binary = findEtcdBinary();
    if (!binary) throw new Error('the etcd binary is not on PATH (Debian package etcd-server)');
    const nodes = new EtcdNodes(binary, dir);
    const ports = await freePorts(count * 2);
    const names = Array.from({ length: count }, (_, index) => `e${index + 1}`);
    const peerUrl = (index: number) => `http://127.0.0.1:${ports[count + index]}`;
    const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',');
    for (const [index, name] of names.entries()) {
      const clientUrl = `http://127.0.0.1:${ports[index]}`;
      const args = [
        '--name',
        name,
        '--data-dir',
        join(dir, `etcd-${name}`),
        '--listen-client-urls',
        clientUrl,
        '--advertise-client-urls',
        clientUrl,
        '--listen-peer-urls',
        peerUrl(index),
        '--initial-advertise-peer-urls',
        peerUrl(index),
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--initial-cluster-token',
        'ftvm-nemesis',
        // Fast elections, as the arbiter's test etcd.
        ...ETCD_TEST_ARGS,
      ];
      nodes.#members.push({ name, args, clientUrl, ...nodes.#spawn(name, args) });
    }
    try {
      await Promise.all(nodes.#members.map((member) => nodes.#waitHealthy(member, 30_000)));
    } catch (error) {
      await nodes.stop();
      throw error;
    }
    return nodes;
  }

  /** The members' names (`e1`…). */
  get names(): string[] {
    return this.#members.map((member) => member.name);
  }

  /** `etcd://H:P,H:P,H:P` for `ftvm orchestrator --store`. */
  get storeUrl(): string {
    return `etcd://${this.#members.map((member) => new URL(member.clientUrl).host).join(',')}`;
  }

  /** A member that is not running now (killed, or exited by itself), if any. */
  isDown(name: string): boolean {
    const child = this.#member(name).child;
    return child.exitCode !== null || child.signalCode !== null;
  }

  /** `kill -9` of a member; resolves once it has exited. */
  async kill(name: string): Promise<void> {
    const member = this.#member(name);
    member.child.kill('SIGKILL');
    await member.exited;
  }

  /** Starts a member again with its same command line (and data) and waits until it is healthy. */
  async restart(name: string): Promise<void> {
    const member = this.#member(name);
    if (!this.isDown(name)) await this.kill(name);
    Object.assign(member, this.#spawn(name, member.args));
    await this.#waitHealthy(member, 30_000);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.#members.map(async (member) => {
        member.child.kill('SIGKILL');
        await member.exited;
      }),
    );
  }

  #member(name: string): Member {
    const member = this.#members.find((candidate) => candidate.name === name);
    if (!member) throw new Error(`no etcd member named ${name}`);
    return member;
  }

  #spawn(name: string, args: readonly string[]): { child: ChildProcess; exited: Promise<void> } {
    mkdirSync(this.#dir, { recursive: true });
    const log = createWriteStream(join(this.#dir, `etcd-${name}.log`), { flags: 'a' });
    const child = spawn(this.#binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        log.end();
        resolve();
      }),
    );
    return { child, exited };
  }

  #waitHealthy(member: Member, timeoutMs: number): Promise<void> {
    return waitEtcdHealthy(member.clientUrl, member.child, timeoutMs, () => `see ${this.#dir}`);
  }
}
