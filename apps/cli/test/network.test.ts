import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imagePath } from '@ftvm/guests';
import { afterEach, describe, expect, it } from 'vitest';
import {
  built,
  freeUdpPort,
  killStartedProcesses,
  scratchDirectory,
  startFtvm,
  udpClient,
} from './support.js';

const directory = scratchDirectory('ftvm-net-');

afterEach(killStartedProcesses);

describe.skipIf(!built)('the kv guest on ftvm over real UDP (needs `npm run build`)', () => {
  it('serves PUT/GET/DEL/INCR, applies a retried INCR once, answers ERR, survives garbage, persists', async () => {
    const disk = join(directory, 'kv.img');
    writeFileSync(disk, new Uint8Array(1 << 20));
    const port = await freeUdpPort();
    const args = [
      'run',
      '--kernel',
      imagePath('kv'),
      '--drive',
      `file=${disk}`,
      '--netdev',
      `user,hostfwd=udp:127.0.0.1:${port}-:5555`,
    ];
    const first = await startFtvm(args, 'listening');
    const kv = await udpClient(port);
    expect(await kv.request('1 PUT colour blue')).toBe('1 OK');
    expect(await kv.request('2 GET colour')).toBe('2 OK blue');
    expect(await kv.request('3 INCR hits')).toBe('3 OK 1');
    expect(await kv.request('3 INCR hits')).toBe('3 OK 1'); // a retry: same answer, applied once
    expect(await kv.request('4 INCR hits')).toBe('4 OK 2');
    expect(await kv.request('5 DEL colour')).toBe('5 OK');
    expect(await kv.request('6 GET colour')).toBe('6 NOTFOUND');
    expect(await kv.request('7 FLY away')).toMatch(/^7 ERR /);
    expect(await kv.request('8 PUT bad key! x')).toMatch(/^8 ERR /);
    expect(await kv.request('\u0000\u0001 garbage without an id', 500)).toBeUndefined();
    expect(await kv.request('9 PUT kept yes')).toBe('9 OK');
    kv.close();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(143);

    const second = await startFtvm(args, 'listening');
    const again = await udpClient(port);
    expect(await again.request('10 GET kept')).toBe('10 OK yes');
    expect(await again.request('11 GET hits')).toBe('11 OK 2');
    again.close();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(143);
  });

  it('records kv serving a client and replays it to the same console, with no network', async () => {
    const disk = join(directory, 'kv-record.img');
    writeFileSync(disk, new Uint8Array(1 << 20));
    const port = await freeUdpPort();
    const recording = join(directory, 'kv.ftlog');
    const recorder = await startFtvm(
      [
        'record',
        '--kernel',
        imagePath('kv'),
        '--drive',
        `file=${disk}`,
        '--netdev',
        `user,hostfwd=udp:127.0.0.1:${port}-:5555`,
        '-o',
        recording,
      ],
      'listening',
    );
    const kv = await udpClient(port);
    for (let id = 1; id <= 20; id++) expect(await kv.request(`${id} INCR counter`)).toBe(`${id} OK ${id}`);
    expect(await kv.request('21 GET counter')).toBe('21 OK 20');
    kv.close();
    recorder.child.kill('SIGTERM');
    // Stopped by the signal (128+15), with a whole recording that replays to its end.
    expect(await recorder.exited).toBe(143);
    expect(recorder.output()).toContain('ftvm: terminating on signal 15\n');

    const replay = await startFtvm(['replay', recording], 'listening');
    expect(await replay.exited).toBe(0);
    expect(replay.output()).toBe(recorder.output().replace('ftvm: terminating on signal 15\n', ''));
  });

  it('records echo.elf until it is told to quit, and replays it', async () => {
    const port = await freeUdpPort();
    const recording = join(directory, 'echo.ftlog');
    const recorder = await startFtvm(
      [
        'record',
        '--kernel',
        imagePath('echo'),
        '--netdev',
        `user,hostfwd=udp:127.0.0.1:${port}-:7`,
        '-o',
        recording,
      ],
      'echo',
    );
    const peer = await udpClient(port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await peer.request('one')).toBe('one');
    expect(await peer.request('two')).toBe('two');
    expect(await peer.request('quit')).toBe('bye');
    peer.close();
    expect(await recorder.exited).toBe(0);
    const replay = await startFtvm(['replay', recording], 'echo');
    expect(await replay.exited).toBe(0);
    expect(replay.output()).toBe(recorder.output());
  });

  it('echoes datagrams with echo.elf', async () => {
    const port = await freeUdpPort();
    const echo = await startFtvm(
      ['run', '--kernel', imagePath('echo'), '--netdev', `user,hostfwd=udp:127.0.0.1:${port}-:7`],
      'echo',
    );
    const peer = await udpClient(port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await peer.request('ping 1')).toBe('ping 1');
    expect(await peer.request('x'.repeat(1000))).toBe('x'.repeat(1000));
    peer.close();
    echo.child.kill('SIGTERM');
    expect(await echo.exited).toBe(143);
  });
});
