/**
 * Fixtures shared by the integration suites: a `users` table migrating `user_name` to
 * `username`, a role with chosen column privileges (to prove at the database which
 * columns a stage reads and writes), and statement logs (to prove that a dual read or a
 * dual write is one statement).
 */
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  type MigrationOptions,
  rename,
  type Stage,
} from 'flagshift';
import { createPgDriver } from 'flagshift/pg';
import { z } from 'zod';
import type { Driver } from '../../src/kernel/driver.js';
import type { DriverContext } from './drivers.js';

/** The logical user every suite works with. */
export const userEntity = z.object({ id: z.number().int(), username: z.string(), email: z.string() });

/**
 * Creates `users(id bigint, user_name, username, email)` (without `username` before
 * expand) and defines the `users-username` rename over it.
 */
export async function usersMigration(
  ctx: DriverContext,
  options: {
    expanded?: boolean;
    defaultStage?: Stage;
    compare?: MigrationOptions<typeof userEntity, 'id'>['compare'];
  } = {},
) {
  const username = options.expanded === false ? '' : ' username text,';
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text,${username} email text NOT NULL)`,
  );
  const users = defineTable({ name: `${ctx.schema}.users`, key: 'id', entity: userEntity });
  const migration = defineMigration({
    name: 'users-username',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: options.defaultStage ?? 'off',
    ...(options.compare === undefined ? {} : { compare: options.compare }),
  });
  return { users, migration };
}

/** {@link usersMigration}, expanded, with memory flags, memory metrics and a repository over it. */
export async function usersFixture(
  ctx: DriverContext,
  options: { stage?: Stage; percent?: number; driver?: Driver; ttlMs?: number } = {},
) {
  const { users, migration } = await usersMigration(ctx);
  const flags = createMemoryFlags({
    [migration.stageFlagKey]: options.stage ?? 'off',
    [migration.percentFlagKey]: options.percent ?? 0,
  });
  const metrics = createMemoryMetrics();
  const repo = createRepository(migration, {
    driver: options.driver ?? ctx.driver,
    flags,
    metrics,
    ...(options.ttlMs === undefined ? {} : { flagCache: { ttlMs: options.ttlMs } }),
  });
  const setStage = (stage: Stage, percent?: number) => {
    flags.set(migration.stageFlagKey, stage);
    if (percent !== undefined) flags.set(migration.percentFlagKey, percent);
  };
  const rows = () =>
    ctx.sql<{ id: string | number; user_name: string | null; username: string | null }>(
      `SELECT id, user_name, username FROM ${ctx.schema}.users ORDER BY id`,
    );
  return { users, migration, flags, metrics, repo, setStage, rows };
}

/** A driver acting as a fresh role that holds only `grants` (SQL with `$role` for the role's name). */
export async function driverAsRole(
  ctx: DriverContext,
  grants: readonly string[],
): Promise<{ driver: Driver; role: string }> {
  const role = `r_${ctx.schema}`;
  await ctx.sql(`CREATE ROLE ${role}`);
  await ctx.sql(`GRANT USAGE ON SCHEMA ${ctx.schema} TO ${role}`);
  for (const grant of grants) await ctx.sql(grant.replaceAll('$role', role));
  if (ctx.kind === 'pg') {
    const client = await ctx.pgClient();
    await client.query(`SET ROLE ${role}`);
    return { driver: createPgDriver(client), role };
  }
  // PGlite has one connection: the role holds for everything until the test resets it.
  await ctx.admin.query(`SET ROLE ${role}`);
  return { driver: ctx.driver, role };
}

/** Undoes {@link driverAsRole}: back to the superuser, and the role dropped. */
export async function dropRole(ctx: DriverContext, role: string): Promise<void> {
  if (ctx.kind === 'pglite') await ctx.admin.query('RESET ROLE');
  await ctx.sql(`DROP OWNED BY ${role}`);
  await ctx.sql(`DROP ROLE ${role}`);
}

/**
 * Logs every statement that writes `table` (a statement-level trigger) and every row a
 * SELECT reads from it (a row-level security policy calling a logging function), with the
 * statement's text. Reads are logged only for roles subject to row-level security.
 */
export async function logStatements(
  ctx: DriverContext,
  table: string,
): Promise<{
  writes(): Promise<{ op: string; query: string }[]>;
  reads(): Promise<string[]>;
  clear(): Promise<void>;
}> {
  const s = ctx.schema;
  await ctx.sql(`CREATE TABLE ${s}.write_log (id serial PRIMARY KEY, op text, query text)`);
  await ctx.sql(`CREATE TABLE ${s}.read_log (id serial PRIMARY KEY, query text)`);
  await ctx.sql(
    `CREATE FUNCTION ${s}.log_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
     BEGIN INSERT INTO ${s}.write_log (op, query) VALUES (TG_OP, current_query()); RETURN NULL; END $$`,
  );
  await ctx.sql(
    `CREATE TRIGGER log_write AFTER INSERT OR UPDATE OR DELETE ON ${s}.${table} FOR EACH STATEMENT EXECUTE FUNCTION ${s}.log_write()`,
  );
  await ctx.sql(
    `CREATE FUNCTION ${s}.log_read() RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
     BEGIN INSERT INTO ${s}.read_log (query) VALUES (current_query()); RETURN true; END $$`,
  );
  await ctx.sql(`ALTER TABLE ${s}.${table} ENABLE ROW LEVEL SECURITY`);
  await ctx.sql(`CREATE POLICY logged_select ON ${s}.${table} FOR SELECT USING (${s}.log_read())`);
  await ctx.sql(`CREATE POLICY any_insert ON ${s}.${table} FOR INSERT WITH CHECK (true)`);
  await ctx.sql(`CREATE POLICY any_update ON ${s}.${table} FOR UPDATE USING (true)`);
  await ctx.sql(`CREATE POLICY any_delete ON ${s}.${table} FOR DELETE USING (true)`);
  return {
    writes: () => ctx.sql<{ op: string; query: string }>(`SELECT op, query FROM ${s}.write_log ORDER BY id`),
    reads: async () =>
      (await ctx.sql<{ query: string }>(`SELECT query FROM ${s}.read_log ORDER BY id`)).map((row) => row.query),
    clear: async () => {
      await ctx.sql(`DELETE FROM ${s}.write_log`);
      await ctx.sql(`DELETE FROM ${s}.read_log`);
    },
  };
}
