import {
  createMemoryFlags,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  type FlagSource,
  rename,
  ValidationError,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';
import { logStatements } from '../support/fixtures.js';

const entity = z.object({ id: z.number().int(), username: z.string(), email: z.string() });

function accounts(keyType: string, evaluation: 'per-entity' | 'per-migration' = 'per-migration') {
  const table = defineTable({
    name: 'accounts',
    key: 'id',
    entity,
    columns: { id: { column: 'id', type: keyType } },
  });
  const migration = defineMigration({
    name: 'accounts-username',
    table,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
    flags: { evaluation },
  });
  return { table, migration };
}

describeDrivers('generated keys', (getCtx) => {
  it('dualwrite: an insert without its serial key returns the key and writes both sides in one statement', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.accounts (id serial PRIMARY KEY, user_name text, username text, email text)`,
    );
    const log = await logStatements(ctx, 'accounts');
    const { migration } = accounts('integer');
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    const ada = await repo.insert({ username: 'ada', email: 'a@x' });
    const bob = await repo.insert({ username: 'bob', email: 'b@x' });
    expect(ada).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    expect(bob.id).toBe(2);
    expect(await repo.get(bob.id)).toEqual(bob);
    expect(await ctx.sql(`SELECT id, user_name, username FROM ${ctx.schema}.accounts ORDER BY id`)).toEqual([
      { id: 1, user_name: 'ada', username: 'ada' },
      { id: 2, user_name: 'bob', username: 'bob' },
    ]);
    const writes = await log.writes();
    expect(writes.map((write) => write.op)).toEqual(['INSERT', 'INSERT']);
  });

  it('identity GENERATED ALWAYS: the key comes from the identity, and the insert is accepted', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_name text, username text, email text)`,
    );
    const { migration } = accounts('bigint');
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 100 });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    const first = await repo.insert({ username: 'ada', email: 'a@x' });
    const second = await repo.upsert({ username: 'bob', email: 'b@x' });
    expect([first.id, second.id]).toEqual([1, 2]);
    expect(await repo.find({ orderBy: 'id' })).toEqual([first, second]);
  });

  it('a uuid key from DEFAULT gen_random_uuid() comes back in canonical form', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.notes (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), body text)`);
    const notes = defineTable({
      name: 'notes',
      key: 'id',
      entity: z.object({ id: z.string(), body: z.string() }),
      columns: { id: { column: 'id', type: 'uuid' } },
    });
    const repo = createRepository(notes, { driver: ctx.driver });
    const note = await repo.insert({ body: 'hello' });
    expect(note.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await repo.get(note.id)).toEqual(note);
  });

  it('per-entity flags: the generated key is what the write is routed by', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.accounts (id serial PRIMARY KEY, user_name text, username text, email text)`,
    );
    const { migration } = accounts('integer', 'per-entity');
    const memory = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const targeted: (string | undefined)[] = [];
    const flags: FlagSource = {
      resolve(key, type, context) {
        targeted.push(context.targetingKey);
        return memory.resolve(key, type, context);
      },
    };
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    const ada = await repo.insert({ username: 'ada', email: 'a@x' });
    expect(targeted.length).toBeGreaterThan(0);
    expect(new Set(targeted)).toEqual(new Set([String(ada.id)]));
  });

  it('a key column without a default: a validation error naming the field, nothing written', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.accounts (id int PRIMARY KEY, user_name text, username text, email text)`,
    );
    const { migration } = accounts('integer');
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    const error = await repo.insert({ username: 'ada', email: 'a@x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toContain('key field "id" is required');
    expect((error as ValidationError).fields).toEqual(['id']);
    expect(await ctx.sql(`SELECT * FROM ${ctx.schema}.accounts`)).toEqual([]);
    // The other fields are still checked: a missing one is named.
    await expect(repo.insert({ username: 'ada' } as never)).rejects.toThrow(/field "email"/);
  });

  it('upsert without a key never replaces a row: a sequence behind the data is a conflict, not an overwrite', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.accounts (id serial PRIMARY KEY, user_name text, username text, email text)`,
    );
    await ctx.sql(`INSERT INTO ${ctx.schema}.accounts VALUES (1, 'kept', 'kept', 'k@x')`);
    const { migration } = accounts('integer');
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    await expect(repo.upsert({ username: 'ada', email: 'a@x' })).rejects.toBeInstanceOf(DriverError);
    expect(await repo.get(1)).toEqual({ id: 1, username: 'kept', email: 'k@x' });
    expect((await repo.upsert({ username: 'ada', email: 'a@x' })).id).toBe(2);
  });

  it('a composite key with one generated field takes the rest from the entity', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.events (tenant text, seq bigserial, body text, PRIMARY KEY (tenant, seq))`,
    );
    const events = defineTable({
      name: 'events',
      key: ['tenant', 'seq'],
      entity: z.object({ tenant: z.string(), seq: z.number().int(), body: z.string() }),
      columns: { seq: { column: 'seq', type: 'bigint' } },
    });
    const repo = createRepository(events, { driver: ctx.driver });
    const event = await repo.insert({ tenant: 'acme', body: 'hi' });
    expect(event).toEqual({ tenant: 'acme', seq: 1, body: 'hi' });
    expect(await repo.get({ tenant: 'acme', seq: 1 })).toEqual(event);
  });

  it('mixed-case table and column names: the identity of "Tickets"."Id" is found and used', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}."Tickets" ("Id" int GENERATED ALWAYS AS IDENTITY (START WITH 7) PRIMARY KEY, "Title" text)`,
    );
    const tickets = defineTable({
      name: `${ctx.schema}.Tickets`,
      key: 'id',
      entity: z.object({ id: z.number().int(), title: z.string() }),
      columns: { id: { column: 'Id', type: 'integer' }, title: 'Title' },
    });
    const repo = createRepository(tickets, { driver: ctx.driver });
    expect(await repo.insert({ title: 'first' })).toEqual({ id: 7, title: 'first' });
    expect(await ctx.sql(`SELECT "Id", "Title" FROM ${ctx.schema}."Tickets"`)).toEqual([{ Id: 7, Title: 'first' }]);
  });
});
