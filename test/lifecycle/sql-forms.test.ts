/**
 * The SQL forms of the built-in transforms (run by sync triggers, backfill and
 * verification) must compute exactly what the TypeScript transforms (run by dual writes
 * and shadow reads) compute, or old and new columns drift apart depending on which path
 * wrote them. Each test evaluates a mapping's `sql.forward` / `sql.backward` expressions
 * in PostgreSQL over a batch of inputs and compares with `forward` / `backward` (or the
 * identity), both sides going through the columns' codecs as the data path does.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { z } from 'zod';
import type { Driver } from '../../src/kernel/driver.js';
import { changeType, customMapping, type MappingSpec, merge, rename, split } from '../../src/model/mappings.js';
import { type BoundMapping, defineMigration } from '../../src/model/migration.js';
import { type BoundColumn, defineTable } from '../../src/model/table.js';
import { describeDrivers } from '../support/drivers.js';

const text = z.string().nullable();
const table = defineTable({
  name: 'transforms',
  key: 'id',
  entity: z.object({
    id: z.number().int(),
    name: text,
    p0: text,
    p1: text,
    p2: text,
    p3: text,
    visits: z.number().int().nullable(),
    payload: z.unknown(),
    priceCents: z.number().int().nullable(),
  }),
});

function bind(spec: MappingSpec): BoundMapping {
  const migration = defineMigration({ name: 'transforms', table, mappings: [spec], defaultStage: 'off' });
  return migration.mappings[0]!;
}

// Rows per statement: a 4-part split expression repeats its column 27 times.
const CHUNK = 100;

/**
 * Evaluates `expressions` in PostgreSQL for every row of `inputs` (logical values of
 * `columns`, in order). Each `{column}` becomes that row's parameter, encoded by the
 * column's codec and cast to its type; each result is decoded by `outputs[i]`'s codec.
 */
async function evaluate(
  driver: Driver,
  expressions: readonly string[],
  columns: readonly BoundColumn[],
  outputs: readonly BoundColumn[],
  inputs: readonly (readonly unknown[])[],
): Promise<unknown[][]> {
  const results: unknown[][] = [];
  for (let start = 0; start < inputs.length; start += CHUNK) {
    const chunk = inputs.slice(start, start + CHUNK);
    const params: unknown[] = [];
    const rows = chunk.map((values, index) => {
      const placeholder = new Map<string, string>();
      columns.forEach((column, at) => {
        params.push(column.codec.encode(values[at]));
        placeholder.set(column.name, `($${params.length}${column.codec.cast || '::text'})`);
      });
      const substituted = expressions.map((expression) =>
        expression.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
          const found = placeholder.get(name);
          if (found === undefined) throw new Error(`expression ${expression} names unknown column ${name}`);
          return found;
        }),
      );
      return `(${start + index}, ${substituted.join(', ')})`;
    });
    const aliases = expressions.map((_, index) => `r${index}`);
    const { rows: out } = await driver.query<Record<string, unknown>>(
      `SELECT ${aliases.join(', ')} FROM (VALUES ${rows.join(', ')}) AS v(i, ${aliases.join(', ')}) ORDER BY i`,
      params,
    );
    expect(out).toHaveLength(chunk.length);
    for (const row of out) results.push(aliases.map((alias, index) => outputs[index]!.codec.decode(row[alias])));
  }
  return results;
}

/** Checks SQL forward against TS forward on old values, and SQL backward against TS backward on new values. */
async function expectAgreement(
  driver: Driver,
  mapping: BoundMapping,
  cases: { readonly old?: readonly (readonly unknown[])[]; readonly new?: readonly (readonly unknown[])[] },
): Promise<void> {
  const sql = mapping.sql;
  if (sql === undefined) throw new Error('the mapping has no SQL forms');
  const identity = (values: readonly unknown[]) => [...values];
  if (cases.old !== undefined) {
    const forward = mapping.forward ?? identity;
    const actual = await evaluate(driver, sql.forward, mapping.oldColumns, mapping.newColumns, cases.old);
    const expected = cases.old.map((values) => forward(values));
    mismatches('forward', cases.old, actual, expected);
  }
  if (cases.new !== undefined) {
    const backward = mapping.backward ?? identity;
    const actual = await evaluate(driver, sql.backward, mapping.newColumns, mapping.oldColumns, cases.new);
    const expected = cases.new.map((values) => backward(values));
    mismatches('backward', cases.new, actual, expected);
  }
}

function mismatches(
  direction: string,
  inputs: readonly (readonly unknown[])[],
  actual: readonly unknown[][],
  expected: readonly unknown[][],
): void {
  const wrong = inputs
    .map((input, index) => ({ input, sql: actual[index], typescript: expected[index] }))
    .filter(({ sql, typescript }) => !isDeepEqual(sql, typescript));
  // All disagreements at once, the smallest inputs first, to make a failure readable.
  wrong.sort((a, b) => JSON.stringify(a.input).length - JSON.stringify(b.input).length);
  expect(wrong.slice(0, 5), `${direction}: ${wrong.length} of ${inputs.length} inputs disagree`).toEqual([]);
}

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    expect(a).toEqual(b);
    return true;
  } catch {
    return false;
  }
}

// PostgreSQL text can't hold NUL; everything else is fair game, including any Unicode.
const noNul = (value: string) => !value.includes('\u0000');

/** Texts rich in separators: empty, leading, trailing, repeated, and partial separators. */
function texts(separator: string, count: number, seed: number): string[] {
  const piece = fc.oneof(
    { weight: 3, arbitrary: fc.constant(separator) },
    { weight: 1, arbitrary: fc.constant(separator.slice(0, 1)) },
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 3 }).filter((value) => !/\p{Cs}/u.test(value)) },
  );
  const arbitrary = fc.array(piece, { maxLength: 7 }).map((pieces) => pieces.join(''));
  const handpicked = [
    '',
    separator,
    separator + separator,
    separator.repeat(4),
    `a${separator}`,
    `${separator}a`,
    `a${separator}${separator}b`,
    `a${separator}b${separator}c${separator}d${separator}e`,
    `é😀${separator}日本語${separator}`,
    `O'Brien${separator}\\n${separator}%_`,
    ' \t\n ',
  ];
  return [...handpicked, ...fc.sample(arbitrary, { numRuns: count, seed })].filter(noNul);
}

/** Tuples of `parts` optional texts, often containing the separator themselves. */
function partTuples(separator: string, parts: number, count: number, seed: number): (string | null)[][] {
  const part = fc.option(fc.constantFrom(...texts(separator, 40, seed)), { freq: 4 });
  const handpicked: (string | null)[][] = [
    Array.from({ length: parts }, () => null),
    Array.from({ length: parts }, () => ''),
    Array.from({ length: parts }, (_, index) => (index === parts - 1 ? 'last' : null)),
    Array.from({ length: parts }, (_, index) => (index === 0 ? 'first' : null)),
    Array.from({ length: parts }, (_, index) => (index % 2 === 0 ? null : `x${separator}y`)),
  ];
  return [
    ...handpicked,
    ...fc.sample(fc.array(part, { minLength: parts, maxLength: parts }), { numRuns: count, seed }),
  ];
}

const SEPARATORS = [' ', ', ', '|', "'", '\\', ' – '] as const;

describeDrivers('transforms: SQL forms agree with TypeScript', (getCtx) => {
  it('rename: both directions are the identity', async () => {
    const mapping = bind(rename({ field: 'name', from: 'user_name', to: 'name', type: 'text' }));
    const values = [...texts(' ', 60, 1), null].map((value) => [value]);
    await expectAgreement(getCtx().driver, mapping, { old: values, new: values });
  });

  for (const separator of SEPARATORS) {
    it(`split by ${JSON.stringify(separator)} into 2, 3 and 4 parts: forward splits, backward joins`, async () => {
      const { driver } = getCtx();
      for (const parts of [2, 3, 4]) {
        const fields = ['p0', 'p1', 'p2', 'p3'].slice(0, parts);
        const mapping = bind(
          split({
            from: 'full_name',
            into: Object.fromEntries(fields.map((field) => [field, `${field}_col`])),
            separator,
          }),
        );
        const old = [...texts(separator, 120, parts), null].map((value) => [value]);
        await expectAgreement(driver, mapping, { old, new: partTuples(separator, parts, 80, parts) });
      }
    });

    it(`merge by ${JSON.stringify(separator)} from 2, 3 and 4 columns: forward joins, backward splits`, async () => {
      const { driver } = getCtx();
      for (const parts of [2, 3, 4]) {
        const mapping = bind(
          merge({
            from: Array.from({ length: parts }, (_, index) => `part_${index}`),
            into: { field: 'name', column: 'full_name' },
            separator,
          }),
        );
        const neu = [...texts(separator, 120, 10 + parts), null].map((value) => [value]);
        await expectAgreement(driver, mapping, { old: partTuples(separator, parts, 80, 10 + parts), new: neu });
      }
    });
  }

  it('split: forward and backward compose to the identity on the old column, in SQL', async () => {
    const { driver } = getCtx();
    const mapping = bind(split({ from: 'full_name', into: { p0: 'a', p1: 'b', p2: 'c' }, separator: ', ' }));
    const values = [...texts(', ', 150, 99), null];
    const parts = await evaluate(
      driver,
      mapping.sql!.forward,
      mapping.oldColumns,
      mapping.newColumns,
      values.map((v) => [v]),
    );
    const joined = await evaluate(driver, mapping.sql!.backward, mapping.newColumns, mapping.oldColumns, parts);
    expect(joined.map(([value]) => value)).toEqual(values);
  });

  it('changeType integer -> bigint: the casts keep every value', async () => {
    const mapping = bind(
      changeType({
        field: 'visits',
        from: { column: 'visits', type: 'integer' },
        to: { column: 'visits_big', type: 'bigint' },
      }),
    );
    const ints = [0, 1, -1, 2147483647, -2147483648, null, ...fc.sample(fc.integer(), { numRuns: 100, seed: 7 })];
    const values = ints.map((value) => [value]);
    await expectAgreement(getCtx().driver, mapping, { old: values, new: values });
  });

  it('changeType text -> jsonb: the casts keep every JSON document', async () => {
    const mapping = bind(
      changeType({
        field: 'payload',
        from: { column: 'payload', type: 'text' },
        to: { column: 'payload_json', type: 'jsonb' },
      }),
    );
    const documents = [
      { a: 1, b: [true, null, 'x'] },
      [],
      {},
      'a string',
      '',
      0,
      -12.5,
      1e21,
      Number.MAX_SAFE_INTEGER,
      false,
      { ключ: 'значение', emoji: '😀', quote: 'O\'Brien "q"', backslash: '\\' },
      { nested: { deeper: { deepest: [1, [2, [3]]] } } },
      ...fc.sample(fc.jsonValue({ maxDepth: 3, stringUnit: 'grapheme' }), { numRuns: 150, seed: 3 }),
    ]
      // What the data path stores is JSON text: -0 becomes 0, and jsonb can't hold \u0000.
      .map((value) => JSON.parse(JSON.stringify(value)) as unknown)
      .filter((value) => !JSON.stringify(value).includes('\\u0000'));
    const values = [...documents.map((value) => [value]), [null]];
    await expectAgreement(getCtx().driver, mapping, { old: values, new: values });
  });

  it('customMapping (the documented price example): SQL agrees with the transforms on whole cents', async () => {
    const mapping = bind(
      customMapping({
        fields: { priceCents: { column: 'price_cents', type: 'bigint' } },
        old: [{ column: 'price', type: 'numeric', kind: 'number' }],
        forward: ([price]) => [price == null ? null : Math.round((price as number) * 100)],
        backward: ([cents]) => [cents == null ? null : (cents as number) / 100],
        sql: { forward: { price_cents: 'round({price} * 100)' }, backward: { price: '{price_cents} / 100.0' } },
      }),
    );
    const cents = [
      0,
      1,
      -1,
      99,
      100,
      -250,
      29,
      115,
      100_000_000_000,
      null,
      ...fc.sample(fc.integer({ min: -1e12, max: 1e12 }), { numRuns: 150, seed: 11 }),
    ];
    await expectAgreement(getCtx().driver, mapping, {
      old: cents.map((value) => [value === null ? null : value / 100]),
      new: cents.map((value) => [value]),
    });
  });
});
