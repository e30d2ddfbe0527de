/**
 * The table and rename the SQL router's suites route: `users(id, user_name -> username,
 * email)`, named unqualified as ORMs name it (the test's schema comes first in the
 * search path).
 */
import { PGlite } from '@electric-sql/pglite';
import { integer, pgTable, text } from 'drizzle-orm/pg-core';
import {
  createMemoryFlags,
  createMemoryMetrics,
  createStageResolver,
  defineMigration,
  defineTable,
  type MemoryFlags,
  type MemoryMetrics,
  type Migration,
  type ReadGuard,
  rename,
  type Stage,
} from 'flagshift';
import { type RoutedPglite, routePglite, routePool } from 'flagshift/sql';
import type pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { DriverContext } from '../support/drivers.js';
import { userEntity } from '../support/fixtures.js';

export const users = defineTable({ name: 'users', key: 'id', entity: userEntity });

/** The `users-username` rename, falling back to `defaultStage` when the flags fail. */
export function usernameRename(defaultStage: Stage = 'dualwrite') {
  return defineMigration({
    name: 'users-username',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage,
  });
}

/** A routed database of either kind, as the suites use it. */
export type Routed = pg.Pool | RoutedPglite;

/** Options of {@link routedUsers}. */
export interface RoutedUsersOptions {
  readonly stage: Stage;
  /** @default 100 */
  readonly percent?: number;
  /** @default usernameRename() */
  readonly migration?: Migration;
  /** @default 'CREATE TABLE users (id int PRIMARY KEY, user_name text, username text, email text)' */
  readonly ddl?: string;
  readonly readGuard?: ReadGuard;
}

/**
 * Creates the users table and routes a database over it: on PGlite, `pglite` (the
 * file's own instance, the table recreated; a server-only suite passes none); on the server, a pool of the test's schema.
 * Flags are evaluated on every statement (no cache), so a flag set is seen at once.
 */
export async function routedUsers(ctx: DriverContext, pglite: PGlite | undefined, options: RoutedUsersOptions) {
  const migration = options.migration ?? usernameRename();
  const flags: MemoryFlags = createMemoryFlags({
    [migration.stageFlagKey]: options.stage,
    [migration.percentFlagKey]: options.percent ?? 100,
  });
  const metrics: MemoryMetrics = createMemoryMetrics();
  const resolver = createStageResolver({ flags, metrics, ttlMs: 0 });
  const ddl = options.ddl ?? 'CREATE TABLE users (id int PRIMARY KEY, user_name text, username text, email text)';
  const routing = {
    migrations: [migration],
    flags,
    metrics,
    resolver,
    ...(options.readGuard ? { readGuard: options.readGuard } : {}),
  };
  let db: Routed;
  let admin: <Row>(sql: string, params?: unknown[]) => Promise<Row[]>;
  if (ctx.kind === 'pglite') {
    if (pglite === undefined) throw new Error('routedUsers: a PGlite suite passes its PGlite');
    await pglite.exec('DROP TABLE IF EXISTS users');
    await pglite.exec(ddl);
    db = routePglite(pglite as never, routing);
    admin = async <Row>(sql: string, params?: unknown[]) => (await pglite.query<Row>(sql, params)).rows;
  } else {
    await ctx.sql(ddl);
    db = routePool(ctx.pgPool({ max: 4 }), routing);
    admin = <Row>(sql: string, params?: unknown[]) => ctx.sql<Row>(sql, params);
  }
  type Sides = { user_name: string | null; username: string | null };
  const physical = async (id: number) =>
    (await admin<Sides>('SELECT user_name, username FROM users WHERE id = $1', [id]))[0];
  /** Sets the new column only, behind the router's back. */
  const corrupt = async (id: number, value: string) => {
    await admin('UPDATE users SET username = $2 WHERE id = $1', [id, value]);
  };
  const mismatches = () => metrics.snapshot().migrations[migration.name]?.mismatches ?? 0;
  const setStage = (stage: Stage, percent?: number) => {
    flags.set(migration.stageFlagKey, stage);
    if (percent !== undefined) flags.set(migration.percentFlagKey, percent);
  };
  return { migration, flags, metrics, db, admin, physical, corrupt, mismatches, setStage };
}

/** The users table as a Drizzle application declares it: the new shape only. */
export const drizzleUsers = pgTable('users', {
  id: integer('id').primaryKey(),
  username: text('username'),
  email: text('email'),
});

/** The users table as a Kysely application types it: the new shape only. */
export interface KyselyDatabase {
  users: { id: number; username: string | null; email: string | null };
}

/** A PGlite of the file's own, opened before its tests and closed after them. */
export function filePglite(): () => PGlite {
  let pglite: PGlite | undefined;
  beforeAll(async () => {
    pglite = new PGlite();
    await pglite.waitReady;
  });
  afterAll(async () => {
    await pglite?.close();
  });
  return () => pglite!;
}
