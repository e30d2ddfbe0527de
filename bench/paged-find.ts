/**
 * Part 5: a page of a keyset-paged `find` (the 50 rows after a cursor, in key order), raw
 * `pg` against the SDK, interleaved in one run. Raw sends the page as an application
 * writes it by hand, one statement; in the `/same-sql` rows it sends the SDK's own two
 * statements (the page's keys, then their rows), prepared as the SDK's pg driver prepares
 * them, which leaves only the SDK's cost in process.
 */
import type { Stage } from 'flagshift';
import pg from 'pg';
import { type Comparison, compare, openConnections, type PreparingRunner, sdkStatements } from './comparison.js';
import { createUsers, type UsersMigration, usersMigration, usersRepository } from './fixture.js';

/** Knobs of {@link runPagedFind}. */
export interface PagedFindOptions {
  readonly connectionString: string;
  readonly rows: number;
  readonly iterations: number;
  readonly warmup: number;
  readonly log: (line: string) => void;
}

const SCHEMA = 'bench_pages';
const PAGE = 50;
/** Pages start at this many positions spread over the table. */
const STARTS = 1000;

/** The cursors the pages start after, made by the SDK: the cursor of the entity at each start. */
async function cursorsAt(migration: UsersMigration, pool: pg.Pool, starts: readonly number[]): Promise<string[]> {
  const repo = usersRepository(migration, pool, 'off');
  const cursors: string[] = [];
  for (const id of starts) {
    const { next } = await repo.findPage({ where: { id }, limit: 1 });
    if (next === undefined) throw new Error(`no row ${id} to start a page after`);
    cursors.push(next);
  }
  repo.close();
  return cursors;
}

/** The two statements one page of the SDK sends in `stage`. */
async function pageStatements(
  migration: UsersMigration,
  pool: pg.Pool,
  stage: Stage,
  after: string,
): Promise<string[]> {
  const seen = await sdkStatements(migration, pool, stage, (repo) => repo.findPage({ limit: PAGE, after }));
  if (seen.length !== 2) throw new Error(`expected two statements from a page in ${stage}, saw ${seen.length}`);
  return seen;
}

/** Runs part 6. */
export async function runPagedFind(options: PagedFindOptions): Promise<Comparison[]> {
  const { log } = options;
  const admin = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  admin.on('error', () => undefined);
  log(`creating ${SCHEMA}.users with ${options.rows} rows`);
  await createUsers(admin, SCHEMA, options.rows);
  const migration = usersMigration(SCHEMA);
  // Start positions spread over the table, each with a full page after it.
  const step = Math.max(1, Math.floor((options.rows - PAGE) / STARTS));
  const starts = Array.from({ length: STARTS }, (_, k) => 1 + k * step).filter((id) => id + PAGE <= options.rows);
  const cursors = await cursorsAt(migration, admin, starts);
  const statements: Record<string, string[]> = {};
  for (const stage of ['off', 'live'] as const)
    statements[stage] = await pageStatements(migration, admin, stage, cursors[0]!);
  // What an application writes by hand for the same page before the migration.
  const rawPage = `SELECT id, user_name, email FROM "${SCHEMA}"."users" WHERE id > $1 ORDER BY id LIMIT ${PAGE}`;
  await admin.query('CHECKPOINT');
  await admin.end();

  const results: Comparison[] = [];
  for (const connections of ['client', 'pool8'] as const) {
    const db = await openConnections(options.connectionString, connections);
    const runner = db as unknown as PreparingRunner;
    // `interleave` draws 1..rows: here the index of a start position.
    const startOf = (index: number) => starts[index - 1]!;
    const cursorOf = (index: number) => cursors[index - 1]!;
    const measure = async (
      name: string,
      rawSql: string,
      sdkSql: string,
      raw: (index: number) => Promise<unknown>,
      sdk: (index: number) => Promise<unknown>,
    ) => {
      const settings = { iterations: options.iterations, warmup: options.warmup, rows: starts.length, log };
      results.push(await compare({ name, connections, rawSql, sdkSql, ...settings }, raw, sdk));
    };
    for (const stage of ['off', 'live'] as const) {
      const repo = usersRepository(migration, db, stage);
      await repo.check();
      const sdk = (index: number) => repo.findPage({ limit: PAGE, after: cursorOf(index) });
      const [keysSql, rowsSql] = statements[stage]!;
      await measure(
        `page-${stage}`,
        rawPage,
        `${keysSql}; ${rowsSql}`,
        (index) => db.query(rawPage, [startOf(index)]),
        sdk,
      );
      if (connections === 'client') {
        // Raw sends the SDK's two statements, prepared the same way.
        await measure(
          `page-${stage}/same-sql`,
          `${keysSql}; ${rowsSql}`,
          `${keysSql}; ${rowsSql}`,
          async (index) => {
            const keys = await runner.query({
              name: `bench_page_keys_${stage}`,
              text: keysSql!,
              values: [startOf(index), PAGE],
            });
            return runner.query({
              name: `bench_page_rows_${stage}`,
              text: rowsSql!,
              values: keys.rows.map((row) => row['id']),
            });
          },
          sdk,
        );
      }
      repo.close();
    }
    await db.end();
  }
  return results;
}
