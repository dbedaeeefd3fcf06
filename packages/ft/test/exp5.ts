import { createSocket } from 'node:dgram';
import { Cluster, until } from '/work/main/packages/ft/test/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function load(port: number, clients: number, ms: number) {
  let done = 0;
  const lat: number[] = [];
  const stop = performance.now() + ms;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const s = createSocket('udp4');
      let id = 1;
      while (performance.now() < stop) {
        const rid = id++;
        const t = performance.now();
        const ok = await new Promise<boolean>((res) => {
          const on = (m: Buffer) => {
            if (m.toString().startsWith(`${rid} `)) {
              s.off('message', on);
              res(true);
            }
          };
          s.on('message', on);
          setTimeout(() => {
            s.off('message', on);
            res(false);
          }, 500);
          s.send(`${rid} PUT c${c}k${rid % 16} v${rid}`, port, '127.0.0.1');
        });
        if (ok) {
          done++;
          lat.push(performance.now() - t);
        }
      }
      s.close();
    }),
  );
  lat.sort((a, b) => a - b);
  return `${(done / (ms / 1000)).toFixed(0)} req/s p50 ${lat[lat.length >> 1]?.toFixed(2)}`;
}
const mode = process.argv[2];
const c = new Cluster({
  image: 'kv',
  diskBytes: 4 << 20,
  transport: 'tcp',
  config: { failureTimeoutMs: 300, heartbeatIntervalMs: 50 },
});
await c.start();
if (mode === 'off') c.startStandalone();
else await c.startPair();
await load(c.port, 4, 1500);
console.log(mode, await load(c.port, 4, 3000), await load(c.port, 1, 2000));
await c.close();
process.exit(0);
