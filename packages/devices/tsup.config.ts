import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.ts';

// Three entries: the models, the test harness behind the `./test` subpath export, and the Node-only
// host backends behind `./node`.
export default defineConfig(
  packageBuild({
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'node/index': 'src/node/index.ts',
  }),
);
