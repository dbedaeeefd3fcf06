import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfigError, HostIoError } from '@ftvm/core';
import { type Election, Etcd3 } from 'etcd3';

/**
 * Where the orchestrator keeps the desired state: small JSON documents under keys like
 * `vms/kv`. The embedded store is a directory (one file per key, replaced atomically); the etcd
 * store keeps them in etcd under a prefix, and elects one leader among several orchestrators.
 */
export interface ClusterStore {
  readonly description: string;
  get<T>(key: string): Promise<T | undefined>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key under `prefix` (a folder such as `vms/`), with its value. */
  list<T>(prefix: string): Promise<[string, T][]>;
  /**
   * Resolves when this orchestrator leads (at once for the embedded store, which allows one
   * orchestrator); `onLost` is told if leadership is lost later.
   */
  lead(name: string, onLost: (reason: string) => void): Promise<void>;
  close(): Promise<void>;
}

const KEY = /^[a-z]+\/[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function checkKey(key: string): void {
  if (!KEY.test(key)) throw new ConfigError(`invalid store key ${JSON.stringify(key)}`);
}

/** The embedded store: a directory. One orchestrator at a time (a lock file with its pid). */
export class DirectoryStore implements ClusterStore {
  readonly description: string;
  readonly #dir: string;
  #locked = false;

  constructor(dir: string) {
    this.#dir = dir;
    this.description = `directory ${dir}`;
    mkdirSync(join(dir, 'state'), { recursive: true });
  }

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    try {
      return JSON.parse(await readFile(this.#path(key), 'utf8')) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new HostIoError(`cannot read ${key} from the store: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async put(key: string, value: unknown): Promise<void> {
    checkKey(key);
    const path = this.#path(key);
    mkdirSync(dirname(path), { recursive: true });
    const temporary = `${path}.tmp`;
    try {
      const handle = await open(temporary, 'w');
      try {
        await handle.writeFile(JSON.stringify(value));
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
    } catch (error) {
      // A full disk: the old document stays whole, the caller learns the write did not happen.
      await rm(temporary, { force: true });
      throw new HostIoError(`cannot write ${key} to the store: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await rm(this.#path(key), { force: true });
  }

  async list<T>(prefix: string): Promise<[string, T][]> {
    const folder = join(this.#dir, 'state', prefix);
    let names: string[];
    try {
      names = (await readdir(folder)).filter((name) => name.endsWith('.json')).sort();
    } catch {
      return [];
    }
    const entries: [string, T][] = [];
    for (const name of names) {
      const key = `${prefix}${name.slice(0, -5)}`;
      const value = await this.get<T>(key);
      if (value !== undefined) entries.push([key, value]);
    }
    return entries;
  }

  async lead(_name: string): Promise<void> {
    const lock = join(this.#dir, 'orchestrator.pid');
    if (existsSync(lock)) {
      const pid = Number(readFileSync(lock, 'utf8').trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
        throw new ConfigError(
          `another orchestrator (pid ${pid}) uses ${this.#dir}; the embedded store allows one (use etcd for several)`,
        );
      }
    }
    const handle = await open(`${lock}.tmp`, 'w');
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    await rename(`${lock}.tmp`, lock);
    this.#locked = true;
  }

  async close(): Promise<void> {
    if (this.#locked) await rm(join(this.#dir, 'orchestrator.pid'), { force: true });
    this.#locked = false;
  }

  #path(key: string): string {
    return join(this.#dir, 'state', `${key}.json`);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The etcd store: documents under `PREFIX/cluster/`, and leader election among orchestrators. */
export class EtcdStore implements ClusterStore {
  readonly description: string;
  readonly #client: Etcd3;
  readonly #prefix: string;
  #election: Election | undefined;

  constructor(endpoints: readonly string[], prefix = 'ftvm') {
    if (endpoints.length === 0) throw new ConfigError('the etcd store needs at least one endpoint');
    this.#client = new Etcd3({
      hosts: [...endpoints],
      dialTimeout: 2_000,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 3_000 }),
    });
    this.#prefix = `${prefix}/cluster/`;
    this.description = `etcd ${endpoints.join(',')}`;
  }

  /** The etcd endpoints of `etcd://H:P[,H:P…]` (as `http://H:P`). */
  static parseUrl(url: string): string[] {
    const rest = url.slice('etcd://'.length);
    const endpoints = rest.split(',').filter((part) => part.length > 0);
    if (
      !url.startsWith('etcd://') ||
      endpoints.length === 0 ||
      endpoints.some((part) => !/^[^:/]+:\d+$/.test(part))
    ) {
      throw new ConfigError(`invalid etcd store ${JSON.stringify(url)}: etcd://HOST:PORT[,HOST:PORT…]`);
    }
    return endpoints.map((part) => `http://${part}`);
  }

  async get<T>(key: string): Promise<T | undefined> {
    checkKey(key);
    const text = await this.#wrap(() => this.#client.get(this.#prefix + key).string());
    return text === null ? undefined : (JSON.parse(text) as T);
  }

  async put(key: string, value: unknown): Promise<void> {
    checkKey(key);
    await this.#wrap(async () => {
      await this.#client.put(this.#prefix + key).value(JSON.stringify(value));
    });
  }

  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#wrap(async () => {
      await this.#client.delete().key(this.#prefix + key);
    });
  }

  async list<T>(prefix: string): Promise<[string, T][]> {
    const found = await this.#wrap(() =>
      this.#client
        .getAll()
        .prefix(this.#prefix + prefix)
        .strings(),
    );
    return Object.entries(found)
      .map(([key, value]) => [key.slice(this.#prefix.length), JSON.parse(value) as T] as [string, T])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async lead(name: string, onLost: (reason: string) => void): Promise<void> {
    this.#election = this.#client.election(`${this.#prefix}leader`, 3);
    const campaign = this.#election.campaign(name);
    campaign.on('error', (error: Error) => onLost(`lost the leadership: ${error.message}`));
    await new Promise<void>((resolve, reject) => {
      campaign.on('elected', () => resolve());
      campaign.on('error', reject);
    });
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  async #wrap<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw new HostIoError(`etcd: ${(error as Error).message}`, { cause: error });
    }
  }
}
