import { expect, it } from 'vitest';
import {
  hasIndexLeadingWith,
  hasUniqueIndexOn,
  hasUniqueKey,
  loadTableCatalog,
} from '../../src/catalog/table-catalog.js';
import { parseQualifiedName } from '../../src/model/identifiers.js';
import { describeDrivers } from '../support/drivers.js';

describeDrivers('table catalog', (getCtx) => {
  it('a missing table: exists false, no oid, empty collections', async () => {
    const ctx = getCtx();
    const catalog = await loadTableCatalog(ctx.driver, parseQualifiedName(`${ctx.schema}.nothing`));
    expect(catalog).toMatchObject({ exists: false, oid: undefined, schema: undefined });
    expect([catalog.columns.size, catalog.triggers.size, catalog.indexes.size, catalog.constraints.size]).toEqual([
      0, 0, 0, 0,
    ]);
  });

  it('columns: in table order, with their SQL type, NOT NULL and default; dropped ones gone', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.items (id bigint PRIMARY KEY, gone int, name varchar(20) NOT NULL DEFAULT 'x', n numeric(8, 2))`,
    );
    await ctx.sql(`ALTER TABLE ${ctx.schema}.items DROP COLUMN gone`);
    const catalog = await loadTableCatalog(ctx.driver, parseQualifiedName(`${ctx.schema}.items`));
    expect(catalog.exists).toBe(true);
    expect(catalog.schema).toBe(ctx.schema);
    const [oid] = await ctx.sql<{ oid: unknown }>(`SELECT '${ctx.schema}.items'::regclass::oid::int8 AS oid`);
    expect(catalog.oid).toBe(Number(oid!.oid));
    expect([...catalog.columns.values()]).toEqual([
      { name: 'id', attnum: 1, type: 'bigint', notNull: true, default: undefined },
      { name: 'name', attnum: 3, type: 'character varying(20)', notNull: true, default: "'x'::character varying" },
      { name: 'n', attnum: 4, type: 'numeric(8,2)', notNull: false, default: undefined },
    ]);
  });

  it('indexes: key columns in order, expressions as undefined, INCLUDE columns apart, partial and primary flagged', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.items (a int NOT NULL, b int NOT NULL, c text, PRIMARY KEY (b, a))`);
    await ctx.sql(`CREATE UNIQUE INDEX items_c_incl ON ${s}.items (c) INCLUDE (a)`);
    await ctx.sql(`CREATE INDEX items_lower_c ON ${s}.items (lower(c), a)`);
    await ctx.sql(`CREATE UNIQUE INDEX items_a_partial ON ${s}.items (a) WHERE c IS NOT NULL`);
    const catalog = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.items`));
    expect([...catalog.indexes.keys()]).toEqual(['items_a_partial', 'items_c_incl', 'items_lower_c', 'items_pkey']);
    expect(catalog.indexes.get('items_pkey')).toEqual({
      name: 'items_pkey',
      primary: true,
      unique: true,
      valid: true,
      partial: false,
      columns: ['b', 'a'],
      included: [],
    });
    expect(catalog.indexes.get('items_c_incl')).toMatchObject({
      primary: false,
      unique: true,
      columns: ['c'],
      included: ['a'],
    });
    expect(catalog.indexes.get('items_lower_c')).toMatchObject({
      unique: false,
      partial: true,
      columns: [undefined, 'a'],
    });
    expect(catalog.indexes.get('items_a_partial')).toMatchObject({ unique: true, partial: true, columns: ['a'] });

    expect(hasUniqueIndexOn(catalog, ['a', 'b'])).toBe(true);
    expect(hasUniqueIndexOn(catalog, ['c', 'x'])).toBe(true);
    expect(hasUniqueIndexOn(catalog, ['a'])).toBe(false);
    expect(hasIndexLeadingWith(catalog, ['a', 'b'])).toBe(true);
    expect(hasIndexLeadingWith(catalog, ['b'])).toBe(true);
    expect(hasIndexLeadingWith(catalog, ['a'])).toBe(false);
    expect(hasUniqueKey(catalog, ['a', 'b'])).toBe(true);
    expect(hasUniqueKey(catalog, ['b'])).toBe(false);
    // The INCLUDE columns count with the key columns.
    expect(hasUniqueKey(catalog, ['a', 'c'])).toBe(true);
    expect(hasUniqueKey(catalog, ['c'])).toBe(false);
  });

  it('an index left by an interrupted build is there, and not valid', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.items (id int PRIMARY KEY, v int)`);
    await ctx.sql(`CREATE UNIQUE INDEX items_v ON ${s}.items (v)`);
    await ctx.sql(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = '${s}.items_v'::regclass`);
    const catalog = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.items`));
    expect(catalog.indexes.get('items_v')).toMatchObject({ unique: true, valid: false });
    expect(hasUniqueKey(catalog, ['v'])).toBe(false);
    expect(hasUniqueIndexOn(catalog, ['v'])).toBe(false);
  });

  it('constraints: type and validation; a foreign key names the oid of the table it references', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY)`);
    await ctx.sql(`CREATE TABLE ${s}.bios (id int PRIMARY KEY, bio text)`);
    await ctx.sql(
      `ALTER TABLE ${s}.bios ADD CONSTRAINT bios_users FOREIGN KEY (id) REFERENCES ${s}.users (id) NOT VALID`,
    );
    await ctx.sql(`ALTER TABLE ${s}.bios ADD CONSTRAINT bio_set CHECK (bio IS NOT NULL) NOT VALID`);
    const users = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.users`));
    const bios = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.bios`));
    expect(bios.constraints.get('bios_users')).toEqual({
      name: 'bios_users',
      type: 'f',
      validated: false,
      references: users.oid,
    });
    expect(bios.constraints.get('bio_set')).toEqual({
      name: 'bio_set',
      type: 'c',
      validated: false,
      references: undefined,
    });
    expect(bios.constraints.get('bios_pkey')).toMatchObject({ type: 'p', validated: true });
  });

  it('triggers: the table own ones, not the internal triggers of its foreign keys', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY)`);
    await ctx.sql(`CREATE TABLE ${s}.bios (id int PRIMARY KEY REFERENCES ${s}.users (id))`);
    await ctx.sql(`CREATE FUNCTION ${s}.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
    await ctx.sql(`CREATE TRIGGER users_noop BEFORE INSERT ON ${s}.users FOR EACH ROW EXECUTE FUNCTION ${s}.noop()`);
    const users = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.users`));
    const bios = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.bios`));
    expect([...users.triggers]).toEqual(['users_noop']);
    expect([...bios.triggers]).toEqual([]);
    expect([...users.conditionalTriggers]).toEqual([]);
  });

  it('conditional triggers: those with a WHEN condition; refired: those disabled since', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY)`);
    await ctx.sql(`CREATE FUNCTION ${s}.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
    await ctx.sql(`CREATE TRIGGER plain BEFORE INSERT ON ${s}.users FOR EACH ROW EXECUTE FUNCTION ${s}.noop()`);
    await ctx.sql(
      `CREATE TRIGGER conditional BEFORE INSERT ON ${s}.users FOR EACH ROW WHEN (pg_trigger_depth() > 0) EXECUTE FUNCTION ${s}.noop()`,
    );
    await ctx.sql(`ALTER TABLE ${s}.users DISABLE TRIGGER plain`);
    const users = await loadTableCatalog(ctx.driver, parseQualifiedName(`${s}.users`));
    expect([...users.triggers].sort()).toEqual(['conditional', 'plain']);
    expect([...users.conditionalTriggers]).toEqual(['conditional']);
    expect([...users.refiredTriggers]).toEqual(['plain']);
  });
});
