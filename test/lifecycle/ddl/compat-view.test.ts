/**
 * The compatibility view keeps the old shape (old column names, old values computed from
 * the new columns by the backward SQL forms) for read-only consumers, before and after
 * contract drops the old columns.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compatViewSql } from '../../../src/lifecycle/ddl/compat-view.js';
import { contract } from '../../../src/lifecycle/ddl/contract.js';
import { expand } from '../../../src/lifecycle/ddl/expand.js';
import { changeType, moveColumn, split } from '../../../src/model/mappings.js';
import { defineMigration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { describeDrivers } from '../../support/drivers.js';

describeDrivers('compat view', (getCtx) => {
  it('split and changeType: the view has the old columns, in the old order, computed from the new ones', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.people (id bigint PRIMARY KEY, name text, email text, visits integer)`);
    await ctx.sql(`INSERT INTO ${s}.people VALUES (1, 'Jean Paul Sartre', 'jp@x', 3), (2, 'Plato', NULL, NULL)`);
    const people = defineTable({
      name: `${s}.people`,
      key: 'id',
      entity: z.object({
        id: z.number().int(),
        firstName: z.string().nullable(),
        lastName: z.string().nullable(),
        email: z.string().nullable(),
        visits: z.number().int().nullable(),
      }),
    });
    const migration = defineMigration({
      name: 'people-compat',
      table: people,
      mappings: [
        split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } }),
        changeType({
          field: 'visits',
          from: { column: 'visits', type: 'integer' },
          to: { column: 'visits_big', type: 'bigint' },
        }),
      ],
      defaultStage: 'off',
    });
    await expand(ctx.driver, migration, { stateSchema: s });
    await ctx.sql(
      `UPDATE ${s}.people SET first_name = 'Jean', last_name = 'Paul Sartre', visits_big = visits WHERE id = 1`,
    );
    await ctx.sql(`UPDATE ${s}.people SET first_name = 'Plato' WHERE id = 2`);
    await contract(ctx.driver, migration, { stateSchema: s, force: true });
    await ctx.sql(compatViewSql(migration));
    // The old columns are gone; new writes reach the view through the new ones.
    await ctx.sql(
      `INSERT INTO ${s}.people (id, first_name, last_name, email, visits_big) VALUES (3, 'Ada', NULL, 'a@x', 7)`,
    );
    const rows = await ctx.sql(`SELECT * FROM ${s}.people_compat ORDER BY id`);
    expect(rows).toEqual([
      { id: ctx.kind === 'pg' ? '1' : 1, name: 'Jean Paul Sartre', email: 'jp@x', visits: 3 },
      { id: ctx.kind === 'pg' ? '2' : 2, name: 'Plato', email: null, visits: null },
      { id: ctx.kind === 'pg' ? '3' : 3, name: 'Ada', email: 'a@x', visits: 7 },
    ]);
    expect(Object.keys(rows[0]!)).toEqual(['id', 'name', 'email', 'visits']);
    const [type] = await ctx.sql<{ type: string }>(
      `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = '${s}.people_compat'::regclass AND attname = 'visits'`,
    );
    expect(type!.type).toBe('integer');
  });

  it('moveColumn: the view joins the side table and names the column as the old table did', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id integer PRIMARY KEY, bio text)`);
    await ctx.sql(`INSERT INTO ${s}.users VALUES (1, 'hello'), (2, NULL)`);
    const users = defineTable({
      name: `${s}.users`,
      key: 'id',
      entity: z.object({ id: z.number().int(), bio: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'users-bio',
      table: users,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      ],
      defaultStage: 'off',
    });
    await expand(ctx.driver, migration, { stateSchema: s });
    await ctx.sql(`INSERT INTO ${s}.profiles SELECT id, bio FROM ${s}.users WHERE bio IS NOT NULL`);
    await ctx.sql(compatViewSql(migration, `${s}.users_v1`));
    await ctx.sql(`UPDATE ${s}.profiles SET bio = 'changed' WHERE user_id = 1`);
    expect(await ctx.sql(`SELECT * FROM ${s}.users_v1 ORDER BY id`)).toEqual([
      { id: 1, bio: 'changed' },
      { id: 2, bio: null },
    ]);
  });
});

describe('compatViewSql', () => {
  it('defaults to <table>_compat in the table schema and rejects a bad view name', () => {
    const users = defineTable({
      name: 'app.users',
      key: 'id',
      entity: z.object({ id: z.number(), visits: z.number() }),
    });
    const migration = defineMigration({
      name: 'users-visits',
      table: users,
      mappings: [
        changeType({
          field: 'visits',
          from: { column: 'visits', type: 'integer' },
          to: { column: 'v2', type: 'bigint' },
        }),
      ],
      defaultStage: 'off',
    });
    expect(compatViewSql(migration)).toBe(
      'CREATE OR REPLACE VIEW "app"."users_compat" AS SELECT t."id", ((t."v2")::integer)::integer AS "visits" FROM "app"."users" AS t',
    );
    expect(() => compatViewSql(migration, 'bad name; drop table x')).toThrow(/view name/);
  });
});
