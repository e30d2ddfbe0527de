/**
 * Connections to the run's PostgreSQL test server (test/setup/postgres.ts), tracked so that
 * whoever opened them can close them all at once, however the test ended.
 */
import pg from 'pg';
import { inject } from 'vitest';

/** Superuser connection string of the test server's database. */
export function testDatabaseUrl(): string {
  return inject('postgres').connectionString;
}

/** Where new connections land: `search_path` and an `application_name` to find them by. */
export interface ConnectionTarget {
  /** First schema of the connections' `search_path` (then `public`). */
  readonly schema?: string;
  /** `application_name` of the connections, so leftovers can be found and terminated. */
  readonly applicationName?: string;
}

/** Pools and clients opened for one owner (a test, a file), closed together by {@link closeAll}. */
export class ConnectionSet {
  readonly #closers = new Set<() => Promise<void>>();
  readonly #target: ConnectionTarget;

  constructor(target: ConnectionTarget = {}) {
    this.#target = target;
  }

  /** A pool to the test server, not yet connected. */
  pool(config: pg.PoolConfig = {}): pg.Pool {
    const pool = new pg.Pool({ ...this.#config(), ...config });
    // A connection terminated by the cleanup below must not crash the run as an unhandled 'error'.
    pool.on('error', () => undefined);
    this.#track(() => pool.end());
    return pool;
  }

  /** A client connected to the test server. */
  async client(config: pg.ClientConfig = {}): Promise<pg.Client> {
    const client = new pg.Client({ ...this.#config(), ...config });
    client.on('error', () => undefined);
    this.#track(() => client.end());
    await client.connect();
    return client;
  }

  /** Closes everything opened so far; a close that hangs (a leaked checkout) is abandoned after `timeoutMs`. */
  async closeAll(timeoutMs = 5_000): Promise<void> {
    const closers = [...this.#closers];
    this.#closers.clear();
    await Promise.all(
      closers.map((close) =>
        withTimeout(
          close().catch(() => undefined),
          timeoutMs,
        ),
      ),
    );
  }

  #track(close: () => Promise<void>): void {
    let closed: Promise<void> | undefined;
    this.#closers.add(() => {
      closed ??= close();
      return closed;
    });
  }

  #config(): pg.ClientConfig {
    const { schema, applicationName } = this.#target;
    return {
      connectionString: testDatabaseUrl(),
      ...(applicationName === undefined ? {} : { application_name: applicationName }),
      ...(schema === undefined ? {} : { options: `-c search_path=${schema},public` }),
    };
  }
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
