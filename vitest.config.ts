import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Tests start real servers on port 0; forks keep native modules (better-sqlite3) isolated.
    pool: 'forks',
  },
});
