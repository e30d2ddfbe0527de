/**
 * The dashboard server: `node:http`, one page and a small JSON API. It binds to loopback
 * by default and, while it does, answers only requests addressed to loopback (a DNS
 * rebinding page can't reach it) and takes changes only as same-origin JSON (a page on
 * another site can't post a form to it).
 */
import { z } from 'zod';
import { ConfigurationError, type Migration, type Queryable } from '../../src/index.js';
import { identifierProblem, parseOptions } from '../../src/internal.js';
import { DEFAULT_STATE_SCHEMA } from '../../src/lifecycle/index.js';
import { createDashboardApi } from './dashboard-api.js';
import { createDashboardRoutes } from './dashboard-routes.js';
import { loadDashboardScript } from './dashboard-script.js';
import type { StateSources } from './dashboard-state.js';
import type { DashboardFlagControl } from './flag-control.js';
import { serveHttp } from './http-server.js';
import { isLoopback } from './request-guards.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** The database whose flagshift state is shown (a flagshift driver, or anything with `query`). */
  readonly driver: Queryable;
  /** The migrations to show, in this order. */
  readonly migrations: readonly Migration[];
  /**
   * Ramp and kill controls; without them the page is read-only. Give
   * `createPostgresFlagControl(driver)` when the processes use the PostgreSQL flag provider.
   * @default undefined (read-only)
   */
  readonly flags?: DashboardFlagControl;
  /**
   * TCP port; `0` picks a free one (see {@link Dashboard.url}).
   * @default 0
   */
  readonly port?: number;
  /**
   * Address to listen on. Anything but loopback exposes the controls to the network, with
   * no authentication: put a proxy with authentication in front.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Schema of flagshift's state tables (metrics, backfill checkpoints, verifications).
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
  /**
   * Where the PostgreSQL flag table is, read when `flags` has no `get`.
   * @default { schema: 'flagshift', table: 'flags' }
   */
  readonly flagTable?: { readonly schema?: string; readonly table?: string };
  /**
   * How often the page refreshes, in milliseconds.
   * @default 1500
   */
  readonly refreshMs?: number;
  /**
   * How far back the mismatch-rate chart goes, in milliseconds.
   * @default 1800000 (30 minutes)
   */
  readonly seriesWindowMs?: number;
  /**
   * Width of one point of the chart, in milliseconds.
   * @default 30000
   */
  readonly seriesBucketMs?: number;
  /**
   * A process's published metrics count while younger than this, in milliseconds.
   * @default three of the process's publish intervals, plus one second
   */
  readonly metricsMaxAgeMs?: number;
  /**
   * Mismatch samples shown per migration.
   * @default 20
   */
  readonly sampleLimit?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

const identifier = z
  .string()
  .refine((value) => identifierProblem(value) === undefined, 'must be a plain identifier (letters, digits, _)');

const optionsSchema = z.strictObject({
  driver: z.custom<Queryable>(
    (value) => typeof (value as Partial<Queryable> | null)?.query === 'function',
    'must be a driver from flagshift/pg or flagshift/pglite',
  ),
  migrations: z
    .array(
      z.custom<Migration>(
        (value) => (value as { kind?: unknown } | null)?.kind === 'migration',
        'must be migrations from defineMigration()',
      ),
      'must be a list of migrations from defineMigration()',
    )
    .min(1, 'must name at least one migration'),
  flags: z
    .custom<DashboardFlagControl>(
      (value) =>
        typeof (value as Partial<DashboardFlagControl> | null)?.set === 'function' &&
        typeof (value as Partial<DashboardFlagControl>).kill === 'function',
      'must have set() and kill() functions, like createPostgresFlagControl(driver)',
    )
    .optional(),
  port: z.number().int().min(0).max(65_535).optional(),
  host: z.string().min(1).optional(),
  stateSchema: identifier.optional(),
  flagTable: z.strictObject({ schema: identifier.optional(), table: identifier.optional() }).optional(),
  refreshMs: z.number().int().min(250).max(600_000).optional(),
  seriesWindowMs: z
    .number()
    .int()
    .min(10_000)
    .max(7 * 86_400_000)
    .optional(),
  seriesBucketMs: z.number().int().min(100).max(86_400_000).optional(),
  metricsMaxAgeMs: z.number().int().min(1).optional(),
  sampleLimit: z.number().int().min(0).max(1000).optional(),
});

/** What each option must be, for the messages of invalid ones. */
const expectations = {
  port: 'an integer from 0 to 65535',
  host: 'a non-empty string',
  stateSchema: 'a plain identifier (letters, digits, _)',
  flagTable: 'an object with "schema" and/or "table"',
  'flagTable.schema': 'a plain identifier (letters, digits, _)',
  'flagTable.table': 'a plain identifier (letters, digits, _)',
  refreshMs: 'an integer from 250 to 600000',
  seriesWindowMs: 'an integer from 10000 to 604800000',
  seriesBucketMs: 'an integer from 100 to 86400000',
  metricsMaxAgeMs: 'an integer of at least 1',
  sampleLimit: 'an integer from 0 to 1000',
};

/**
 * Starts the dashboard: one page showing, per migration, its stage and read percentage,
 * the fleet's mismatch rate over time, recent redacted mismatch samples with their field
 * diffs, latency per side, backfill progress and the last verification, refreshed live;
 * with `flags`, also ramp and kill controls, each confirmed in the page first.
 *
 * Metrics come from processes that publish them with `createMetricsPublisher` (from
 * `flagshift/lifecycle`); without any, the page says so. Routes: `GET /` (the page),
 * `GET /api/state` (JSON), `POST /api/migrations/:name/flags` (`{ stage?, percent? }`)
 * and `POST /api/migrations/:name/kill`.
 *
 * @throws {ConfigurationError} when an option is invalid, or the page's script is missing
 *   (a package built without it).
 * @example
 * ```ts
 * import { createPgDriver } from 'flagshift/pg';
 * import { createPostgresFlagControl, startDashboard } from 'flagshift/dashboard';
 *
 * const driver = createPgDriver(pool);
 * const dashboard = await startDashboard({
 *   driver,
 *   migrations: [usernameRename],
 *   flags: createPostgresFlagControl(driver),
 *   port: 4580,
 * });
 * console.log(`dashboard at ${dashboard.url}`);
 * ```
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const o = parseOptions('dashboard', optionsSchema, options, expectations);
  const names = new Set<string>();
  for (const migration of o.migrations) {
    if (names.has(migration.name)) {
      throw new ConfigurationError(`dashboard option "migrations" names migration "${migration.name}" twice`, {
        path: 'migrations',
      });
    }
    names.add(migration.name);
  }
  const host = o.host ?? '127.0.0.1';
  const sources: StateSources = {
    db: o.driver,
    migrations: o.migrations,
    flags: o.flags,
    stateSchema: o.stateSchema ?? DEFAULT_STATE_SCHEMA,
    flagTable: o.flagTable ?? {},
    metrics: {
      seriesWindowMs: o.seriesWindowMs ?? 1_800_000,
      seriesBucketMs: o.seriesBucketMs ?? 30_000,
      sampleLimit: o.sampleLimit ?? 20,
      ...(o.metricsMaxAgeMs === undefined ? {} : { maxAgeMs: o.metricsMaxAgeMs }),
    },
  };
  // Before listening: a dashboard whose page has no script must not start, not serve a blank page.
  const script = await loadDashboardScript();
  return serveHttp({
    host,
    port: o.port ?? 0,
    handle: createDashboardRoutes({
      api: createDashboardApi(sources),
      migrations: o.migrations,
      controls: o.flags !== undefined,
      refreshMs: o.refreshMs ?? 1500,
      script,
      loopbackOnly: isLoopback(host),
    }),
  });
}
