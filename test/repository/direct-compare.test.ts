/**
 * A read of a migration whose fields are each one old and one new column of the main table
 * decodes and compares in one pass. It must give what the general path gives: the same
 * served values, the same verdict, and, where it can't decide (a difference, a decode
 * that throws), the general path's own handling.
 */
import {
  changeType,
  createMemoryFlags,
  createRepository,
  customMapping,
  defineMigration,
  defineTable,
  type MetricEvent,
  rename,
} from 'flagshift';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { routeFor } from '../../src/flags/router.js';
import { mappingOldValuesInto } from '../../src/repository/decode.js';
import { decodeDirect, directFields } from '../../src/repository/direct-compare.js';
import { diffEntities } from '../../src/shadow/compare.js';
import { describeDrivers } from '../support/drivers.js';

const table = defineTable({
  name: 'app.items',
  key: 'id',
  entity: z.object({
    id: z.number().int(),
    label: z.string().nullable(),
    count: z.number().int().nullable(),
    doc: z.record(z.string(), z.unknown()).nullable(),
  }),
});

function migrationOf(options: { compare?: Record<string, unknown> } = {}) {
  return defineMigration({
    name: 'items-direct',
    table,
    mappings: [
      rename({ field: 'label', from: 'old_label', to: 'label', type: 'text' }),
      changeType({
        field: 'count',
        from: { column: 'old_count', type: 'integer' },
        to: { column: 'count', type: 'bigint' },
      }),
      rename({ field: 'doc', from: 'old_doc', to: 'doc', type: 'jsonb' }),
    ],
    defaultStage: 'off',
    ...options,
  });
}

describe('directFields', () => {
  it('pairs the old and new column of each field of renames and type changes', () => {
    const fields = directFields(migrationOf());
    expect(fields?.map((field) => [field.field, field.oldColumn.name, field.newColumn.name])).toEqual([
      ['label', 'old_label', 'label'],
      ['count', 'old_count', 'count'],
      ['doc', 'old_doc', 'doc'],
    ]);
  });

  it('leaves to the general path a migration with compare options or a transform', () => {
    expect(directFields(migrationOf({ compare: { normalize: (_field: string, value: unknown) => value } }))).toBe(
      undefined,
    );
    expect(directFields(migrationOf({ compare: { comparator: () => undefined } }))).toBe(undefined);
    expect(directFields(migrationOf({ compare: { ignore: ['label'] } }))).toBe(undefined);
    const custom = defineMigration({
      name: 'items-custom',
      table,
      mappings: [
        customMapping({
          fields: { label: { column: 'label', type: 'text' } },
          old: [{ column: 'old_label', type: 'text' }],
          forward: ([old]) => [typeof old === 'string' ? old.toUpperCase() : old],
          backward: ([label]) => [label],
        }),
      ],
      defaultStage: 'off',
    });
    expect(directFields(custom)).toBe(undefined);
  });
});

describe('decodeDirect', () => {
  const migration = migrationOf();
  const fields = directFields(migration)!;

  /** What the general path gives for `row`: the served values, and whether the sides are equal. */
  function general(row: Record<string, unknown>, servesOld: boolean) {
    const fromOld: Record<string, unknown> = {};
    for (const mapping of migration.mappings) mappingOldValuesInto(mapping, row, fromOld);
    const fromNew: Record<string, unknown> = {};
    for (const mapping of migration.mappings) {
      mapping.fields.forEach((field, index) => {
        const column = mapping.newColumns[index]!;
        fromNew[field] = column.codec.decode(row[column.name]);
      });
    }
    const equal = diffEntities(migration.fields, fromOld, fromNew, migration.compare, false).length === 0;
    return { served: servesOld ? fromOld : fromNew, equal };
  }

  const pairs: [string, unknown, unknown][] = [
    ['label', 'ada', 'ada'],
    ['label', 'ada', 'Ada'],
    ['label', null, null],
    ['label', null, undefined],
    ['label', '', null],
    ['count', 5, '5'],
    ['count', 5, '6'],
    ['count', null, '0'],
    ['count', 9007199254740991, '9007199254740991'],
    ['doc', { a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }],
    ['doc', { a: 1, b: 2 }, { b: 2, a: 1 }],
    ['doc', { a: 1 }, { a: 1, b: undefined }],
    ['doc', { a: 1 }, { a: '1' }],
    ['doc', [1, 2], { 0: 1, 1: 2 }],
    ['doc', null, {}],
  ];

  for (const [field, oldRaw, newRaw] of pairs) {
    for (const servesOld of [true, false]) {
      it(`${field}: old ${JSON.stringify(oldRaw)}, new ${JSON.stringify(newRaw)}, serving ${servesOld ? 'old' : 'new'}`, () => {
        const columns = fields.find((candidate) => candidate.field === field)!;
        const row = { old_label: 'x', label: 'x', old_count: 1, count: '1', old_doc: null, doc: null };
        Object.assign(row, { [columns.oldColumn.name]: oldRaw, [columns.newColumn.name]: newRaw });
        const expected = general(row, servesOld);
        const route = routeFor(servesOld ? 'shadow' : 'live', !servesOld);
        const compared: Record<string, unknown> = {};
        const same = decodeDirect(fields, route, true, row, compared);
        expect(same).toBe(expected.equal);
        if (same) expect(compared).toEqual(expected.served);
        const served: Record<string, unknown> = {};
        expect(decodeDirect(fields, route, false, row, served)).toBe(true);
        expect(served).toStrictEqual(expected.served);
      });
    }
  }
});

describeDrivers('one-pass decode through a repository', (getCtx) => {
  it('a compared side that fails to decode is counted against it; a served one fails the read', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.counters (id int PRIMARY KEY, n_text text, n bigint)`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.counters VALUES (1, 'not a number', 5), (2, '7', 7), (3, '8', 9)`);
    const counters = defineTable({
      name: `${ctx.schema}.counters`,
      key: 'id',
      entity: z.object({ id: z.number().int(), n: z.bigint().nullable() }),
    });
    const migration = defineMigration({
      name: 'counters-n',
      table: counters,
      mappings: [
        changeType({ field: 'n', from: { column: 'n_text', type: 'text' }, to: { column: 'n', type: 'bigint' } }),
      ],
      defaultStage: 'off',
    });
    expect(directFields(migration)).toBeDefined();
    const events: MetricEvent[] = [];
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 100 });
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics: { record: (e) => events.push(e) } });
    await repo.check();
    await repo.get(2);
    events.length = 0;

    expect(await repo.get(1)).toEqual({ id: 1, n: 5n });
    expect(events).toContainEqual(expect.objectContaining({ type: 'error', side: 'old' }));
    expect(events.some((event) => event.type === 'comparison')).toBe(false);

    events.length = 0;
    expect(await repo.get(2)).toEqual({ id: 2, n: 7n });
    expect(events).toContainEqual(expect.objectContaining({ type: 'comparison', matched: true }));

    events.length = 0;
    expect(await repo.get(3)).toEqual({ id: 3, n: 9n });
    expect(events).toContainEqual(expect.objectContaining({ type: 'comparison', matched: false }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'mismatch' }));

    flags.set(migration.stageFlagKey, 'shadow');
    await expect(repo.get(1)).rejects.toThrow();
    repo.close();
  });
});
