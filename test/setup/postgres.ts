/**
 * Vitest global setup: one real PostgreSQL server for the whole run, shared by every test
 * file through `inject('postgres')`. Files isolate themselves by schema (see
 * test/support/drivers.ts), so they can run in parallel on the one server.
 *
 * With FLAGSHIFT_TEST_DATABASE_URL set, that server is used and nothing is started.
 */
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../scripts/embedded-postgres.js';

/** What the tests get from `inject('postgres')`. */
export interface TestPostgres {
  /** Superuser connection string of the test database. */
  readonly connectionString: string;
  /** Whether the server was started for this run (as opposed to FLAGSHIFT_TEST_DATABASE_URL). */
  readonly embedded: boolean;
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: TestPostgres;
  }
}

/** Settings that trade durability for speed, and room for many parallel test pools. */
const settings = {
  max_connections: '200',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  shared_buffers: '128MB',
  max_locks_per_transaction: '256',
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env['FLAGSHIFT_TEST_DATABASE_URL'];
  if (external !== undefined && external !== '') {
    project.provide('postgres', { connectionString: external, embedded: false });
    return async () => undefined;
  }
  const server = await startEmbeddedPostgres({ settings, tempDirPrefix: 'flagshift-pg-', serverName: 'test server' });
  project.provide('postgres', { connectionString: server.connectionString, embedded: true });
  return server.stop;
}
