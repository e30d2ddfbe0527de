import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * `flagshift-source` makes the package's self-imports (`flagshift`, `flagshift/pg`, ...)
 * resolve to the TypeScript sources instead of `dist/`. Vite replaces its default
 * conditions when any are given, so they are repeated here; tests run in Vite's SSR
 * environment, and Vitest passes the SSR conditions on to Node for external modules too.
 */
const serverConditions = ['flagshift-source', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions: ['flagshift-source', 'module', 'development|production'] },
  ssr: { resolve: { conditions: serverConditions } },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/postgres.ts'],
    // PGlite compiles its WebAssembly per instance: seconds, more when files run in parallel.
    hookTimeout: 60_000,
    // Test files spend most of their time waiting on the database, not on a core: one
    // worker per core (vitest's default leaves one core idle, which on two cores is half).
    maxWorkers: Math.max(2, availableParallelism()),
    testTimeout: 30_000,
  },
});
