import { expect, it } from 'vitest';
import { loadColumns } from '../../src/catalog/column-sets.js';
import { loadFunctionSources } from '../../src/catalog/function-sources.js';
import { existingRelations, loadIndexValidity, loadTableSize } from '../../src/catalog/relations.js';
import { parseQualifiedName } from '../../src/model/identifiers.js';
import { describeDrivers } from '../support/drivers.js';

describeDrivers('catalog relations', (getCtx) => {
  it('existingRelations: the names of those that exist, tables and views alike', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.items (id int PRIMARY KEY)`);
    await ctx.sql(`CREATE VIEW ${s}.items_view AS SELECT id FROM ${s}.items`);
    const names = [`"${s}"."items"`, `"${s}"."items_view"`, `"${s}"."nothing"`, `"${s}_none"."items"`];
    expect(await existingRelations(ctx.driver, names)).toEqual(new Set([`"${s}"."items"`, `"${s}"."items_view"`]));
    expect(await existingRelations(ctx.driver, [])).toEqual(new Set());
  });

  it('loadColumns: every table in one statement, null for one that does not exist', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.a (id int, gone int, name text)`);
    await ctx.sql(`ALTER TABLE ${s}.a DROP COLUMN gone`);
    await ctx.sql(`CREATE TABLE ${s}.b (id int)`);
    const [a, b, none] = [`${s}.a`, `${s}.b`, `${s}.none`].map((name) => parseQualifiedName(name));
    const sets = await loadColumns(ctx.driver, [a!, b!, none!, a!]);
    expect(sets).toEqual(
      new Map([
        [a!.quoted, new Set(['id', 'name'])],
        [b!.quoted, new Set(['id'])],
        [none!.quoted, null],
      ]),
    );
  });

  it('loadTableSize: bytes and reltuples (-1 before ANALYZE); nothing for a missing table', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.items AS SELECT g AS id FROM generate_series(1, 500) g`);
    const before = await loadTableSize(ctx.driver, parseQualifiedName(`${s}.items`));
    expect(before.bytes).toBeGreaterThan(0);
    expect(before.reltuples).toBe(-1);
    await ctx.sql(`ANALYZE ${s}.items`);
    expect((await loadTableSize(ctx.driver, parseQualifiedName(`${s}.items`))).reltuples).toBe(500);
    expect(await loadTableSize(ctx.driver, parseQualifiedName(`${s}.none`))).toEqual({ bytes: 0, reltuples: -1 });
  });

  it('loadIndexValidity: true, false for an index left invalid, undefined for none', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.items (id int, v int)`);
    await ctx.sql(`CREATE INDEX items_id ON ${s}.items (id)`);
    await ctx.sql(`CREATE INDEX items_v ON ${s}.items (v)`);
    await ctx.sql(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = '${s}.items_v'::regclass`);
    expect(await loadIndexValidity(ctx.driver, `${s}.items_id`)).toBe(true);
    expect(await loadIndexValidity(ctx.driver, `${s}.items_v`)).toBe(false);
    expect(await loadIndexValidity(ctx.driver, `${s}.items_none`)).toBeUndefined();
  });

  it('loadFunctionSources: the body between the dollar quotes, undefined for a function that does not exist', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE FUNCTION ${s}.answer() RETURNS int LANGUAGE sql AS $$ SELECT 42 $$`);
    const sources = await loadFunctionSources(ctx.driver, [`${s}.answer`, `${s}.nothing`]);
    expect(sources).toEqual(
      new Map([
        [`${s}.answer`, ' SELECT 42 '],
        [`${s}.nothing`, undefined],
      ]),
    );
    expect(await loadFunctionSources(ctx.driver, [])).toEqual(new Map());
  });
});
