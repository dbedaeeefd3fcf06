// echo.elf and kv.elf exercised from Node over real UDP through QEMU's user-network port forwards.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ReferenceQemu, type ReferenceQemuOptions } from './index.js';
import { freeUdpPort, qemuMissing, UdpClient } from './test-support.js';

const scratch = mkdtempSync(join(tmpdir(), 'ftvm-guests-net-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const running = new Set<ReferenceQemu>();
afterEach(async () => {
  await Promise.all([...running].map((qemu) => qemu.stop()));
  running.clear();
});

/** Starts an image with a virtio-net device forwarding a fresh host port to `guestPort`. */
async function startServer(
  image: 'echo' | 'kv',
  guestPort: number,
  options: ReferenceQemuOptions = {},
): Promise<{ qemu: ReferenceQemu; hostPort: number }> {
  const hostPort = await freeUdpPort();
  const qemu = new ReferenceQemu(image, { ...options, network: { udpForwards: [{ hostPort, guestPort }] } });
  running.add(qemu);
  await qemu.waitForOutput(/listening on udp port \d+.*\n/);
  return { qemu, hostPort };
}

/** kv request with id `id`: resolves to the reply for that id. */
function kvRequest(client: UdpClient, id: number, body: string): Promise<string> {
  return client.request(`${id} ${body}`, (reply) => reply.startsWith(`${id} `));
}

describe.skipIf(qemuMissing !== undefined)(`echo.elf over UDP ${qemuMissing ?? ''}`, () => {
  it('echoes datagrams back unchanged, and "quit" ends the guest with status 0', async () => {
    const { qemu, hostPort } = await startServer('echo', 7);
    const client = new UdpClient(hostPort);
    try {
      expect(await client.request('hello, echo')).toBe('hello, echo');
      const binary = Buffer.from(Array.from({ length: 1000 }, (_, index) => (index * 37) & 0xff));
      client.send(binary);
      const reply = await client.next(5000);
      expect(reply).toEqual(binary);
      expect(await client.request('quit')).toBe('bye');
      expect((await qemu.exited).status).toBe(0);
      expect(qemu.output).toContain('echo: mac 52:54:00:12:34:56, address 10.0.2.15');
      expect(qemu.output).toMatch(/echo: quit after \d+ datagrams/);
    } finally {
      client.close();
    }
  });
});

describe.skipIf(qemuMissing !== undefined)(`kv.elf over UDP ${qemuMissing ?? ''}`, () => {
  it('serves GET, PUT, DEL and INCR from RAM when no disk is attached', async () => {
    const { qemu, hostPort } = await startServer('kv', 5555);
    expect(qemu.output).toContain('kv: no disk; serving from RAM only');
    expect(qemu.output).toContain('kv: listening on udp port 5555 (RAM only)');
    const client = new UdpClient(hostPort);
    try {
      expect(await kvRequest(client, 1, 'GET greeting')).toBe('1 NOTFOUND');
      expect(await kvRequest(client, 2, 'PUT greeting hello-world')).toBe('2 OK');
      expect(await kvRequest(client, 3, 'GET greeting')).toBe('3 OK hello-world');
      expect(await kvRequest(client, 4, 'INCR counter')).toBe('4 OK 1');
      expect(await kvRequest(client, 5, 'INCR counter')).toBe('5 OK 2');
      expect(await kvRequest(client, 6, 'PUT negative -5')).toBe('6 OK');
      expect(await kvRequest(client, 7, 'INCR negative')).toBe('7 OK -4');
      expect(await kvRequest(client, 8, 'DEL greeting')).toBe('8 OK');
      expect(await kvRequest(client, 9, 'DEL greeting')).toBe('9 NOTFOUND');
      expect(await kvRequest(client, 10, 'GET greeting')).toBe('10 NOTFOUND');
      const key = `k${'x'.repeat(63)}`;
      const value = 'v'.repeat(1024);
      expect(await kvRequest(client, 11, `PUT ${key} ${value}`)).toBe('11 OK');
      expect(await kvRequest(client, 12, `GET ${key}`)).toBe(`12 OK ${value}`);
      expect(await kvRequest(client, 4294967295, 'GET a.b:c_d-e')).toBe('4294967295 NOTFOUND');
      // A trailing newline is accepted and mirrored.
      expect(await client.request('13 GET counter\n', (reply) => reply.startsWith('13 '))).toBe('13 OK 2\n');
    } finally {
      client.close();
    }
  });

  it('answers every malformed request that carries an id with <id> ERR, and keeps serving', async () => {
    const { hostPort } = await startServer('kv', 5555);
    const client = new UdpClient(hostPort);
    try {
      const malformed: Array<[string, string]> = [
        ['20', '20 ERR malformed request'],
        ['21 ', '21 ERR malformed request'],
        ['22 FETCH key', '22 ERR unknown operation'],
        ['23 get key', '23 ERR unknown operation'],
        ['24 GET', '24 ERR missing key'],
        ['25 GET bad/key', '25 ERR bad key'],
        [`26 GET ${'k'.repeat(65)}`, '26 ERR key too long'],
        ['27 PUT key', '27 ERR missing value'],
        ['28 PUT key two words', '28 ERR value has spaces'],
        [`29 PUT key ${'v'.repeat(1025)}`, '29 ERR value too long'],
        ['30 GET key value', '30 ERR unexpected value'],
        ['31  GET key', '31 ERR malformed request'],
        ['32 GET key ', '32 ERR malformed request (empty field)'],
        ['33 PUT key caf\u00e9', '33 ERR bad value'],
        [`34 PUT key ${'v'.repeat(1300)}`, '34 ERR request too long'],
      ];
      for (const [request, expected] of malformed) {
        const id = request.split(' ')[0]!;
        expect(await client.request(request, (reply) => reply.startsWith(`${id} `))).toBe(expected);
      }
      expect(await kvRequest(client, 35, 'PUT word text')).toBe('35 OK');
      expect(await kvRequest(client, 36, 'INCR word')).toBe('36 ERR value is not an integer');
      expect(await kvRequest(client, 37, 'PUT big 9223372036854775807')).toBe('37 OK');
      expect(await kvRequest(client, 38, 'INCR big')).toBe('38 ERR integer overflow');
      // Requests without a readable id go unanswered: the next reply is for the next good request.
      for (const junk of ['', 'hello', '-1 GET key', '4294967296 GET key', '12x GET key', '\u0000\u00ff']) {
        client.send(junk);
      }
      client.send(Buffer.from(Array.from({ length: 1400 }, (_, index) => (index * 7) & 0xff)));
      expect(await kvRequest(client, 39, 'GET word')).toBe('39 OK text');
    } finally {
      client.close();
    }
  });

  it('applies a retried request once: the same id gets the same answer (per client, last 32 ids)', async () => {
    const { hostPort } = await startServer('kv', 5555);
    const client = new UdpClient(hostPort);
    const other = new UdpClient(hostPort);
    try {
      expect(await kvRequest(client, 100, 'INCR hits')).toBe('100 OK 1');
      expect(await kvRequest(client, 100, 'INCR hits')).toBe('100 OK 1');
      expect(await kvRequest(client, 101, 'INCR hits')).toBe('101 OK 2');
      // The same datagram twice in a row, as a duplicate on the network: two identical answers.
      client.send('102 INCR hits');
      client.send('102 INCR hits');
      expect((await client.next(5000))?.toString()).toBe('102 OK 3');
      expect((await client.next(5000))?.toString()).toBe('102 OK 3');
      // A retry returns the remembered answer even if the request text changed.
      expect(await kvRequest(client, 100, 'GET hits')).toBe('100 OK 1');
      // Ids are per client: another client's id 100 is a new request.
      expect(await kvRequest(other, 100, 'INCR hits')).toBe('100 OK 4');
      // Only the last 32 ids are remembered: after 32 newer ones, id 100 is new again.
      for (let id = 200; id < 232; id++) expect(await kvRequest(client, id, 'GET hits')).toBe(`${id} OK 4`);
      expect(await kvRequest(client, 100, 'INCR hits')).toBe('100 OK 5');
      // Ids are numbers: "0100" is id 100 again, and the answer names it in canonical form.
      expect(await client.request('0100 INCR hits', (reply) => reply.startsWith('100 '))).toBe('100 OK 5');
    } finally {
      client.close();
      other.close();
    }
  });

  it('remembers the last 64 clients: a client evicted by 64 newer ones is new again', async () => {
    const { hostPort } = await startServer('kv', 5555);
    const first = new UdpClient(hostPort);
    const others: UdpClient[] = [];
    try {
      expect(await kvRequest(first, 1, 'INCR n')).toBe('1 OK 1');
      expect(await kvRequest(first, 1, 'INCR n')).toBe('1 OK 1');
      for (let index = 0; index < 64; index++) {
        const client = new UdpClient(hostPort);
        others.push(client);
        expect(await kvRequest(client, 1, 'GET n')).toBe('1 OK 1');
      }
      expect(await kvRequest(first, 1, 'INCR n')).toBe('1 OK 2');
    } finally {
      first.close();
      for (const client of others) client.close();
    }
  });

  it('survives any datagram: every one with a readable id is answered with that id, and it keeps serving', async () => {
    const { qemu, hostPort } = await startServer('kv', 5555);
    const client = new UdpClient(hostPort);
    const token = fc.oneof(
      fc.constantFrom('GET', 'PUT', 'DEL', 'INCR', 'get', 'INC', ''),
      fc.stringMatching(/^[A-Za-z0-9_.:-]{0,70}$/),
      fc.string({ maxLength: 20 }),
      fc.integer({ min: -5, max: 100 }).map(String),
    );
    const request = fc.oneof(
      fc
        .tuple(
          fc.nat({ max: 4_294_967_295 }),
          fc.array(token, { maxLength: 5 }),
          fc.constantFrom(' ', '  ', '\t'),
        )
        .map(([id, tokens, separator]) => ({
          id,
          bytes: Buffer.from([String(id), ...tokens].join(separator), 'latin1'),
        })),
      fc.uint8Array({ maxLength: 1472 }).map((bytes) => ({ id: undefined, bytes: Buffer.from(bytes) })),
    );
    const datagrams = fc.sample(request, { numRuns: 300, seed: 20261125 });
    try {
      for (const { id, bytes } of datagrams) {
        const text = bytes.toString('latin1').replace(/\r?\n$/, '');
        const firstField = text.split(' ')[0]!;
        const readable = /^\d{1,10}$/.test(firstField) && Number(firstField) <= 4_294_967_295;
        if (id !== undefined && readable) {
          const reply = await client.request(bytes.toString('latin1'), (answer) =>
            answer.startsWith(`${Number(firstField)} `),
          );
          expect(reply).toMatch(/^\d+ (OK|NOTFOUND|ERR)/);
        } else {
          client.send(bytes);
        }
      }
      expect(await kvRequest(client, 7, 'PUT still alive')).toBe('7 OK');
      expect(await kvRequest(client, 8, 'GET still')).toBe('8 OK alive');
      expect(qemu.output).not.toContain('unhandled');
    } finally {
      client.close();
    }
  });

  it('persists to the virtio-blk disk and loads it again after a reboot', async () => {
    const diskPath = join(scratch, 'kv.img');
    writeFileSync(diskPath, Buffer.alloc(1 << 20));
    const first = await startServer('kv', 5555, { diskPath });
    expect(first.qemu.output).toContain('kv: disk: formatted a new store');
    expect(first.qemu.output).toContain('kv: listening on udp port 5555 (persistent)');
    let client = new UdpClient(first.hostPort);
    try {
      expect(await kvRequest(client, 1, 'PUT colour blue')).toBe('1 OK');
      expect(await kvRequest(client, 2, 'PUT shape round')).toBe('2 OK');
      expect(await kvRequest(client, 3, 'INCR visits')).toBe('3 OK 1');
      expect(await kvRequest(client, 4, 'INCR visits')).toBe('4 OK 2');
      expect(await kvRequest(client, 5, 'DEL shape')).toBe('5 OK');
    } finally {
      client.close();
    }
    await first.qemu.stop();
    running.delete(first.qemu);

    const second = await startServer('kv', 5555, { diskPath });
    expect(second.qemu.output).toContain('kv: disk: loaded 2 keys');
    client = new UdpClient(second.hostPort);
    try {
      expect(await kvRequest(client, 1, 'GET colour')).toBe('1 OK blue');
      expect(await kvRequest(client, 2, 'GET shape')).toBe('2 NOTFOUND');
      expect(await kvRequest(client, 3, 'INCR visits')).toBe('3 OK 3');
    } finally {
      client.close();
    }
  });
});
