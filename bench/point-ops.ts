/**
 * Parts 1 and 2: reads and updates by primary key on one connection, raw `pg` against the
 * SDK, interleaved in one run. The headline rows (`/same-sql`) send raw the SDK's own
 * statement, prepared under a name as the SDK's pg driver prepares it, so their ratio is
 * the SDK's own cost in process. The other rows say what a stage costs against the
 * application's query before the migration, and what a LaunchDarkly-style shadow read (two
 * queries, compared in process) costs against the SDK's one statement.
 */

import { createMemoryMetrics, type Stage } from 'flagshift';
import { createPgDriver } from 'flagshift/pg';
import pg from 'pg';
import { type Comparison, compare, openConnections, type PreparingRunner, sdkStatements } from './comparison.js';
import { createUsers, type UsersMigration, usersMigration, usersRepository } from './fixture.js';
import { interleave } from './interleave.js';

/** Knobs of {@link runPointOps}. */
export interface PointOpsOptions {
  readonly connectionString: string;
  readonly rows: number;
  /** The table {@link preparePointTable} created, and the SDK's statements over it. */
  readonly table: PointTable;
  readonly iterations: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

const SCHEMA = 'bench_point';

/** The stages whose reads are measured: `dualwrite` and `rampdown` read as `off` and `live` do. */
export const READ_STAGES = ['off', 'shadow', 'live', 'complete'] as const;

/** The statements the SDK sends for reads in each stage, and for an update in `off` and `dualwrite`. */
export interface PointStatements {
  readonly read: Readonly<Record<(typeof READ_STAGES)[number], string>>;
  readonly updateOff: string;
  readonly dualWrite: string;
}

/** The one statement the SDK sends for a read or an update by key in `stage`. */
async function sdkSql(migration: UsersMigration, pool: pg.Pool, stage: Stage, op: 'read' | 'write'): Promise<string> {
  const seen = await sdkStatements(migration, pool, stage, (repo) =>
    op === 'read' ? repo.get(1) : repo.update(1, { username: 'user1' }),
  );
  if (seen.length !== 1) throw new Error(`expected one statement from ${op} in ${stage}, saw ${seen.length}`);
  return seen[0]!;
}

/** The table of parts 1-2: its migration, and the statements the SDK sends over it. */
export interface PointTable {
  readonly migration: UsersMigration;
  readonly statements: PointStatements;
}

/** Creates the table parts 1, 2 and the saturation runs read, and captures the SDK's statements. */
export async function preparePointTable(
  connectionString: string,
  rows: number,
  log: (line: string) => void,
): Promise<PointTable> {
  const admin = new pg.Pool({ connectionString, max: 2 });
  admin.on('error', () => undefined);
  log(`creating ${SCHEMA}.users with ${rows} rows`);
  await createUsers(admin, SCHEMA, rows);
  const migration = usersMigration(SCHEMA);
  const read = {} as Record<(typeof READ_STAGES)[number], string>;
  for (const stage of READ_STAGES) read[stage] = await sdkSql(migration, admin, stage, 'read');
  const statements: PointStatements = {
    read,
    updateOff: await sdkSql(migration, admin, 'off', 'write'),
    dualWrite: await sdkSql(migration, admin, 'dualwrite', 'write'),
  };
  // Write out what creating the table dirtied, so no checkpoint lands in a measurement.
  await admin.query('CHECKPOINT');
  await admin.end();
  return { migration, statements };
}

/** A statement prepared under `name` on `db`, as the SDK's pg driver sends its own. */
export function prepared(db: PreparingRunner, text: string, name: string) {
  return (values: unknown[]) => db.query({ name, text, values });
}

/**
 * The LaunchDarkly-style shadow read: the old read and the new read as two statements
 * (each prepared), run concurrently as LaunchDarkly's migration SDK does by default, and
 * their fields compared in process. Returns the old side's row, as the SDK serves in `shadow`.
 */
export function twoQueryShadowRead(db: PreparingRunner, statements: PointStatements) {
  const readOld = prepared(db, statements.read.off, 'bench_two_query_old');
  const readNew = prepared(db, statements.read.complete, 'bench_two_query_new');
  return async (id: number) => {
    const [old, next] = await Promise.all([readOld([id]), readNew([id])]);
    const a = old.rows[0];
    const b = next.rows[0];
    if (a !== undefined && b !== undefined && (a['user_name'] !== b['username'] || a['email'] !== b['email']))
      throw new Error(`shadow mismatch at ${id}`);
    return a;
  };
}

/** Runs parts 1 and 2 (one connection). */
export async function runPointOps(options: PointOpsOptions): Promise<Comparison[]> {
  const { log } = options;
  const { migration, statements } = options.table;
  const connections = 'client' as const;
  const db = (await openConnections(options.connectionString, connections)) as pg.Client;
  const runner = db as unknown as PreparingRunner;
  const rawRead = prepared(runner, statements.read.off, 'bench_raw_read');
  const rawUpdate = prepared(runner, statements.updateOff, 'bench_raw_update');
  // Settle the connection, the server's caches and the JIT before the first comparison,
  // which would otherwise run on a colder machine than the ones after it.
  await interleave(
    (id) => rawRead([id]),
    (id) => rawUpdate([`user${id}`, id]),
    { iterations: options.warmup * 3, warmup: 0, concurrency: 1, rows: options.rows },
  );
  const results: Comparison[] = [];
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

  for (const stage of READ_STAGES) {
    const repo = usersRepository(migration, db, stage);
    await repo.check();
    const sameSql = statements.read[stage];
    const rawSame = prepared(runner, sameSql, `bench_read_${stage}`);
    await measure(
      `read-${stage}/same-sql`,
      sameSql,
      sameSql,
      (id) => rawSame([id]),
      (id) => repo.get(id),
    );
    if (stage === 'off') {
      // Against the SDK's own pg driver sending the same statement: what the repository
      // costs over its driver.
      const driver = createPgDriver(db);
      await measure(
        'read-off/over-driver',
        sameSql,
        sameSql,
        (id) => driver.query(sameSql, [id]),
        (id) => repo.get(id),
      );
    }
    if (stage !== 'off') {
      // Against the application's query before the migration: what the stage costs in all.
      await measure(
        `read-${stage}`,
        statements.read.off,
        sameSql,
        (id) => rawRead([id]),
        (id) => repo.get(id),
      );
    }
    if (stage === 'shadow') {
      await measure(
        'read-shadow/two-queries',
        `${statements.read.off}; ${statements.read.complete}`,
        sameSql,
        twoQueryShadowRead(runner, statements),
        (id) => repo.get(id),
      );
    }
    repo.close();
  }

  // The same read with a metrics sink, as most deployments run: every read then also
  // reports its latency and the side it was served from.
  const metered = usersRepository(migration, db, 'off', { metrics: createMemoryMetrics() });
  await metered.check();
  await measure(
    'read-off/same-sql/metrics',
    statements.read.off,
    statements.read.off,
    (id) => rawRead([id]),
    (id) => metered.get(id),
  );
  metered.close();

  const off = usersRepository(migration, db, 'off');
  await off.check();
  await measure(
    'write-off/same-sql',
    statements.updateOff,
    statements.updateOff,
    (id, i) => rawUpdate([`user${id}.${i}`, id]),
    (id, i) => off.update(id, { username: `user${id}.${i}` }),
  );
  off.close();

  const repo = usersRepository(migration, db, 'dualwrite');
  await repo.check();
  const rawDual = prepared(runner, statements.dualWrite, 'bench_dual_write');
  await measure(
    'dual-write/same-sql',
    statements.dualWrite,
    statements.dualWrite,
    (id, i) => rawDual([`user${id}.${i}`, `user${id}.${i}`, id]),
    (id, i) => repo.update(id, { username: `user${id}.${i}` }),
  );
  await measure(
    'dual-write',
    statements.updateOff,
    statements.dualWrite,
    (id, i) => rawUpdate([`user${id}.${i}`, id]),
    (id, i) => repo.update(id, { username: `user${id}.${i}` }),
  );
  repo.close();
  await db.end();
  return results;
}
