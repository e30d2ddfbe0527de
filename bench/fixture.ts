/**
 * The benchmark's data: the README's `users` table, mid-rename of `user_name` to
 * `username`, and repositories over it in a chosen stage.
 */
import {
  createMemoryFlags,
  createRepository,
  defineMigration,
  defineTable,
  type FlagEvaluation,
  type MetricsSink,
  type Repository,
  rename,
  type Stage,
} from 'flagshift';
import { createPgDriver, type PgClientLike, type PgPoolLike } from 'flagshift/pg';
import { z } from 'zod';

/** The logical user. */
export const userEntity = z.object({ id: z.number().int(), username: z.string(), email: z.string() });

/** A logical user. */
export type User = z.infer<typeof userEntity>;

/** `users` in schema `schema`, and the rename on it. */
export function usersMigration(schema: string, evaluation: FlagEvaluation = 'per-migration') {
  const users = defineTable({ name: `${schema}.users`, key: 'id', entity: userEntity });
  return defineMigration({
    name: 'users-username',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'off',
    flags: { evaluation },
  });
}

/** The migration type. */
export type UsersMigration = ReturnType<typeof usersMigration>;

/** Anything that runs a statement: a `pg.Pool` or `pg.Client`. */
export interface SqlRunner {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Creates `schema.users(id bigint primary key, user_name, username, email)` with `rows`
 * rows whose `username` already equals `user_name` (backfilled), and analyzes it.
 */
export async function createUsers(db: SqlRunner, schema: string, rows: number, backfilled = true): Promise<void> {
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await db.query(`CREATE SCHEMA ${schema}`);
  await db.query(
    `CREATE TABLE ${schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
  );
  // In slices, so a million rows don't need one huge transaction's worth of memory.
  const slice = 200_000;
  for (let start = 1; start <= rows; start += slice) {
    const end = Math.min(rows, start + slice - 1);
    await db.query(
      `INSERT INTO ${schema}.users (id, user_name, username, email)
       SELECT g, 'user' || g, ${backfilled ? `'user' || g` : 'NULL'}, 'user' || g || '@example.com'
       FROM generate_series($1::bigint, $2::bigint) g`,
      [start, end],
    );
  }
  await db.query(`VACUUM ANALYZE ${schema}.users`);
}

/** A repository over `db` whose migration sits in `stage` (`live` and `rampdown` at 100%). */
export function usersRepository(
  migration: UsersMigration,
  db: PgPoolLike | PgClientLike,
  stage: Stage,
  options: { metrics?: MetricsSink } = {},
): Repository<User, 'id'> {
  return createRepository(migration, {
    driver: createPgDriver(db),
    flags: createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: 100 }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
}
