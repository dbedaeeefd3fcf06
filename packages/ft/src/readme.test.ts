import { readFileSync } from 'node:fs';
import { MemoryArbiter } from '@ftvm/arbiter';
import { FT_PROTOCOL_VERSION } from '@ftvm/core';
import { FtBackup, FtPrimary } from '@ftvm/ft';
import { imagePath } from '@ftvm/guests';
import { Machine } from '@ftvm/machine';
import { createNodeHost } from '@ftvm/machine/node';
import { createMemoryChannelPair } from '@ftvm/transport';
import { expect, it } from 'vitest';

// The README's example, word for word, through the package's own export map.
it('runs the README example: a primary and a backup in one process', async () => {
  const image = new Uint8Array(readFileSync(imagePath('paging')));
  const scheduler = createNodeHost();
  const arbiter = new MemoryArbiter();
  await arbiter.testAndSet('vm1', 0, 'host-a'); // host-a owns epoch 1

  const hello = (role: 'primary' | 'backup', host: string) => ({
    vmId: 'vm1',
    epoch: 1,
    role,
    host,
    protocolVersion: FT_PROTOCOL_VERSION,
  });
  const { a: toBackup, b: toPrimary } = await createMemoryChannelPair({
    a: { handshake: hello('primary', 'host-a') },
    b: { handshake: hello('backup', 'host-b') },
  });

  // Both sides build the same machine; the drivers add the hooks (mode, log, output hold).
  const boot = (hooks: object) => {
    const machine = new Machine({ clock: 'icount', checkpointIntervalSteps: 100_000, ...hooks });
    machine.loadImage(image);
    return machine;
  };
  const consoleText: string[] = [];
  const deliver = (output: { kind: string; data: Uint8Array }) => {
    if (output.kind === 'console') consoleText.push(new TextDecoder().decode(output.data));
  };

  const primary = new FtPrimary({
    vmId: 'vm1',
    host: 'host-a',
    epoch: 1,
    scheduler,
    arbiter,
    deliver,
    createMachine: boot,
  });
  const backup = new FtBackup({
    vmId: 'vm1',
    host: 'host-b',
    epoch: 1,
    scheduler,
    arbiter,
    deliver,
    createMachine: boot,
    channel: toPrimary,
    cloning: false,
  });
  primary.attachBackup(toBackup);
  const [primaryEnd, backupEnd] = await Promise.all([primary.run(), backup.run()]);
  expect(primaryEnd).toEqual({ end: 'powered-off', exitStatus: 0 });
  expect(backupEnd).toEqual({ end: 'powered-off', exitStatus: 0 });
  expect(consoleText.join('')).toContain('paging: ok');
});
