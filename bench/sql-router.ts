/**
 * Part 5: the SQL router's cost. The same Kysely query through the same pg pool (one
 * connection), once through the pool and once through `routePool(pool)`, interleaved, with
 * a warm plan cache. Rows at `complete` send the same SQL either way, so what is left is
 * the router's own work (plan-cache lookup, routing, the result hand-back); the
 * `dual-write/same-sql` row sends the router's rewritten statement through the bare pool.
 * Plan-cache misses are reported: a warm cache misses once per distinct text and routing.
 */
import { createMemoryFlags, createStageResolver, type Stage } from 'flagshift';
import { routePool, routerStats } from 'flagshift/sql';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createUsers, usersMigration } from './fixture.js';
import { interleave } from './interleave.js';
import { type LatencySummary, ratio } from './stats.js';

/** One comparison: the bare pool against the routed one. */
export interface SqlRouterComparison {
  readonly name: string;
  readonly stage: Stage;
  readonly bare: LatencySummary;
  readonly routed: LatencySummary;
  /** Routed median over bare median. */
  readonly medianRatio: number;
  readonly p99Ratio: number;
}

/** What part 5 reports. */
export interface SqlRouterResults {
  readonly comparisons: readonly SqlRouterComparison[];
  /** Plan-cache misses over the whole part (warm-up included), and hits. */
  readonly planMisses: number;
  readonly planHits: number;
}

/** Knobs of {@link runSqlRouter}. */
export interface SqlRouterOptions {
  readonly connectionString: string;
  readonly rows: number;
  readonly iterations: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

const SCHEMA = 'bench_sql';

interface Database {
  users: { id: number; username: string | null; email: string };
}

/** Runs part 5. */
export async function runSqlRouter(options: SqlRouterOptions): Promise<SqlRouterResults> {
  const { log } = options;
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 1, options: `-c search_path=${SCHEMA}` });
  pool.on('error', () => undefined);
  await createUsers(pool, SCHEMA, options.rows);
  await pool.query('CHECKPOINT');
  const migration = usersMigration(SCHEMA);
  const flags = createMemoryFlags({ [migration.stageFlagKey]: 'complete', [migration.percentFlagKey]: 100 });
  // The default flag cache, as an application runs it.
  const resolver = createStageResolver({ flags });
  const routed = routePool(pool, { migrations: [migration], flags, resolver });
  const bareDb = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const routedDb = new Kysely<Database>({ dialect: new PostgresDialect({ pool: routed }) });
  const comparisons: SqlRouterComparison[] = [];
  const measure = async (
    name: string,
    stage: Stage,
    bare: (id: number) => Promise<unknown>,
    viaRouter: (id: number) => Promise<unknown>,
  ) => {
    flags.set(migration.stageFlagKey, stage);
    resolver.clear();
    const { a, b } = await interleave(bare, viaRouter, {
      iterations: options.iterations,
      warmup: options.warmup,
      concurrency: 1,
      rows: options.rows,
    });
    const bareSummary = a.summary();
    const routedSummary = b.summary();
    const comparison = {
      name,
      stage,
      bare: bareSummary,
      routed: routedSummary,
      medianRatio: ratio(routedSummary.medianUs, bareSummary.medianUs),
      p99Ratio: ratio(routedSummary.p99Us, bareSummary.p99Us),
    };
    log(
      `${name.padEnd(24)} bare ${bareSummary.medianUs}us  routed ${routedSummary.medianUs}us  x${comparison.medianRatio}  (p99 x${comparison.p99Ratio})`,
    );
    comparisons.push(comparison);
  };
  const read = (db: Kysely<Database>) => (id: number) =>
    db.selectFrom('users').select(['id', 'username', 'email']).where('id', '=', id).executeTakeFirst();
  const write = (db: Kysely<Database>) => (id: number) =>
    db
      .updateTable('users')
      .set({ username: `user${id}` })
      .where('id', '=', id)
      .execute();
  await measure('point-read', 'complete', read(bareDb), read(routedDb));
  await measure('point-write', 'complete', write(bareDb), write(routedDb));
  // Another table's statement: passed through after one cache lookup.
  await measure(
    'pass-through',
    'dualwrite',
    (id) => pool.query('SELECT $1::int AS id', [id]),
    (id) => routed.query('SELECT $1::int AS id', [id]),
  );
  // The dual write: both sides send the router's statement, which sets both columns.
  const appSql = 'UPDATE users SET username = $1 WHERE id = $2';
  const dualSql = 'UPDATE users SET username = $1, user_name = $1 WHERE id = $2';
  await measure(
    'dual-write/same-sql',
    'dualwrite',
    (id) => pool.query(dualSql, [`user${id}`, id]),
    (id) => routed.query(appSql, [`user${id}`, id]),
  );
  const { planMisses, planHits } = routerStats(routed);
  log(`plan cache: ${planMisses} misses, ${planHits} hits`);
  await routedDb.destroy();
  return { comparisons, planMisses, planHits };
}
