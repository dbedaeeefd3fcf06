import { readFileSync } from 'node:fs';
import { MemoryBlockBackend, VirtioBlock, VirtioMmioTransport, VirtioNet } from '@ftvm/devices';
import { imagePath } from '@ftvm/guests';
import { Machine } from '@ftvm/machine';
import { parseUserNetdev, UserGateway, VirtualSwitch } from '@ftvm/net';

const image = new Uint8Array(readFileSync(imagePath('kv')));
const disk = new MemoryBlockBackend(1537 * 512 + 4096);
const nic = new VirtioNet();
const slots: (VirtioMmioTransport | undefined)[] = new Array(8).fill(undefined);
slots[7] = new VirtioMmioTransport(new VirtioBlock({ backend: disk }));
slots[6] = new VirtioMmioTransport(nic);
let console_ = '';
const sw = new VirtualSwitch();
const gw = new UserGateway({ forwards: parseUserNetdev('user,hostfwd=udp::5555-:5555').forwards });
gw.connect(sw.attach(gw));
const nicLink = sw.attach({ deliver: (f) => nic.receive(f) });
const replies: string[] = [];
gw.connectHost({ sendToHost: (d) => replies.push(new TextDecoder().decode(d.payload)) });
const m = new Machine({
  clock: 'icount',
  ramSizeBytes: Number(process.argv[3] ?? 16) * 1024 * 1024,
  virtioSlots: slots,
  onOutput: (o) => {
    if (o.kind === 'console') console_ += new TextDecoder().decode(o.data);
    else if (o.kind === 'frame') nicLink.send(o.data);
  },
});
m.loadImage(image, 'kv');
const t0 = performance.now();
async function runUntilIdle() {
  for (let i = 0; i < 10000; i++) {
    const o = m.runSlice(1_000_000);
    await new Promise((r) => setImmediate(r));
    if (o.end === 'waiting' && !m.hasPendingInput) {
      await new Promise((r) => setImmediate(r));
      if (!m.hasPendingInput) return;
    }
  }
}
await runUntilIdle();
console.log(console_, m.cpu.icount, performance.now() - t0);
const ic = m.cpu.icount;
const t1 = performance.now();
for (let i = 1; i <= 50; i++) {
  gw.receiveFromHost(
    0,
    { address: '192.0.2.1', port: 4000 },
    new TextEncoder().encode(`${i} PUT k${i % 7} v${i}`),
  );
  await runUntilIdle();
}
console.log(replies.slice(-3), 'steps/req', (m.cpu.icount - ic) / 50, 'ms', performance.now() - t1);
