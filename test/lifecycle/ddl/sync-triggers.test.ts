/**
 * Sync triggers keep old and new consistent for writers that bypass the SDK. Each case
 * expands a table, then writes it with plain SQL (old columns only, like an old app
 * version; new columns only; both) and checks, through the columns' codecs, that the
 * other side holds exactly what the SDK's TypeScript transforms compute: the SQL forms in
 * the triggers and the transforms in the SDK agree. An SDK dual write (both sides changed
 * in one statement) is left as written.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { TableCatalog } from '../../../src/catalog/types.js';
import { createMemoryFlags } from '../../../src/flags/memory-flags.js';
import type { Driver, Queryable } from '../../../src/kernel/driver.js';
import { planExpand } from '../../../src/lifecycle/ddl/expand.js';
import { runDdl } from '../../../src/lifecycle/ddl/run-ddl.js';
import {
  backfillMark,
  syncTriggerObjects,
  syncTriggerSql,
  triggersToReplace,
} from '../../../src/lifecycle/ddl/sync-triggers.js';
import { changeType, customMapping, merge, moveColumn, rename, split } from '../../../src/model/mappings.js';
import { type BoundMapping, defineMigration, type Migration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { createRepository } from '../../../src/repository/create-repository.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';

type Values = readonly unknown[];

interface Case {
  readonly name: string;
  /** Statements creating the tables, before expand (`$s` is the test's schema). */
  readonly tables: readonly string[];
  readonly migration: (schema: string) => Migration;
  /** Old-column values (logical) written by an "old app". */
  readonly old: readonly Values[];
  /** New-column values (logical) written by a "new app". */
  readonly new: readonly Values[];
}

const nullableText = z.string().nullable();

const cases: readonly Case[] = [
  {
    name: 'rename user_name -> username',
    tables: ['CREATE TABLE $s.users (id bigint PRIMARY KEY, user_name text)'],
    migration: (s) =>
      migrationOf(s, 'users', { username: nullableText }, [
        rename({ field: 'username', from: 'user_name', to: 'username' }),
      ]),
    old: [['ada'], ["O'Brien  x"]],
    new: [['grace'], ['']],
  },
  {
    name: 'changeType integer -> bigint',
    tables: ['CREATE TABLE $s.counters (id bigint PRIMARY KEY, visits integer)'],
    migration: (s) =>
      migrationOf(s, 'counters', { visits: z.number().int().nullable() }, [
        changeType({
          field: 'visits',
          from: { column: 'visits', type: 'integer' },
          to: { column: 'visits_big', type: 'bigint' },
        }),
      ]),
    old: [[42], [-2147483648]],
    new: [[7], [2147483647]],
  },
  {
    name: 'changeType text -> jsonb',
    tables: ['CREATE TABLE $s.docs (id bigint PRIMARY KEY, payload text)'],
    migration: (s) =>
      migrationOf(s, 'docs', { payload: z.unknown() }, [
        changeType({
          field: 'payload',
          from: { column: 'payload', type: 'text' },
          to: { column: 'payload_json', type: 'jsonb' },
        }),
      ]),
    old: [[{ a: 1, b: [true, null, 'x'] }], ['just a string']],
    new: [[[1, { nested: 'é😀' }]], [{}]],
  },
  {
    name: 'split name -> first_name, last_name',
    tables: ['CREATE TABLE $s.people (id bigint PRIMARY KEY, name text)'],
    migration: (s) =>
      migrationOf(s, 'people', { firstName: nullableText, lastName: nullableText }, [
        split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } }),
      ]),
    old: [['Jean Paul Sartre'], ['Plato']],
    new: [
      ['Grace', 'Hopper'],
      [null, 'Solo'],
    ],
  },
  {
    name: 'merge first_name, last_name -> full_name',
    tables: ['CREATE TABLE $s.people (id bigint PRIMARY KEY, first_name text, last_name text)'],
    migration: (s) =>
      migrationOf(s, 'people', { fullName: nullableText }, [
        merge({ from: ['first_name', 'last_name'], into: { field: 'fullName', column: 'full_name' } }),
      ]),
    old: [
      ['Ada', 'Lovelace'],
      ['Plato', null],
    ],
    new: [['Jean Paul Sartre'], ['Cher']],
  },
  {
    name: 'customMapping price -> price_cents',
    tables: ['CREATE TABLE $s.items (id bigint PRIMARY KEY, price numeric)'],
    migration: (s) => migrationOf(s, 'items', { priceCents: z.number().int().nullable() }, [priceMapping()]),
    old: [[12.34], [0.5]],
    new: [[1999], [-250]],
  },
  {
    name: 'moveColumn users.bio -> profiles.bio',
    tables: [
      'CREATE TABLE $s.users (id bigint PRIMARY KEY, bio text)',
      'CREATE TABLE $s.profiles (user_id bigint PRIMARY KEY REFERENCES $s.users (id), bio text)',
    ],
    migration: (s) =>
      migrationOf(s, 'users', { bio: nullableText }, [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      ]),
    old: [['hello'], ['line one\nline two']],
    new: [['world'], ['']],
  },
];

function priceMapping() {
  return customMapping({
    fields: { priceCents: { column: 'price_cents', type: 'bigint' } },
    old: [{ column: 'price', type: 'numeric', kind: 'number' }],
    forward: ([price]) => [price == null ? null : Math.round((price as number) * 100)],
    backward: ([cents]) => [cents == null ? null : (cents as number) / 100],
    sql: { forward: { price_cents: 'round({price} * 100)' }, backward: { price: '{price_cents} / 100.0' } },
  });
}

function migrationOf(
  schema: string,
  table: string,
  fields: Record<string, z.ZodType>,
  mappings: Parameters<typeof defineMigration>[0]['mappings'],
): Migration {
  const definition = defineTable({
    name: `${schema}.${table}`,
    key: 'id',
    entity: z.object({ id: z.number().int(), ...fields }),
  });
  return defineMigration({ name: `${table}-sync`, table: definition, mappings, defaultStage: 'off' });
}

const identity = (values: Values) => [...values];
const forwardOf = (mapping: BoundMapping, old: Values) => (mapping.forward ?? identity)(old);
const backwardOf = (mapping: BoundMapping, values: Values) => (mapping.backward ?? identity)(values);

/** Reads, decodes and returns `{ old, new }` of the only mapping for row `id`. */
async function sides(db: Queryable, migration: Migration, id: number): Promise<{ old: unknown[]; new: unknown[] }> {
  const mapping = migration.mappings[0]!;
  const main = migration.table.table.quoted;
  const old = mapping.oldColumns.map((column, index) => `t.${column.quoted} AS o${index}`);
  const neu = mapping.newColumns.map(
    (column, index) => `${mapping.newTable ? 's' : 't'}.${column.quoted} AS n${index}`,
  );
  const join = mapping.newTable
    ? ` LEFT JOIN ${mapping.newTable.table.quoted} s ON s.${mapping.newTable.keyColumns[0]!.quoted} = t."id"`
    : '';
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${[...old, ...neu].join(', ')} FROM ${main} t${join} WHERE t."id" = $1`,
    [id],
  );
  const row = rows[0];
  if (row === undefined) throw new Error(`row ${id} is missing`);
  return {
    old: mapping.oldColumns.map((column, index) => column.codec.decode(row[`o${index}`])),
    new: mapping.newColumns.map((column, index) => column.codec.decode(row[`n${index}`])),
  };
}

/** `col = $n::type` pieces and their parameters for `values` of `columns`. */
function bind(columns: BoundMapping['oldColumns'], values: Values, params: unknown[]): string[] {
  return columns.map((column, index) => {
    params.push(column.codec.encode(values[index]));
    return `$${params.length}${column.codec.cast}`;
  });
}

/** Plain SQL writers, the way an old app (old columns) or a new one (new columns) writes. */
function writers(db: Queryable, migration: Migration) {
  const mapping = migration.mappings[0]!;
  const main = migration.table.table.quoted;
  const side = mapping.newTable;
  const names = (columns: BoundMapping['oldColumns']) => columns.map((column) => column.quoted).join(', ');
  return {
    async insertOld(id: number, old: Values) {
      const params: unknown[] = [id];
      const values = bind(mapping.oldColumns, old, params);
      await db.query(
        `INSERT INTO ${main} ("id", ${names(mapping.oldColumns)}) VALUES ($1, ${values.join(', ')})`,
        params,
      );
    },
    async insertNew(id: number, neu: Values) {
      const params: unknown[] = [id];
      const values = bind(mapping.newColumns, neu, params);
      if (side === undefined) {
        await db.query(
          `INSERT INTO ${main} ("id", ${names(mapping.newColumns)}) VALUES ($1, ${values.join(', ')})`,
          params,
        );
        return;
      }
      await db.query(`INSERT INTO ${main} ("id") VALUES ($1)`, [id]);
      await db.query(
        `INSERT INTO ${side.table.quoted} (${side.keyColumns[0]!.quoted}, ${names(mapping.newColumns)}) VALUES ($1, ${values.join(', ')})`,
        params,
      );
    },
    async updateOld(id: number, old: Values) {
      const params: unknown[] = [id];
      const values = bind(mapping.oldColumns, old, params);
      const set = mapping.oldColumns.map((column, index) => `${column.quoted} = ${values[index]}`);
      await db.query(`UPDATE ${main} SET ${set.join(', ')} WHERE "id" = $1`, params);
    },
    async updateNew(id: number, neu: Values) {
      const params: unknown[] = [id];
      const values = bind(mapping.newColumns, neu, params);
      const set = mapping.newColumns.map((column, index) => `${column.quoted} = ${values[index]}`);
      const target =
        side === undefined
          ? `${main} SET ${set.join(', ')} WHERE "id" = $1`
          : `${side.table.quoted} SET ${set.join(', ')} WHERE ${side.keyColumns[0]!.quoted} = $1`;
      await db.query(`UPDATE ${target}`, params);
    },
    /** One statement setting both sides: what an SDK dual write of a same-row migration sends. */
    async updateBoth(id: number, old: Values, neu: Values) {
      const params: unknown[] = [id];
      const oldValues = bind(mapping.oldColumns, old, params);
      const newValues = bind(mapping.newColumns, neu, params);
      const set = [
        ...mapping.oldColumns.map((column, index) => `${column.quoted} = ${oldValues[index]}`),
        ...mapping.newColumns.map((column, index) => `${column.quoted} = ${newValues[index]}`),
      ];
      await db.query(`UPDATE ${main} SET ${set.join(', ')} WHERE "id" = $1`, params);
    },
  };
}

async function expanded(ctx: DriverContext, testCase: Case): Promise<Migration> {
  for (const statement of testCase.tables) await ctx.sql(statement.replaceAll('$s', ctx.schema));
  const migration = testCase.migration(ctx.schema);
  await runDdl(ctx.driver, await planExpand(ctx.driver, migration));
  return migration;
}

describeDrivers('sync triggers: plain SQL writers keep old and new consistent', (getCtx) => {
  for (const testCase of cases) {
    describe(testCase.name, () => {
      it('old-only INSERT and UPDATE: new holds the TypeScript forward(old)', async () => {
        const ctx = getCtx();
        const migration = await expanded(ctx, testCase);
        const mapping = migration.mappings[0]!;
        const write = writers(ctx.driver, migration);
        for (const [index, old] of testCase.old.entries()) {
          await write.insertOld(index + 1, old);
          expect(await sides(ctx.driver, migration, index + 1)).toEqual({
            old: [...old],
            new: forwardOf(mapping, old),
          });
        }
        const [first, second] = testCase.old;
        await write.updateOld(1, second!);
        expect(await sides(ctx.driver, migration, 1)).toEqual({ old: [...second!], new: forwardOf(mapping, second!) });
        await write.updateOld(
          1,
          first!.map(() => null),
        );
        expect((await sides(ctx.driver, migration, 1)).new).toEqual(
          forwardOf(
            mapping,
            first!.map(() => null),
          ),
        );
      });

      it('new-only INSERT and UPDATE: old holds the TypeScript backward(new)', async () => {
        const ctx = getCtx();
        const migration = await expanded(ctx, testCase);
        const mapping = migration.mappings[0]!;
        const write = writers(ctx.driver, migration);
        for (const [index, neu] of testCase.new.entries()) {
          await write.insertNew(index + 1, neu);
          expect(await sides(ctx.driver, migration, index + 1)).toEqual({
            old: backwardOf(mapping, neu),
            new: [...neu],
          });
        }
        // A row an old app wrote, then a new app changes.
        await write.insertOld(10, testCase.old[0]!);
        await write.updateNew(10, testCase.new[1]!);
        expect(await sides(ctx.driver, migration, 10)).toEqual({
          old: backwardOf(mapping, testCase.new[1]!),
          new: [...testCase.new[1]!],
        });
      });

      it('a write of new = forward(old) (a backfill) leaves old untouched', async () => {
        const ctx = getCtx();
        const migration = await expanded(ctx, testCase);
        const mapping = migration.mappings[0]!;
        const write = writers(ctx.driver, migration);
        // With the triggers off, the row looks like one written before expand.
        const triggers = syncTriggerObjects(migration).triggers;
        for (const trigger of triggers)
          await ctx.sql(`ALTER TABLE ${trigger.table.quoted} DISABLE TRIGGER "${trigger.name}"`);
        await write.insertOld(1, testCase.old[0]!);
        for (const trigger of triggers)
          await ctx.sql(`ALTER TABLE ${trigger.table.quoted} ENABLE TRIGGER "${trigger.name}"`);
        const computed = forwardOf(mapping, testCase.old[0]!);
        if (mapping.newTable === undefined) await write.updateNew(1, computed);
        else {
          const params: unknown[] = [1];
          const values = bind(mapping.newColumns, computed, params);
          await ctx.driver.query(
            `INSERT INTO ${mapping.newTable.table.quoted} (${mapping.newTable.keyColumns[0]!.quoted}, ${mapping.newColumns.map((c) => c.quoted).join(', ')}) VALUES ($1, ${values.join(', ')})`,
            params,
          );
        }
        expect(await sides(ctx.driver, migration, 1)).toEqual({
          old: [...testCase.old[0]!],
          new: forwardOf(mapping, testCase.old[0]!),
        });
      });

      it("a transaction marked as this migration's backfill is not synced; one marked for another migration is", async () => {
        const ctx = getCtx();
        const migration = await expanded(ctx, testCase);
        const mapping = migration.mappings[0]!;
        const [first, second] = testCase.old;
        const marked = (name: string, write: (w: ReturnType<typeof writers>) => Promise<void>) =>
          ctx.driver.transaction(async (tx) => {
            const mark = backfillMark(name);
            await tx.query('SELECT set_config($1, $2, true)', [mark.setting, mark.value]);
            await write(writers(tx, migration));
          });
        const unset = mapping.newColumns.map(() => null);
        await marked(migration.name, (w) => w.insertOld(1, first!));
        expect(await sides(ctx.driver, migration, 1)).toEqual({ old: [...first!], new: unset });
        await marked('another-migration', (w) => w.insertOld(2, first!));
        expect(await sides(ctx.driver, migration, 2)).toEqual({ old: [...first!], new: forwardOf(mapping, first!) });
        // Old to new and new to old: neither direction runs for the marked transaction's writes.
        await marked(migration.name, (w) => w.updateOld(2, second!));
        expect(await sides(ctx.driver, migration, 2)).toEqual({ old: [...second!], new: forwardOf(mapping, first!) });
        await marked(migration.name, (w) => w.updateNew(2, testCase.new[0]!));
        expect(await sides(ctx.driver, migration, 2)).toEqual({ old: [...second!], new: [...testCase.new[0]!] });
        // The mark is the transaction's own: the next writer is synced.
        await writers(ctx.driver, migration).updateOld(2, first!);
        expect(await sides(ctx.driver, migration, 2)).toEqual({ old: [...first!], new: forwardOf(mapping, first!) });
      });
    });
  }

  it("a marked transaction's write made by another trigger is still synced", async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const migration = await expanded(ctx, cases[0]!);
    await ctx.sql(`CREATE TABLE ${s}.relay (id bigint, name text)`);
    await ctx.sql(
      `CREATE FUNCTION ${s}.relay_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE ${s}.users SET user_name = NEW.name WHERE id = NEW.id; RETURN NULL; END $$`,
    );
    await ctx.sql(`CREATE TRIGGER relay AFTER INSERT ON ${s}.relay FOR EACH ROW EXECUTE FUNCTION ${s}.relay_write()`);
    await writers(ctx.driver, migration).insertOld(1, ['ada']);
    await ctx.driver.transaction(async (tx) => {
      const mark = backfillMark(migration.name);
      await tx.query('SELECT set_config($1, $2, true)', [mark.setting, mark.value]);
      await tx.query(`INSERT INTO ${s}.relay (id, name) VALUES (1, 'grace')`);
    });
    expect(await sides(ctx.driver, migration, 1)).toEqual({ old: ['grace'], new: ['grace'] });
  });

  it('same row: a statement that changes both sides (an SDK dual write) is left as written', async () => {
    const ctx = getCtx();
    for (const testCase of cases.filter((c) => !c.name.startsWith('moveColumn'))) {
      await ctx.sql(`DROP SCHEMA ${ctx.schema} CASCADE`);
      await ctx.sql(`CREATE SCHEMA ${ctx.schema}`);
      const migration = await expanded(ctx, testCase);
      const write = writers(ctx.driver, migration);
      await write.insertOld(1, testCase.old[0]!);
      // Deliberately inconsistent values: a trigger that "fixed" either side would show.
      await write.updateBoth(1, testCase.old[1]!, testCase.new[0]!);
      expect(await sides(ctx.driver, migration, 1), testCase.name).toEqual({
        old: [...testCase.old[1]!],
        new: [...testCase.new[0]!],
      });
    }
  });

  it('same row: an INSERT that sets both sides is left as written', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases[0]!);
    await ctx.sql(`INSERT INTO ${ctx.schema}.users (id, user_name, username) VALUES (1, 'old', 'new')`);
    expect(await ctx.sql(`SELECT user_name, username FROM ${ctx.schema}.users`)).toEqual([
      { user_name: 'old', username: 'new' },
    ]);
    expect(migration.name).toBe('users-sync');
  });

  it('split: an SDK dual write whose new side is not forward(old) keeps the SDK values', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases.find((c) => c.name.startsWith('split'))!);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    // backward joins to "Jean Paul Sartre"; forward of that would split it as "Jean" / "Paul Sartre".
    await repo.insert({ id: 1, firstName: 'Jean Paul', lastName: 'Sartre' });
    expect(await ctx.sql(`SELECT name, first_name, last_name FROM ${ctx.schema}.people`)).toEqual([
      { name: 'Jean Paul Sartre', first_name: 'Jean Paul', last_name: 'Sartre' },
    ]);
    await repo.update(1, { firstName: 'Simone de', lastName: 'Beauvoir' });
    expect(await ctx.sql(`SELECT name, first_name, last_name FROM ${ctx.schema}.people`)).toEqual([
      { name: 'Simone de Beauvoir', first_name: 'Simone de', last_name: 'Beauvoir' },
    ]);
  });

  it('customMapping: a backfill writing new = forward(old) never rewrites old through the lossy backward', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases.find((c) => c.name.startsWith('customMapping'))!);
    await ctx.sql(`ALTER TABLE ${ctx.schema}.items DISABLE TRIGGER USER`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.items (id, price) VALUES (1, 1.234)`);
    await ctx.sql(`ALTER TABLE ${ctx.schema}.items ENABLE TRIGGER USER`);
    await ctx.sql(`UPDATE ${ctx.schema}.items SET price_cents = round(price * 100)`);
    expect(await ctx.sql(`SELECT price::text, price_cents::int FROM ${ctx.schema}.items`)).toEqual([
      { price: '1.234', price_cents: 123 },
    ]);
    // A real change of new still reaches old.
    await ctx.sql(`UPDATE ${ctx.schema}.items SET price_cents = 124`);
    expect(await ctx.sql(`SELECT price::text FROM ${ctx.schema}.items`)).toEqual([{ price: '1.2400000000000000' }]);
    expect(migration.mappings[0]!.kind).toBe('custom');
  });

  it('moveColumn: writes of both tables in one transaction end consistent, the side table winning', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases.find((c) => c.name.startsWith('moveColumn'))!);
    const s = ctx.schema;
    await ctx.driver.transaction(async (tx) => {
      await tx.query(`INSERT INTO ${s}.users (id, bio) VALUES (1, 'from main')`);
      await tx.query(
        `INSERT INTO ${s}.profiles (user_id, bio) VALUES (1, 'from side') ON CONFLICT (user_id) DO UPDATE SET bio = EXCLUDED.bio`,
      );
    });
    expect(await sides(ctx.driver, migration, 1)).toEqual({ old: ['from side'], new: ['from side'] });
  });

  it('cross table: a write to the side table is not bounced back through forward(backward(new))', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    // A lossy cross-table mapping: forward lower-cases, so forward(backward('Mixed')) != 'Mixed'.
    const spec = {
      ...moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      forward: (old: readonly unknown[]) => [typeof old[0] === 'string' ? old[0].toLowerCase() : old[0]],
      sql: { forward: ['lower({bio})'], backward: ['{bio}'] },
    };
    const lossy: Case = {
      ...cases.find((c) => c.name.startsWith('moveColumn'))!,
      migration: (schema) => migrationOf(schema, 'users', { bio: nullableText }, [spec]),
    };
    const migration = await expanded(ctx, lossy);
    const write = writers(ctx.driver, migration);
    await write.insertOld(1, ['Old Text']);
    expect(await sides(ctx.driver, migration, 1)).toEqual({ old: ['Old Text'], new: ['old text'] });
    await write.updateNew(1, ['Mixed']);
    expect(await sides(ctx.driver, migration, 1)).toEqual({ old: ['Mixed'], new: ['Mixed'] });
  });

  it('moveColumn: deleting the main row deletes the side row', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases.find((c) => c.name.startsWith('moveColumn'))!);
    await writers(ctx.driver, migration).insertOld(1, ['bye']);
    expect(await ctx.sql(`SELECT bio FROM ${ctx.schema}.profiles`)).toEqual([{ bio: 'bye' }]);
    await ctx.sql(`DELETE FROM ${ctx.schema}.users WHERE id = 1`);
    expect(await ctx.sql(`SELECT * FROM ${ctx.schema}.profiles`)).toEqual([]);
  });

  it('moveColumn: SDK dual writes through the repository end consistent on both tables', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases.find((c) => c.name.startsWith('moveColumn'))!);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver as Driver, flags });
    await repo.insert({ id: 1, bio: 'first' });
    await repo.update(1, { bio: 'second' });
    expect(await sides(ctx.driver, migration, 1)).toEqual({ old: ['second'], new: ['second'] });
    await repo.delete(1);
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${ctx.schema}.profiles`)).toEqual([{ n: 0 }]);
  });

  it('rename: SDK dual writes in every writing stage leave the values the SDK wrote', async () => {
    const ctx = getCtx();
    const migration = await expanded(ctx, cases[0]!);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver, flags, flagCache: { ttlMs: 0 } });
    await repo.insert({ id: 1, username: 'a' });
    flags.set(migration.stageFlagKey, 'complete');
    // In complete the SDK writes new only: the trigger fills old.
    await repo.update(1, { username: 'b' });
    await repo.insert({ id: 2, username: 'c' });
    expect(await ctx.sql(`SELECT id::int, user_name, username FROM ${ctx.schema}.users ORDER BY id`)).toEqual([
      { id: 1, user_name: 'b', username: 'b' },
      { id: 2, user_name: 'c', username: 'c' },
    ]);
  });
});

describe('syncTriggerSql', () => {
  const users = defineTable({
    name: 'app.users',
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string() }),
  });
  const long = defineMigration({
    name: `users-${'x'.repeat(57)}`,
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'off',
  });

  it('names: derived from the migration, at most 63 characters, distinct for names that differ only in punctuation', () => {
    const names = (migration: Migration) => syncTriggerObjects(migration).triggers.map((trigger) => trigger.name);
    const [longName] = names(long);
    expect(longName!.length).toBeLessThanOrEqual(63);
    expect(longName).toMatch(/^flagshift_users_x+_[0-9a-f]{8}_sync$/);
    const dash = defineMigration({
      name: 'a-b',
      table: users,
      mappings: long.mappings.map((m) => m.spec),
      defaultStage: 'off',
    });
    const underscore = defineMigration({
      name: 'a_b',
      table: users,
      mappings: long.mappings.map((m) => m.spec),
      defaultStage: 'off',
    });
    expect(names(dash)[0]).not.toBe(names(underscore)[0]);
    expect(names(underscore)[0]).toBe('flagshift_a_b_sync');
  });

  it('functions come first, in the table schema, and the trigger runs before insert or update', () => {
    const [fn, trigger] = syncTriggerSql(long);
    expect(fn).toMatch(/^CREATE OR REPLACE FUNCTION "app"\."flagshift_users_x+_[0-9a-f]{8}_sync"\(\) RETURNS trigger/);
    expect(trigger).toMatch(
      /BEFORE INSERT OR UPDATE ON "app"\."users" FOR EACH ROW WHEN \(pg_trigger_depth\(\) > 0 OR current_setting\('flagshift\.backfill', true\) IS DISTINCT FROM 'users-x+'\) EXECUTE FUNCTION "app"\./,
    );
  });

  it("every trigger but the delete one skips the backfill's batches; replace and its undo differ only by that", () => {
    const s = 'app';
    const moved = migrationOf(s, 'users', { bio: nullableText }, [
      moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
    ]);
    const triggers = syncTriggerObjects(moved).triggers;
    expect(triggers.map((trigger) => [trigger.name.replace(/^.*_/, ''), trigger.skipsBackfill])).toEqual([
      ['fwd', true],
      ['del', false],
      ['back0', true],
    ]);
    for (const trigger of triggers) {
      expect(trigger.sql.includes('WHEN (')).toBe(trigger.skipsBackfill);
      expect(trigger.replace).toBe(trigger.sql.replace(/^CREATE TRIGGER/, 'CREATE OR REPLACE TRIGGER'));
      expect(trigger.unconditioned).toBe(trigger.replace.replace(/ WHEN \(.*\) EXECUTE/, ' EXECUTE'));
    }
  });

  it('triggersToReplace: those without the condition, on PostgreSQL 14+ only (CREATE OR REPLACE TRIGGER)', async () => {
    const [trigger] = syncTriggerObjects(long).triggers;
    const catalog = (conditional: boolean) =>
      new Map([
        [
          trigger!.table.quoted,
          {
            triggers: new Set([trigger!.name]),
            conditionalTriggers: new Set(conditional ? [trigger!.name] : []),
            refiredTriggers: new Set(),
          } as unknown as TableCatalog,
        ],
      ]);
    const asked: string[] = [];
    const server = (version: number) =>
      ({
        query: async (sql: string) => {
          asked.push(sql);
          return { rows: [{ version: String(version) }], rowCount: 1 };
        },
      }) as unknown as Queryable;
    expect(await triggersToReplace(server(140000), [trigger!], catalog(false))).toEqual([trigger]);
    expect(await triggersToReplace(server(130016), [trigger!], catalog(false))).toEqual([]);
    expect(asked).toHaveLength(2);
    // Nothing to replace: the server is not asked.
    expect(await triggersToReplace(server(180000), [trigger!], catalog(true))).toEqual([]);
    expect(await triggersToReplace(server(180000), [trigger!], new Map())).toEqual([]);
    expect(asked).toHaveLength(2);
  });

  it('a custom mapping without SQL forms is refused with a message naming the fields', () => {
    const migration = defineMigration({
      name: 'no-sql',
      table: users,
      mappings: [
        customMapping({
          fields: { username: 'username' },
          old: [{ column: 'user_name' }],
          forward: (old) => [...old],
          backward: (values) => [...values],
        }),
      ],
      defaultStage: 'off',
    });
    expect(() => syncTriggerSql(migration)).toThrow(/"username" has no SQL form/);
  });
});
