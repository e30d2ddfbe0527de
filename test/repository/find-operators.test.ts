/**
 * `find` filter operators: the same rows whichever side a migrated field is read from,
 * compared by result set like equality, and refused where the old side would answer
 * differently.
 */
import {
  changeType,
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  customMapping,
  defineMigration,
  defineTable,
  moveColumn,
  rename,
  type Stage,
  split,
  ValidationError,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';

const entity = z.object({
  id: z.number().int(),
  name: z.string(),
  age: z.number().int().nullable(),
  username: z.string().nullable(),
  score: z.number().int().nullable(),
  bio: z.string().nullable(),
});
type Person = z.infer<typeof entity>;

const PEOPLE: Person[] = [
  { id: 1, name: 'ada', age: 36, username: 'ada_l', score: 9, bio: 'maths' },
  { id: 2, name: 'alan', age: 41, username: 'a%n', score: 10, bio: null },
  { id: 3, name: 'bob', age: null, username: null, score: 100, bio: 'b' },
  { id: 4, name: 'grace', age: 85, username: 'adam', score: null, bio: null },
  { id: 5, name: 'linus', age: 21, username: 'linus', score: 2, bio: 'kernel' },
];

/** Plain name and age; username renamed, score from text to integer, bio moved to a side table. */
async function fixture(ctx: DriverContext, stage: Stage, percent = 0) {
  const s = ctx.schema;
  await ctx.sql(
    `CREATE TABLE ${s}.people (id int PRIMARY KEY, name text, age int, user_name text, username text, score_text text, score int, bio text)`,
  );
  await ctx.sql(`CREATE TABLE ${s}.profiles (person_id int PRIMARY KEY REFERENCES ${s}.people (id), bio text)`);
  const people = defineTable({ name: 'people', key: 'id', entity });
  const migrations = [
    defineMigration({
      name: 'username',
      table: people,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
      defaultStage: 'off',
    }),
    defineMigration({
      name: 'score',
      table: people,
      mappings: [
        changeType({
          field: 'score',
          from: { column: 'score_text', type: 'text' },
          to: { column: 'score', type: 'integer' },
        }),
      ],
      defaultStage: 'off',
    }),
    defineMigration({
      name: 'bio',
      table: people,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: 'profiles', column: 'bio', key: ['person_id'] } }),
      ],
      defaultStage: 'off',
    }),
  ];
  const flags = createMemoryFlags(
    Object.fromEntries(
      migrations.flatMap((m) => [[m.stageFlagKey, 'dualwrite'] as const, [m.percentFlagKey, 0] as const]),
    ),
  );
  const metrics = createMemoryMetrics();
  const repo = createRepository(migrations, { driver: ctx.driver, flags, metrics });
  for (const person of PEOPLE) await repo.insert(person);
  for (const m of migrations) {
    flags.set(m.stageFlagKey, stage);
    flags.set(m.percentFlagKey, percent);
  }
  const ids = async (where: object) => (await repo.find({ where: where as never, orderBy: 'id' })).map((p) => p.id);
  return { repo, metrics, ids };
}

describeDrivers('find operators', (getCtx) => {
  it('plain fields: in, notIn, ranges, not, null and startsWith, all of them ANDed', async () => {
    const { ids } = await fixture(getCtx(), 'off');
    expect(await ids({ age: { in: [36, 85, 99] } })).toEqual([1, 4]);
    expect(await ids({ age: { notIn: [36] } })).toEqual([2, 4, 5]);
    expect(await ids({ age: { in: [] } })).toEqual([]);
    expect(await ids({ age: { notIn: [] } })).toEqual([1, 2, 4, 5]);
    expect(await ids({ age: { gt: 36 } })).toEqual([2, 4]);
    expect(await ids({ age: { gte: 36, lt: 85 } })).toEqual([1, 2]);
    expect(await ids({ age: { lte: 21 } })).toEqual([5]);
    expect(await ids({ age: { not: 36 } })).toEqual([2, 4, 5]);
    expect(await ids({ age: { not: null } })).toEqual([1, 2, 4, 5]);
    expect(await ids({ age: { null: true } })).toEqual([3]);
    expect(await ids({ age: { null: false } })).toEqual([1, 2, 4, 5]);
    expect(await ids({ name: { startsWith: 'a' } })).toEqual([1, 2]);
    expect(await ids({ name: { startsWith: 'a' }, age: { gt: 40 } })).toEqual([2]);
    expect(await ids({ name: { startsWith: '' } })).toEqual([1, 2, 3, 4, 5]);
  });

  for (const [stage, percent] of [
    ['off', 0],
    ['shadow', 0],
    ['live', 100],
    ['complete', 0],
  ] as const) {
    it(`${stage}: operators on a renamed and a moved field give the same rows as on the other side`, async () => {
      const { ids, metrics } = await fixture(getCtx(), stage, percent);
      // `%` and `_` are plain characters of a prefix.
      expect(await ids({ username: { startsWith: 'a%' } })).toEqual([2]);
      expect(await ids({ username: { startsWith: 'ad' } })).toEqual([1, 4]);
      expect(await ids({ username: { in: ['linus', 'adam'] }, name: { not: 'grace' } })).toEqual([5]);
      expect(await ids({ username: { gt: 'b' } })).toEqual([5]);
      expect(await ids({ username: { null: true } })).toEqual([3]);
      expect(await ids({ bio: { null: true } })).toEqual([2, 4]);
      expect(await ids({ bio: null })).toEqual([2, 4]);
      expect(await ids({ bio: { not: 'b' } })).toEqual([1, 5]);
      expect(await ids({ bio: { startsWith: 'k' } })).toEqual([5]);
      const snapshot = metrics.snapshot().migrations;
      const compares = stage === 'shadow' || stage === 'live';
      // Each query compares its own migration by result set, and the others per entity.
      for (const name of ['username', 'bio']) {
        if (compares) expect(snapshot[name]?.comparisons).toBeGreaterThanOrEqual(name === 'username' ? 5 : 4);
        else expect(snapshot[name]?.comparisons ?? 0).toBe(0);
        expect(snapshot[name]?.mismatches ?? 0).toBe(0);
      }
    });
  }

  it('complete: a row whose side-table row is missing matches a test for NULL, as it reads', async () => {
    const ctx = getCtx();
    const { repo, ids } = await fixture(ctx, 'complete');
    await ctx.sql(`DELETE FROM ${ctx.schema}.profiles WHERE person_id IN (3, 4)`);
    expect((await repo.get(3))?.bio).toBeNull();
    expect(await ids({ bio: { null: true } })).toEqual([2, 3, 4]);
    expect(await ids({ bio: null })).toEqual([2, 3, 4]);
    expect(await ids({ bio: { null: false } })).toEqual([1, 5]);
    expect(await ids({ bio: { notIn: ['maths'] } })).toEqual([5]);
  });

  it('a range over a field the old side stores as text is refused while the old side serves it', async () => {
    const { repo, ids } = await fixture(getCtx(), 'off');
    const error = await repo.find({ where: { score: { gt: 9 } } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(/operator "gt" on field "score"/);
    expect((error as ValidationError).fields).toEqual(['score']);
    await expect(repo.find({ where: { score: { startsWith: '1' } as never } })).rejects.toThrow(/startsWith/);
    // Equality-like operators are exact on the old side: the values are encoded as its column's.
    expect(await ids({ score: { in: [9, 100] } })).toEqual([1, 3]);
    expect(await ids({ score: { notIn: [9] } })).toEqual([2, 3, 5]);
    expect(await ids({ score: { null: true } })).toEqual([4]);
  });

  it('live: a range over the text-stored field is served new and not compared against the old side', async () => {
    const { ids, metrics } = await fixture(getCtx(), 'live', 100);
    // As text, '10' < '9' and '100' < '9': the old side would return other rows.
    expect(await ids({ score: { gte: 9 } })).toEqual([1, 2, 3]);
    expect(metrics.snapshot().migrations.score?.comparisons ?? 0).toBe(0);
    expect(await ids({ score: { in: [2, 10] } })).toEqual([2, 5]);
    expect(metrics.snapshot().migrations.score?.comparisons).toBe(1);
    expect(metrics.snapshot().migrations.score?.mismatches).toBe(0);
  });

  it('mappings that transform values: in and null through the backward form, the rest refused on the old side', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.accounts (id int PRIMARY KEY, name text, first_name text, last_name text, status_code smallint, status_label text)`,
    );
    const codes = ['active', 'suspended', 'deleted'];
    const accounts = defineTable({
      name: 'accounts',
      key: 'id',
      entity: z.object({
        id: z.number().int(),
        firstName: z.string().nullable(),
        lastName: z.string().nullable(),
        status: z.string().nullable(),
      }),
    });
    const names = defineMigration({
      name: 'names',
      table: accounts,
      mappings: [split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } })],
      defaultStage: 'dualwrite',
    });
    const status = defineMigration({
      name: 'status',
      table: accounts,
      mappings: [
        customMapping({
          fields: { status: { column: 'status_label', type: 'text' } },
          old: [{ column: 'status_code', type: 'smallint', kind: 'number' }],
          forward: ([code]) => [code == null ? null : codes[code as number]],
          backward: ([label]) => [label == null ? null : codes.indexOf(label as string)],
        }),
      ],
      defaultStage: 'dualwrite',
    });
    const flags = createMemoryFlags({ [names.stageFlagKey]: 'dualwrite', [status.stageFlagKey]: 'dualwrite' });
    const repo = createRepository([names, status], { driver: ctx.driver, flags });
    await repo.insert({ id: 1, firstName: 'ada', lastName: 'lovelace', status: 'active' });
    await repo.insert({ id: 2, firstName: 'alan', lastName: 'turing', status: 'deleted' });
    await repo.insert({ id: 3, firstName: 'bob', lastName: null, status: null });
    const ids = async (where: object) => (await repo.find({ where: where as never, orderBy: 'id' })).map((a) => a.id);
    expect(await ids({ status: { in: ['deleted', 'suspended'] } })).toEqual([2]);
    expect(await ids({ status: { null: true } })).toEqual([3]);
    await expect(ids({ status: { not: 'active' } })).rejects.toThrow(
      /operator "not" on field "status" can't be answered exactly by the old side: its custom stores a transformed value/,
    );
    await expect(ids({ firstName: { startsWith: 'a' } })).rejects.toThrow(
      /operator "startsWith" on field "firstName" .*stores it together with other fields/,
    );
    for (const m of [names, status]) flags.set(m.stageFlagKey, 'complete');
    expect(await ids({ status: { not: 'active' } })).toEqual([2]);
    expect(await ids({ firstName: { startsWith: 'a' }, lastName: { gt: 'm' } })).toEqual([2]);
  });

  it('bad operators are validation errors naming the field', async () => {
    const { repo } = await fixture(getCtx(), 'off');
    const fails = async (where: object, message: RegExp) => {
      const error = await repo.find({ where: where as never }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(message);
    };
    await fails({ age: { between: [1, 2] } }, /"age": unknown operator "between"/);
    await fails({ age: { in: 3 } }, /"age": in takes an array/);
    await fails({ age: { in: [1, null] } }, /"age": in: null is not a value/);
    await fails({ age: { gt: 'x' } }, /"age": gt: .*got "x"/);
    await fails({ age: { startsWith: '3' } }, /"age": startsWith takes a string and a text field/);
    await fails({ age: { null: 'yes' } }, /"age": null takes true or false/);
    await fails({ age: {} }, /"age": an operator object needs at least one operator/);
    await fails({ nope: { in: [1] } }, /nope/);
  });
});
