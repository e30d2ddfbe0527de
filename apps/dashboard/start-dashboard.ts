/**
 * The dashboard server: `node:http`, one page and a small JSON API. It binds to loopback
 * by default and answers only requests addressed to the names it is meant to be reached by
 * (a DNS rebinding page can't reach it). It takes changes only with the dashboard token in
 * a header, as same-origin JSON (a page on another site can send neither), and takes none
 * at all when read-only.
 */
import { z } from 'zod';
import { ConfigurationError, type GuardrailsOptions, type Migration, type Queryable } from '../../src/index.js';
import { identifierProblem, parseOptions, validateGuardrailsOptions } from '../../src/internal.js';
import { DEFAULT_STATE_SCHEMA } from '../../src/lifecycle/index.js';
import { boundHostRules, isWildcard, parseAllowedHost } from './allowed-hosts.js';
import { createDashboardApi } from './dashboard-api.js';
import { createDashboardRoutes } from './dashboard-routes.js';
import { loadDashboardScript } from './dashboard-script.js';
import type { StateSources } from './dashboard-state.js';
import { createTokenCheck, generateToken, tokenProblem } from './dashboard-token.js';
import type { DashboardFlagControl } from './flag-control.js';
import { serveHttp } from './http-server.js';

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
   * Offer no change at all, even with `flags` (used then only to read the flags): the
   * change routes don't exist and no token is made.
   * @default false
   */
  readonly readOnly?: boolean;
  /**
   * The secret every change must carry in the `x-flagshift-token` header (at least 16
   * visible ASCII characters). The page asks the operator for it once per tab. Pass a
   * secret from your environment, never one written in code.
   * @default a new random token (256 bits), in {@link Dashboard.token}
   */
  readonly token?: string;
  /**
   * TCP port; `0` picks a free one (see {@link Dashboard.url}).
   * @default 0
   */
  readonly port?: number;
  /**
   * Address to listen on. Off loopback the page and the token cross the network in clear
   * text: put a TLS proxy in front, or reach it through an SSH tunnel instead.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * More names the dashboard answers to, besides the address it listens on (and, on
   * loopback or every address, `localhost`, `127.0.0.1`, `[::1]`): `name` on any port, or
   * `name:port`. A request
   * addressed to any other name is refused, as a DNS rebinding page's is. Required when
   * `host` is every address (`0.0.0.0`, `::`).
   * @default [] (only the address listened on)
   */
  readonly allowedHosts?: readonly string[];
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
   * How far back the mismatch-rate chart goes until the page picks another window (one of
   * `SERIES_WINDOWS`), in milliseconds.
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
  /**
   * The guardrail thresholds the application's processes use (the `thresholds` and
   * `migrations` given to `createGuardrails`), drawn on the charts: the mismatch rate's and
   * the new side's error rate's bound, and the p99 latency the new side may reach
   * (`maxLatencyRatio` times the old side's). A threshold set to `false` is not drawn.
   * @default {} (the guardrails' defaults: 1 % mismatches, 1 % new-side errors, 3x latency)
   */
  readonly guardrails?: Pick<GuardrailsOptions, 'thresholds' | 'migrations'>;
}

/** A running dashboard. */
export interface Dashboard {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  /**
   * The token changes need: the `token` option, or the one generated. `undefined` when
   * the dashboard is read-only. Not enumerable, so logging the dashboard doesn't print it.
   */
  readonly token: string | undefined;
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
  readOnly: z.boolean().optional(),
  // Its rules are checked apart (tokenProblem), so no message ever quotes it.
  token: z.string().optional(),
  port: z.number().int().min(0).max(65_535).optional(),
  host: z.string().min(1).optional(),
  allowedHosts: z
    .array(
      z
        .string()
        .refine(
          (entry) => parseAllowedHost(entry) !== undefined,
          'must be a host name or address, `name` or `name:port` (an IPv6 address in brackets)',
        ),
      'must be a list of host names',
    )
    .optional(),
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
  // Shape-checked here; its thresholds by the guardrails' own validation.
  guardrails: z
    .custom<Pick<GuardrailsOptions, 'thresholds' | 'migrations'>>(
      (value) => typeof value === 'object' && value !== null && !Array.isArray(value),
    )
    .optional(),
});

/** What each option must be, for the messages of invalid ones. */
const expectations = {
  readOnly: 'true or false',
  token: 'a string',
  port: 'an integer from 0 to 65535',
  host: 'a non-empty string',
  allowedHosts: 'a list of host names, each `name` or `name:port` (an IPv6 address in brackets)',
  stateSchema: 'a plain identifier (letters, digits, _)',
  flagTable: 'an object with "schema" and/or "table"',
  'flagTable.schema': 'a plain identifier (letters, digits, _)',
  'flagTable.table': 'a plain identifier (letters, digits, _)',
  refreshMs: 'an integer from 250 to 600000',
  seriesWindowMs: 'an integer from 10000 to 604800000',
  seriesBucketMs: 'an integer from 100 to 86400000',
  metricsMaxAgeMs: 'an integer of at least 1',
  sampleLimit: 'an integer from 0 to 1000',
  guardrails: 'an object with "thresholds" and/or "migrations", as createGuardrails takes them',
};

/**
 * Starts the dashboard: one page showing, per migration, its stage and read percentage,
 * charts of the fleet's mismatch rate and each side's error rate and p99 latency over time
 * with the guardrail thresholds drawn, recent redacted mismatch samples with their field
 * diffs, latency per side, backfill progress and the last verification, refreshed live;
 * with `flags`, also ramp and kill controls, each confirmed in the page first.
 *
 * Metrics come from processes that publish them with `createMetricsPublisher` (from
 * `flagshift/lifecycle`); without any, the page says so. Routes: `GET /` (the page),
 * `GET /api/state` (JSON; `?window=5m` ... `24h` for the series over one of
 * `SERIES_WINDOWS`) and, unless read-only, `POST /api/migrations/:name/flags`
 * (`{ stage?, percent? }`), `POST /api/migrations/:name/kill` and `POST /api/token` (does
 * the token work?). Each `POST` needs the token in the `x-flagshift-token` header, JSON,
 * no query string and, when the browser names it, the dashboard's own origin.
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
 *   token: process.env.FLAGSHIFT_DASHBOARD_TOKEN, // unset: one is generated
 *   port: 4580,
 * });
 * console.log(`dashboard at ${dashboard.url}`); // the token is given to operators apart, never logged
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
  const allowed = (o.allowedHosts ?? []).map((entry) => parseAllowedHost(entry)!);
  if (isWildcard(host) && allowed.length === 0) {
    throw new ConfigurationError(
      `dashboard listening on every address (${host}) needs option "allowedHosts": the names operators reach it by ` +
        '(a request addressed to any other name is refused, against DNS rebinding)',
      { path: 'allowedHosts' },
    );
  }
  const controls = o.flags !== undefined && o.readOnly !== true;
  if (o.token !== undefined) {
    const problem = tokenProblem(o.token);
    if (problem !== undefined) {
      throw new ConfigurationError(`dashboard option "token" ${problem}`, { path: 'token' });
    }
  }
  const token = controls ? (o.token ?? generateToken()) : undefined;
  const guardrails = validateGuardrailsOptions(o.guardrails ?? {});
  const sources: StateSources = {
    db: o.driver,
    migrations: o.migrations,
    flags: o.flags,
    controls,
    stateSchema: o.stateSchema ?? DEFAULT_STATE_SCHEMA,
    flagTable: o.flagTable ?? {},
    thresholdsOf: guardrails.thresholdsOf,
    metrics: {
      seriesWindowMs: o.seriesWindowMs ?? 1_800_000,
      seriesBucketMs: o.seriesBucketMs ?? 30_000,
      sampleLimit: o.sampleLimit ?? 20,
      ...(o.metricsMaxAgeMs === undefined ? {} : { maxAgeMs: o.metricsMaxAgeMs }),
    },
  };
  // Before listening: a dashboard whose page has no script must not start, not serve a blank page.
  const script = await loadDashboardScript();
  const service = await serveHttp({
    host,
    port: o.port ?? 0,
    handle: createDashboardRoutes({
      api: createDashboardApi(sources),
      migrations: o.migrations,
      refreshMs: o.refreshMs ?? 1500,
      script,
      hosts: [...boundHostRules(host), ...allowed],
      tokenCheck: token === undefined ? undefined : createTokenCheck(token),
    }),
  });
  return Object.defineProperty({ url: service.url, close: service.close }, 'token', {
    value: token,
    enumerable: false,
  }) as Dashboard;
}
