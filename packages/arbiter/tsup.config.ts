import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.ts';

// Three entries: the in-memory arbiter (runs anywhere), the Node-only file and etcd arbiters behind
// `./node`, and the test etcd helper behind `./test`.
export default defineConfig(
  packageBuild({
    index: 'src/index.ts',
    'node/index': 'src/node/index.ts',
    'test/index': 'src/test/index.ts',
  }),
);
