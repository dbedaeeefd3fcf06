import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.ts';

export default defineConfig({
  ...packageBuild({
    index: 'src/index.ts',
    'node/index': 'src/node/index.ts',
    // The worker thread's entry is a file of its own: a host starts it by path.
    'node/vm-worker-entry': 'src/node/vm-worker-entry.ts',
  }),
  shims: true,
});
