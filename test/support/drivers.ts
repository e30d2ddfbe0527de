/**
 * Runs one integration suite against every driver (kysely's pattern), each test in a fresh
 * schema of its own (pg-boss's pattern), so files can run in parallel on one server.
 *
 * @example
 * ```ts
 * describeDrivers('users table', (getCtx) => {
 *   it('insert: reports one row', async () => {
 *     const { driver, sql } = getCtx();
 *     await sql('CREATE TABLE users (id int PRIMARY KEY)');
 *     expect((await driver.query('INSERT INTO users VALUES ($1)', [1])).rowCount).toBe(1);
 *   });
 * });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { createPgDriver } from 'flagshift/pg';
import { createPgliteDriver } from 'flagshift/pglite';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';
import type { Driver, Queryable } from '../../src/kernel/driver.js';
import { ConnectionSet, testDatabaseUrl } from './pg-connections.js';

/** The drivers every suite runs against. */
export const driverKinds = ['pglite', 'pg'] as const;

/** One of {@link driverKinds}. */
export type DriverKind = (typeof driverKinds)[number];

/** What a test of a {@link describeDrivers} suite works with; fresh for every test. */
export interface DriverContext {
  readonly kind: DriverKind;
  /** The driver under test. On `pg` it is over a pool (max 8) of its own. */
  readonly driver: Driver;
  /**
   * The test's own schema, `t_<hex>`: safe to splice into SQL unquoted. It comes first in
   * the `search_path` of `driver`, `admin` and the `pg*()` connections, then `public`.
   * Dropped with CASCADE after the test.
   */
  readonly schema: string;
  /**
   * Superuser statements for setup and inspection, outside `driver`. On PGlite it is the
   * same single connection: don't await it inside a `driver.transaction()` body.
   */
  readonly admin: Queryable;
  /** Superuser connection string of the test server; `undefined` on PGlite. */
  readonly connectionString: string | undefined;
  /** Runs one statement through `admin` and returns its rows. */
  sql<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>;
  /** `"schema"."name"`: a table of the test's schema, quoted. */
  table(name: string): string;
  /** `pg` only: an extra pool to the test server, on the test's schema; closed after the test. */
  pgPool(config?: pg.PoolConfig): pg.Pool;
  /** `pg` only: an extra connected client, on the test's schema; closed after the test. */
  pgClient(config?: pg.ClientConfig): Promise<pg.Client>;
}

/** Options of {@link describeDrivers}. */
export interface DescribeDriversOptions {
  /**
   * Drivers to run the suite on. FLAGSHIFT_TEST_DRIVERS (e.g. `pglite`) narrows them further.
   * @default driverKinds
   */
  readonly kinds?: readonly DriverKind[];
}

/** Per-file resources of one driver kind, and per-test setup and cleanup on top of them. */
interface DriverHarness {
  open(): Promise<void>;
  startTest(schema: string): Promise<DriverContext>;
  endTest(schema: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Declares `name` once per driver kind (`describe('name [pglite]')`, ...) and runs `body`
 * in each; `getCtx()` returns the current test's {@link DriverContext}. Tests of one suite
 * share the file's PGlite instance or server, so don't make them `concurrent`.
 */
export function describeDrivers(
  name: string,
  body: (getCtx: () => DriverContext) => void,
  options: DescribeDriversOptions = {},
): void {
  for (const kind of selectedKinds(options.kinds ?? driverKinds)) {
    describe(`${name} [${kind}]`, () => {
      const harness = kind === 'pg' ? pgHarness() : pgliteHarness();
      let current: DriverContext | undefined;
      beforeAll(() => harness.open());
      beforeEach(async () => {
        current = await harness.startTest(`t_${randomBytes(6).toString('hex')}`);
      });
      afterEach(async () => {
        const schema = current?.schema;
        current = undefined;
        if (schema !== undefined) await harness.endTest(schema);
      });
      afterAll(() => harness.close());
      body(() => {
        if (current === undefined)
          throw new Error('getCtx() is only available inside a test (or beforeEach/afterEach)');
        return current;
      });
    });
  }
}

function selectedKinds(kinds: readonly DriverKind[]): DriverKind[] {
  const only = process.env['FLAGSHIFT_TEST_DRIVERS']?.split(',').map((kind) => kind.trim());
  return kinds.filter((kind) => only === undefined || only.includes(kind));
}

function pgliteHarness(): DriverHarness {
  let db: PGlite | undefined;
  const open = () => {
    if (db === undefined) throw new Error('PGlite is not open');
    return db;
  };
  return {
    async open() {
      db = new PGlite();
      await db.waitReady;
    },
    async startTest(schema) {
      const pglite = open();
      await pglite.query(`CREATE SCHEMA ${schema}`);
      await pglite.query(`SET search_path TO ${schema}, public`);
      const admin: Queryable = {
        async query<Row>(text: string, params?: readonly unknown[]) {
          const result = await pglite.query<Row>(text, params === undefined ? [] : [...params]);
          return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? null };
        },
      };
      return context({
        kind: 'pglite',
        driver: createPgliteDriver(pglite),
        schema,
        admin,
        connectionString: undefined,
      });
    },
    async endTest(schema) {
      const pglite = open();
      // The one session outlives the test: undo whatever it changed (a SET ROLE, a setting).
      await pglite.query('RESET SESSION AUTHORIZATION');
      await pglite.query('RESET ROLE');
      await pglite.query('RESET ALL');
      await pglite.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
    async close() {
      await db?.close();
      db = undefined;
    },
  };
}

function pgHarness(): DriverHarness {
  const fileConnections = new ConnectionSet({ applicationName: 'flagshift-test-root' });
  const testConnections = new Map<string, ConnectionSet>();
  let root: pg.Pool | undefined;
  const rootPool = () => {
    if (root === undefined) throw new Error('the test server pool is not open');
    return root;
  };
  return {
    async open() {
      root = fileConnections.pool({ max: 2 });
    },
    async startTest(schema) {
      await rootPool().query(`CREATE SCHEMA ${schema}`);
      const connections = new ConnectionSet({ schema, applicationName: applicationName(schema) });
      testConnections.set(schema, connections);
      const adminPool = connections.pool({ max: 2 });
      const admin: Queryable = {
        async query<Row>(text: string, params?: readonly unknown[]) {
          const result = await adminPool.query(text, params === undefined ? [] : [...params]);
          return { rows: result.rows as Row[], rowCount: result.rowCount };
        },
      };
      return context({
        kind: 'pg',
        driver: createPgDriver(connections.pool({ max: 8 })),
        schema,
        admin,
        connectionString: testDatabaseUrl(),
        pgPool: (config) => connections.pool(config),
        pgClient: (config) => connections.client(config),
      });
    },
    async endTest(schema) {
      await testConnections.get(schema)?.closeAll();
      testConnections.delete(schema);
      // Whatever a test leaked (an open transaction, a checked-out client) would block the DROP.
      await rootPool().query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
        [applicationName(schema)],
      );
      await rootPool().query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
    async close() {
      await Promise.all([...testConnections.values()].map((connections) => connections.closeAll()));
      await fileConnections.closeAll();
      root = undefined;
    },
  };
}

function applicationName(schema: string): string {
  return `flagshift-test-${schema}`;
}

interface ContextParts {
  readonly kind: DriverKind;
  readonly driver: Driver;
  readonly schema: string;
  readonly admin: Queryable;
  readonly connectionString: string | undefined;
  readonly pgPool?: (config?: pg.PoolConfig) => pg.Pool;
  readonly pgClient?: (config?: pg.ClientConfig) => Promise<pg.Client>;
}

function context(parts: ContextParts): DriverContext {
  const { kind, schema, admin } = parts;
  const pgOnly = (helper: string) => () => {
    throw new Error(`${helper}() needs a real server: it is only available in the "pg" driver kind, not "${kind}"`);
  };
  return {
    kind,
    driver: parts.driver,
    schema,
    admin,
    connectionString: parts.connectionString,
    sql: async <Row>(text: string, params?: readonly unknown[]) => (await admin.query<Row>(text, params)).rows,
    table: (name) => `"${schema}"."${name.replaceAll('"', '""')}"`,
    pgPool: parts.pgPool ?? pgOnly('pgPool'),
    pgClient: parts.pgClient ?? pgOnly('pgClient'),
  };
}
