import { defineConfig } from 'tsup';

export default defineConfig({
  // `command` on its own: the ftvm CLI loads it to define `ftvm demo` without the demo itself.
  entry: ['src/index.ts', 'src/command.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
});
