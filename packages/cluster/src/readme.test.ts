import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ApiClient,
  DirectoryStore,
  GatewayService,
  HostAgent,
  initCertificates,
  loadCredentials,
  Orchestrator,
  type VmView,
} from '@ftvm/cluster';
import { imagePath } from '@ftvm/guests';
import { pino } from 'pino';
import { expect, it } from 'vitest';

// The README's example, word for word (its console lines checked below).
it('runs the README example: a cluster in one process', async () => {
  const printed: string[] = [];
  const originalLog = console.log;
  console.log = (line: string) => printed.push(line);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'ftvm-example-'));
    const certs = join(dir, 'certs');
    initCertificates(certs);
    const logger = pino({ level: 'warn' });
    const local = { host: '127.0.0.1', port: 0 };

    const orchestrator = new Orchestrator({
      listen: local,
      credentials: loadCredentials(certs, 'orchestrator'),
      store: new DirectoryStore(join(dir, 'state')),
      sharedDir: join(dir, 'shared'),
      logger,
    });
    await orchestrator.start();
    const address = `127.0.0.1:${orchestrator.port}`;
    const hosts = ['h1', 'h2'].map(
      (name) =>
        new HostAgent({
          name,
          listen: local,
          dataDir: join(dir, name),
          orchestrators: [address],
          credentials: loadCredentials(certs, name),
          logger,
        }),
    );
    for (const host of hosts) await host.start();
    const gateway = new GatewayService({
      listen: local,
      credentials: loadCredentials(certs, 'gateway'),
      orchestrators: [address],
      logger,
    });
    await gateway.start();

    // The operator creates a VM; the orchestrator places its primary and backup on h1 and h2.
    const operator = new ApiClient(loadCredentials(certs, 'operator'), address);
    await operator.call('POST', '/v1/vms', {
      name: 'kv',
      image: (await readFile(imagePath('kv'))).toString('base64'),
      ramBytes: 64 << 20,
      diskBytes: 4 << 20,
      forwards: [{ protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 0, guestPort: 5555 }],
    });
    let view: VmView;
    do {
      await new Promise((resolve) => setTimeout(resolve, 200));
      view = await operator.call<VmView>('GET', '/v1/vms/kv');
    } while (!view.faultTolerant);
    console.log(
      `primary on ${view.primary?.host}, backup on ${view.backup?.host}, epoch ${view.primary?.epoch}`,
    );
    console.log(`clients reach it at udp ${await gateway.boundPorts('kv')}`);

    operator.close();
    for (const host of hosts) await host.close();
    await gateway.close();
    await orchestrator.close();
  } finally {
    console.log = originalLog;
  }
  expect(printed[0]).toMatch(/^primary on h[12], backup on h[12], epoch 1$/);
  expect(printed[0]?.match(/h[12]/g)?.[0]).not.toBe(printed[0]?.match(/h[12]/g)?.[1]);
  expect(printed[1]).toMatch(/^clients reach it at udp \d+$/);
}, 60_000);
