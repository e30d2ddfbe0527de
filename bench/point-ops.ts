/**
 * Parts 1 and 2: reads and updates by primary key, raw `pg` against the SDK, interleaved
 * in one run, on one connection and on a pool of 8.
 */

import { createMemoryMetrics, type Stage } from 'flagshift';
import pg from 'pg';
import { type Comparison, compare, openConnections, type PreparingRunner, sdkStatements } from './comparison.js';
import { createUsers, type UsersMigration, usersMigration, usersRepository } from './fixture.js';
import { interleave } from './interleave.js';

/** Knobs of {@link runPointOps}. */
export interface PointOpsOptions {
  readonly connectionString: string;
  readonly rows: number;
  readonly iterations: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

const SCHEMA = 'bench_point';

/** The one statement the SDK sends for a read or an update by key in `stage`. */
async function sdkSql(migration: UsersMigration, pool: pg.Pool, stage: Stage, op: 'read' | 'write'): Promise<string> {
  const seen = await sdkStatements(migration, pool, stage, (repo) =>
    op === 'read' ? repo.get(1) : repo.update(1, { username: 'user1' }),
  );
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
  // query before the migration (`SELECT id, user_name, email FROM users WHERE id = $1`).
  // Raw prepares it under a name, as the SDK's pg driver prepares its own, so the ratio
  // compares like with like (an unnamed statement is parsed and planned on every call,
  // which flattered the SDK). The `/same-sql` rows send the SDK's own statement, prepared.
  const rawRead = readSql['off']!;
  const rawUpdate = `UPDATE "${SCHEMA}"."users" SET "user_name" = $1 WHERE "id" = $2`;
  // Write out what creating the table dirtied, so no checkpoint lands in a measurement.
  await admin.query('CHECKPOINT');
  await admin.end();

  const results: Comparison[] = [];
  for (const connections of ['client', 'pool8'] as const) {
    const concurrency = connections === 'client' ? 1 : 8;
    const db = await openConnections(options.connectionString, connections);
    // A statement prepared under a name, as the SDK's pg driver sends it: each connection
    // parses it once, then only binds and executes it.
    const prepared = (text: string, name: string) => (values: unknown[]) =>
      (db as PreparingRunner).query({ name, text, values });
    const rawReadPrepared = prepared(rawRead, 'bench_raw_read');
    const rawUpdatePrepared = prepared(rawUpdate, 'bench_raw_update');
    // Settle the connections, the server's caches and the JIT before the first comparison,
    // which would otherwise run on a colder machine than the ones after it.
    await interleave(
      (id) => rawReadPrepared([id]),
      (id) => rawUpdatePrepared([`user${id}`, id]),
      { iterations: options.warmup * 3, warmup: 0, concurrency, rows: options.rows },
    );
    const measure = async (
      name: string,
      rawSql: string,
      sdkSql: string,
      raw: (id: number, i: number) => Promise<unknown>,
      sdk: (id: number, i: number) => Promise<unknown>,
    ) => {
      const settings = { iterations: options.iterations, warmup: options.warmup, rows: options.rows, log };
      results.push(await compare({ name, connections, rawSql, sdkSql, ...settings }, raw, sdk));
    };

    for (const stage of ['off', 'shadow', 'live'] as const) {
      const repo = usersRepository(migration, db, stage);
      await repo.check();
      await measure(
        `read-${stage}`,
        rawRead,
        readSql[stage]!,
        (id) => rawReadPrepared([id]),
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
        (id) => rawReadPrepared([id]),
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
      (id, i) => rawUpdatePrepared([`user${id}.${i}`, id]),
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
