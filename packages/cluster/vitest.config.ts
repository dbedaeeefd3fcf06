import { defineConfig, mergeConfig } from 'vitest/config';
import { sharedTestConfig } from '../../vitest.shared.ts';

// Each test file starts a cluster of real processes: one at a time, so that they do not starve
// each other's failure detectors on a small machine.
export default mergeConfig(sharedTestConfig, defineConfig({ test: { fileParallelism: false } }));
