import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings: resolve workspace packages to their `src/` through the `@ftvm/source`
 * export condition, so tests run without a build first.
 */
export const sharedTestConfig = defineConfig({
  resolve: { conditions: ['@ftvm/source'] },
  ssr: { resolve: { conditions: ['@ftvm/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
