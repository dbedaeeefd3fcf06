// ftvm's rv32 Linux image (images/linux/Image, built by scripts/build-linux.sh from Debian's
// linux-source-6.1 and linux/userland/init.c): the committed Image is a RISC-V Linux Image built
// from the versions VERSIONS.txt names, and on the reference QEMU, under the project's SBI firmware,
// it boots to the kv service, which answers over real UDP as kv.elf does, keeps its keys on the disk
// across a reboot and powers the board off when "poweroff" is typed on the console.
// Rebuilding the kernel is not tested here (it takes minutes): linux/README.md says how to check
// that the script rebuilds the Image byte for byte.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { packageRoot, ReferenceQemu } from './index.js';
import { freeUdpPort, qemuMissing, UdpClient } from './test-support.js';

const linuxDir = join(packageRoot(), 'images', 'linux');
const kernelImage = join(linuxDir, 'Image');
const firmware = join(linuxDir, 'sbi.elf');

describe('the committed Linux Image', () => {
  const image = readFileSync(kernelImage);

  it('is a RISC-V Linux Image (Documentation/riscv/boot-image-header.rst), loaded 4 MiB into RAM', () => {
    expect(image.subarray(48, 56).toString('latin1')).toBe('RISCV\0\0\0');
    expect(image.subarray(56, 60).toString('latin1')).toBe('RSC\x05');
    // text_offset: the rv32 kernel runs 4 MiB above the start of RAM, past the firmware.
    expect(image.readBigUInt64LE(8)).toBe(0x40_0000n);
    // image_size covers the file and the kernel's bss.
    expect(image.readBigUInt64LE(16)).toBeGreaterThanOrEqual(BigInt(image.length));
  });

  it('is a few MiB, and carries no host paths', () => {
    expect(image.length).toBeLessThan(4 << 20);
    const text = image.toString('latin1');
    expect(text).toContain('Linux version 6.1.192 (ftvm@ftvm)');
    expect(text).not.toContain(packageRoot());
    expect(text).not.toContain('/tmp/');
  });

  it('VERSIONS.txt names the versions the build script expects', () => {
    const versions = readFileSync(join(linuxDir, 'VERSIONS.txt'), 'utf8');
    const script = readFileSync(join(packageRoot(), 'scripts', 'build-linux.sh'), 'utf8');
    const expected = (name: string) => script.match(new RegExp(`^readonly ${name}=(\\S+)$`, 'm'))?.[1];
    expect(expected('EXPECTED_LINUX_SOURCE')).toBe('6.1.192-3');
    expect(versions).toContain(`linux-source-6.1 ${expected('EXPECTED_LINUX_SOURCE')} (6.1.192)`);
    expect(versions).toContain(`gcc-12-riscv64-linux-gnu ${expected('EXPECTED_GCC')}`);
    expect(versions).toContain(`binutils-riscv64-linux-gnu ${expected('EXPECTED_BINUTILS')}`);
  });

  it('the committed .config holds every line of the fragment', () => {
    const config = readFileSync(join(packageRoot(), 'linux', 'kernel', 'config'), 'utf8').split('\n');
    const fragment = readFileSync(join(packageRoot(), 'linux', 'kernel', 'ftvm_rv32.config'), 'utf8');
    const settings = fragment.split('\n').filter((line) => /^(CONFIG_|# CONFIG_\w+ is not set$)/.test(line));
    expect(settings.length).toBeGreaterThan(50);
    for (const line of settings) {
      if (line.startsWith('CONFIG_')) expect(config).toContain(line);
      else expect(config.filter((set) => set.startsWith(`${line.split(' ')[1]}=`))).toEqual([]);
    }
  });
});

/** What the console printed so far, with the serial tty's "\r\n" line ends (ONLCR) as "\n". */
function consoleOf(qemu: ReferenceQemu): string {
  return qemu.output.replaceAll('\r\n', '\n');
}

describe.skipIf(qemuMissing !== undefined)(`the Linux Image on QEMU ${qemuMissing ?? ''}`, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'ftvm-guests-linux-'));
  const running = new Set<ReferenceQemu>();
  afterEach(async () => {
    await Promise.all([...running].map((qemu) => qemu.stop()));
    running.clear();
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  async function boot(diskPath: string): Promise<{ qemu: ReferenceQemu; client: UdpClient }> {
    const hostPort = await freeUdpPort();
    const qemu = new ReferenceQemu(kernelImage, {
      bios: firmware,
      diskPath,
      network: { udpForwards: [{ hostPort, guestPort: 5555 }] },
    });
    running.add(qemu);
    await qemu.waitForOutput(/kv: ready: listening on udp port 5555 \(persistent\)\r?\n/, 120_000);
    return { qemu, client: new UdpClient(hostPort) };
  }

  async function powerOff(qemu: ReferenceQemu): Promise<void> {
    qemu.type('poweroff\n');
    expect(await qemu.exited).toEqual({ status: 0, signal: null });
    expect(consoleOf(qemu)).toContain('kv: powering off\n');
    expect(consoleOf(qemu)).toContain('reboot: Power down');
  }

  it('boots to the kv service, serves it over UDP, keeps the keys across a reboot, and powers off', async () => {
    const diskPath = join(scratch, 'kv.img');
    writeFileSync(diskPath, Buffer.alloc(1 << 20)); // 2048 sectors; the store needs 1537

    const first = await boot(diskPath);
    expect(consoleOf(first.qemu)).toContain('Linux version 6.1.192 (ftvm@ftvm)');
    expect(consoleOf(first.qemu)).toContain('kv: starting\nkv: disk: formatted a new store\n');
    const client = first.client;
    try {
      expect(await client.request('1 PUT greeting hello')).toBe('1 OK');
      expect(await client.request('2 GET greeting')).toBe('2 OK hello');
      expect(await client.request('3 INCR visits')).toBe('3 OK 1');
      // A retry (same id, same client) gets the remembered answer and is not applied again.
      expect(await client.request('3 INCR visits')).toBe('3 OK 1');
      expect(await client.request('4 INCR visits\n')).toBe('4 OK 2\n');
      expect(await client.request('5 DEL greeting')).toBe('5 OK');
      expect(await client.request('6 GET greeting')).toBe('6 NOTFOUND');
      expect(await client.request('7 PUT kept a-value')).toBe('7 OK');
      expect(await client.request('8 PUT key two words')).toBe('8 ERR value has spaces');
      expect(await client.request('9 FETCH kept')).toBe('9 ERR unknown operation');
      expect(await client.request('10  GET kept')).toBe('10 ERR malformed request');
      expect(await client.request('11 GET bad/key')).toBe('11 ERR bad key');
      client.send('no-id GET kept');
      expect(await client.next(1000)).toBeUndefined();
    } finally {
      client.close();
    }
    // Another client (another port): the same id is a new request.
    const other = new UdpClient(client.serverPort);
    try {
      expect(await other.request('3 INCR visits')).toBe('3 OK 3');
    } finally {
      other.close();
    }
    await powerOff(first.qemu);

    const second = await boot(diskPath);
    expect(consoleOf(second.qemu)).toContain('kv: disk: loaded 2 keys\n');
    try {
      expect(await second.client.request('1 GET visits')).toBe('1 OK 3');
      expect(await second.client.request('2 GET kept')).toBe('2 OK a-value');
      expect(await second.client.request('3 GET greeting')).toBe('3 NOTFOUND');
    } finally {
      second.client.close();
    }
    await powerOff(second.qemu);
  }, 300_000);
});
