import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Worker entries bundled once per run (src/util/tsWorker.ts): actor runs skip tsx in their workers.
    globalSetup: ['test/setup/workerBundles.ts'],
  },
});
