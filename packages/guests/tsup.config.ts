import { defineConfig } from 'tsup';
import { packageBuild } from '../../tsup.shared.ts';

// Node-only package (it hands out file paths and starts QEMU), so build for the node platform;
// shims give the CommonJS build an import.meta.url.
export default defineConfig({ ...packageBuild(), platform: 'node', shims: true });
