// Shared by this package's tests: scratch directories, and a raw TLS probe of a server that must
// refuse the peer in the handshake.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectionOptions, connect } from 'node:tls';
import { afterAll } from 'vitest';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A new scratch directory, removed when the test file's tests are done. */
export function tempDir(prefix = 'ftvm-cluster-unit-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/**
 * Connects with `options` and, once the TLS handshake is done, asks `GET /v1/vms`: `answered: …`
 * when the server sent anything back, `refused: …` when the connection failed or closed first.
 */
export function probeHttpOverTls(options: ConnectionOptions): Promise<string> {
  return new Promise<string>((resolve) => {
    const socket = connect(options);
    socket.on('secureConnect', () => socket.write('GET /v1/vms HTTP/1.1\r\nhost: x\r\n\r\n'));
    socket.on('data', (data: Buffer) => resolve(`answered: ${data.toString().slice(0, 40)}`));
    socket.on('error', (error) => resolve(`refused: ${error.message}`));
    socket.on('close', () => resolve('refused: closed'));
  });
}
