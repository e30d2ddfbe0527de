/**
 * Parts 1 and 2: reads and updates by primary key, raw `pg` against the SDK, interleaved
 * in one run, on one connection and on a pool of 8.
 */

import { createMemoryMetrics, type Stage } from 'flagshift';
import pg from 'pg';
import { createUsers, type SqlRunner, type UsersMigration, usersMigration, usersRepository } from './fixture.js';
import { interleave } from './interleave.js';
import { type LatencySummary, ratio, round } from './stats.js';

/** One comparison: raw against SDK on one connection setup. */
export interface Comparison {
  /**
   * `read-off`, `read-shadow`, `read-live` or `dual-write`; with `/same-sql`, raw sends the
   * SDK's own statement the way the SDK sends it (the same text, prepared under a name),
   * which leaves only the SDK's cost in process;
   * `read-off/metrics` is `read-off` with a metrics sink (`createMemoryMetrics()`).
   */
  readonly name: string;
  /** `client` (one connection) or `pool8`. */
  readonly connections: 'client' | 'pool8';
  readonly concurrency: number;
  readonly rawSql: string;
  readonly sdkSql: string;
  readonly raw: LatencySummary;
  readonly sdk: LatencySummary;
  /** SDK median over raw median. */
  readonly medianRatio: number;
  /** SDK p99 over raw p99. */
  readonly p99Ratio: number;
  /** Operations per second of both sides together, over the measured wall time. */
  readonly opsPerSecond: number;
}

/** Knobs of {@link runPointOps}. */
export interface PointOpsOptions {
  readonly connectionString: string;
  readonly rows: number;
  readonly iterations: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

const SCHEMA = 'bench_point';

/** `pg`'s query config form: a statement prepared under `name`. */
interface PreparingRunner {
  query(config: { name: string; text: string; values: unknown[] }): Promise<unknown>;
}

/** Captures the SQL text a repository issues, through a pool-shaped spy. */
async function sdkSql(migration: UsersMigration, pool: pg.Pool, stage: Stage, op: 'read' | 'write'): Promise<string> {
  const seen: string[] = [];
  const spy = {
    query: (text: string, values?: unknown[]) => {
      seen.push(text);
      return pool.query(text, values);
    },
    connect: () => pool.connect(),
  };
  const repo = usersRepository(migration, spy, stage);
  await repo.check();
  seen.length = 0;
  if (op === 'read') await repo.get(1);
  else await repo.update(1, { username: 'user1' });
  repo.close();
  if (seen.length !== 1) throw new Error(`expected one statement from ${op} in ${stage}, saw ${seen.length}`);
  return seen[0]!;
}

/** Runs parts 1 and 2. */
export async function runPointOps(options: PointOpsOptions): Promise<Comparison[]> {
  const { log } = options;
  const admin = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  admin.on('error', () => undefined);
  log(`creating ${SCHEMA}.users with ${options.rows} rows`);
  await createUsers(admin, SCHEMA, options.rows);
  const migration = usersMigration(SCHEMA);

  const readSql: Record<string, string> = {};
  for (const stage of ['off', 'shadow', 'live'] as const)
    readSql[stage] = await sdkSql(migration, admin, stage, 'read');
  const dualWriteSql = await sdkSql(migration, admin, 'dualwrite', 'write');
  // The raw read is the statement the SDK sends in `off`, byte for byte: the application's
  // query before the migration (`SELECT id, user_name, email FROM users WHERE id = $1`),
  // sent the way `pg` is usually called, unnamed (parsed and planned by the server each
  // time). The SDK's pg driver prepares its statements; the `/same-sql` rows send raw's
  // statement prepared too.
  const rawRead = readSql['off']!;
  const rawUpdate = `UPDATE "${SCHEMA}"."users" SET "user_name" = $1 WHERE "id" = $2`;
  // Write out what creating the table dirtied, so no checkpoint lands in a measurement.
  await admin.query('CHECKPOINT');
  await admin.end();

  const results: Comparison[] = [];
  for (const connections of ['client', 'pool8'] as const) {
    const concurrency = connections === 'client' ? 1 : 8;
    let db: pg.Client | pg.Pool;
    if (connections === 'client') {
      const client = new pg.Client({ connectionString: options.connectionString });
      client.on('error', () => undefined);
      await client.connect();
      db = client;
    } else {
      const pool = new pg.Pool({ connectionString: options.connectionString, max: 8 });
      // An idle connection the server drops at shutdown must not crash the run.
      pool.on('error', () => undefined);
      db = pool;
      // Open all eight connections before measuring.
      const held = await Promise.all(Array.from({ length: 8 }, () => (db as pg.Pool).connect()));
      for (const client of held) client.release();
    }
    const runner: SqlRunner = db;
    // A statement prepared under a name, as the SDK's pg driver sends it: each connection
    // parses it once, then only binds and executes it.
    const prepared = (text: string, name: string) => (values: unknown[]) =>
      (db as PreparingRunner).query({ name, text, values });
    // Settle the connections, the server's caches and the JIT before the first comparison,
    // which would otherwise run on a colder machine than the ones after it.
    await interleave(
      (id) => runner.query(rawRead, [id]),
      (id) => runner.query(rawUpdate, [`user${id}`, id]),
      { iterations: options.warmup * 3, warmup: 0, concurrency, rows: options.rows },
    );
    const measure = async (
      name: string,
      rawSql: string,
      sdkText: string,
      raw: (id: number, i: number) => Promise<unknown>,
      sdk: (id: number, i: number) => Promise<unknown>,
    ) => {
      const { a, b, wallMs } = await interleave(raw, sdk, {
        iterations: options.iterations,
        warmup: options.warmup,
        concurrency,
        rows: options.rows,
      });
      const rawSummary = a.summary();
      const sdkSummary = b.summary();
      const comparison: Comparison = {
        name,
        connections,
        concurrency,
        rawSql,
        sdkSql: sdkText,
        raw: rawSummary,
        sdk: sdkSummary,
        medianRatio: ratio(sdkSummary.medianUs, rawSummary.medianUs),
        p99Ratio: ratio(sdkSummary.p99Us, rawSummary.p99Us),
        opsPerSecond: round((a.count + b.count) / (wallMs / 1000)),
      };
      log(
        `${name.padEnd(22)} ${connections.padEnd(6)} raw ${rawSummary.medianUs}us  sdk ${sdkSummary.medianUs}us  x${comparison.medianRatio}  (p99 ${rawSummary.p99Us} / ${sdkSummary.p99Us}us)`,
      );
      results.push(comparison);
    };

    for (const stage of ['off', 'shadow', 'live'] as const) {
      const repo = usersRepository(migration, db, stage);
      await repo.check();
      await measure(
        `read-${stage}`,
        rawRead,
        readSql[stage]!,
        (id) => runner.query(rawRead, [id]),
        (id) => repo.get(id),
      );
      if (connections === 'client') {
        // The same, but raw sends the SDK's own statement, prepared like the SDK's: what
        // remains is the SDK's own cost.
        const sameSql = readSql[stage]!;
        const rawPrepared = prepared(sameSql, `bench_read_${stage}`);
        await measure(
          `read-${stage}/same-sql`,
          sameSql,
          sameSql,
          (id) => rawPrepared([id]),
          (id) => repo.get(id),
        );
      }
      repo.close();
    }

    if (connections === 'client') {
      // The same read with a metrics sink, as most deployments run: every read then also
      // reports its latency and the side it was served from.
      const metered = usersRepository(migration, db, 'off', { metrics: createMemoryMetrics() });
      await metered.check();
      await measure(
        'read-off/metrics',
        rawRead,
        readSql['off']!,
        (id) => runner.query(rawRead, [id]),
        (id) => metered.get(id),
      );
      metered.close();
    }

    const repo = usersRepository(migration, db, 'dualwrite');
    await repo.check();
    await measure(
      'dual-write',
      rawUpdate,
      dualWriteSql,
      (id, i) => runner.query(rawUpdate, [`user${id}.${i}`, id]),
      (id, i) => repo.update(id, { username: `user${id}.${i}` }),
    );
    if (connections === 'client') {
      const rawPrepared = prepared(dualWriteSql, 'bench_dual_write');
      await measure(
        'dual-write/same-sql',
        dualWriteSql,
        dualWriteSql,
        (id, i) => rawPrepared([`user${id}.${i}`, `user${id}.${i}`, id]),
        (id, i) => repo.update(id, { username: `user${id}.${i}` }),
      );
    }
    repo.close();
    await db.end();
  }
  return results;
}
