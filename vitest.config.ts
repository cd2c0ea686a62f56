import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) builds without an exports map. Node loads the
    // CJS build for yoga and graphql-ws; make the project's own files use that same copy, or
    // `instanceof GraphQLError` checks across the two copies fail under vitest.
    alias: { graphql: fileURLToPath(new URL('./node_modules/graphql/index.js', import.meta.url)) },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    environment: 'node',
    // The default summary, then which optional services (PostgreSQL, Redis, Chromium) were missing
    // and the test groups skipped because of them.
    reporters: ['default', './test/reporters/optional-services.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Tests start real servers on port 0; forks keep native modules (better-sqlite3) isolated.
    pool: 'forks',
    // A worker per core (vitest's default leaves one idle: a single worker on a 2-core machine).
    // Most test time is spent waiting on sockets, timers and child processes, not on the CPU.
    maxWorkers: '100%',
    // Test files in a worker share its module graph instead of importing yoga, TypeORM and the
    // schema again for each file (that import time was most of the run). Files keep no state in
    // modules; the one shared sampler (eventLoopLoad) is awaited, not assumed, by its test.
    isolate: false,
  },
});
