/**
 * A numeric key the key field's schema certainly accepts skips zod's parse on the read
 * path. The check is read from the schema's definition; it must never pass a number the
 * schema refuses (zod decides, and words, every error), and must pass the common keys so
 * the parse is really skipped.
 */
import { createMemoryFlags, createRepository, defineMigration, defineTable, rename, ValidationError } from 'flagshift';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { numberKeyCheck } from '../../src/repository/number-key-check.js';
import { describeDrivers } from '../support/drivers.js';

const EDGES = [
  0,
  -0,
  1,
  -1,
  2,
  42,
  99,
  100,
  101,
  1.5,
  -1.5,
  0.1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.MAX_SAFE_INTEGER,
  Number.MAX_SAFE_INTEGER + 1,
  Number.MIN_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER - 1,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32 - 1,
  2 ** 32,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
];

const CHECKED: [string, z.ZodType, number[]][] = [
  ['z.number()', z.number(), [0, 1, -1, 1.5, Number.MAX_VALUE]],
  ['z.int()', z.int(), [0, 1, 42, Number.MAX_SAFE_INTEGER]],
  ['z.number().int()', z.number().int(), [0, 1, -1, 42, Number.MIN_SAFE_INTEGER]],
  ['z.number().int().positive()', z.number().int().positive(), [1, 42]],
  ['z.number().int().nonnegative()', z.number().int().nonnegative(), [0, 1]],
  ['z.number().int().gte(1).lte(100)', z.number().int().gte(1).lte(100), [1, 100]],
  ['z.number().int().gt(1).lt(100)', z.number().int().gt(1).lt(100), [2, 99]],
  ['z.int32()', z.int32(), [0, -(2 ** 31), 2 ** 31 - 1]],
  ['z.uint32()', z.uint32(), [0, 2 ** 32 - 1]],
  ['z.number().int().describe(...)', z.number().int().describe('the user id'), [42]],
  ['z.number({ error }).int()', z.number({ error: 'an id' }).int(), [42]],
];

const UNCHECKED: [string, z.ZodType][] = [
  ['z.coerce.number()', z.coerce.number()],
  [
    'a refinement',
    z
      .number()
      .int()
      .refine((n) => n % 2 === 0),
  ],
  ['z.number().multipleOf(2)', z.number().multipleOf(2)],
  ['a transform', z.number().transform((n) => n + 1)],
  ['z.number().optional()', z.number().optional()],
  ['z.number().nullable()', z.number().nullable()],
  ['z.number().default(1)', z.number().default(1)],
  ['z.string()', z.string()],
  ['z.bigint()', z.bigint()],
  ['z.float32()', z.float32()],
  ['z.union([z.number(), z.string()])', z.union([z.number(), z.string()])],
];

describe('numberKeyCheck', () => {
  for (const [name, schema, accepted] of CHECKED) {
    it(`${name}: passes only numbers the schema accepts unchanged, and passes the usual keys`, () => {
      const check = numberKeyCheck(schema);
      expect(check, name).toBeTypeOf('function');
      for (const value of EDGES) {
        if (!check!(value)) continue;
        const parsed = schema.safeParse(value);
        expect(parsed.success, `${name} passed ${value}`).toBe(true);
        expect(Object.is(parsed.data, value), `${name} changed ${value}`).toBe(true);
      }
      for (const value of accepted) expect(check!(value), `${name} refused ${value}`).toBe(true);
    });
  }

  for (const [name, schema] of UNCHECKED) {
    it(`${name}: no check, so every key is parsed`, () => {
      expect(numberKeyCheck(schema)).toBeUndefined();
    });
  }

  it('no schema, or a definition it does not know: no check', () => {
    expect(numberKeyCheck(undefined)).toBeUndefined();
    const unknownCheck = {
      _zod: {
        traits: new Set(['$ZodNumber']),
        def: { type: 'number', checks: [{ _zod: { traits: new Set(['$ZodCheck']), def: { check: 'prime' } } }] },
      },
    };
    expect(numberKeyCheck(unknownCheck as unknown as z.ZodType)).toBeUndefined();
    const inheritedFormat = {
      _zod: {
        traits: new Set(['$ZodNumber']),
        def: {
          type: 'number',
          checks: [
            {
              _zod: {
                traits: new Set(['$ZodCheckNumberFormat']),
                def: { check: 'number_format', format: 'toString' },
              },
            },
          ],
        },
      },
    };
    expect(numberKeyCheck(inheritedFormat as unknown as z.ZodType)).toBeUndefined();
    const extraKey = { _zod: { traits: new Set(['$ZodNumber']), def: { type: 'number', checks: [], innerType: {} } } };
    expect(numberKeyCheck(extraKey as unknown as z.ZodType)).toBeUndefined();
  });

  it('a check whose definition names another check (set through its parameters) is not trusted: zod runs its class', () => {
    // The helpers spread their parameters into the definition, so `check` can be overwritten;
    // TypeScript only refuses it in an object literal.
    const asGreater = { check: 'greater_than' } as object;
    const asSafeInt = { check: 'number_format', format: 'safeint' } as object;
    const cases: [z.ZodType, number][] = [
      [z.number().lt(5, asGreater), 6],
      [z.number().gt(5, asSafeInt), 1],
      [z.number().multipleOf(7, asGreater), 8],
      [z.number().int({ ...asGreater, value: 0 } as object), 1.5],
      [z.number(asSafeInt).gt(0), -1],
    ];
    for (const [schema, value] of cases) {
      expect(schema.safeParse(value).success).toBe(false);
      const check = numberKeyCheck(schema);
      expect(check === undefined || !check(value), `passed ${value}`).toBe(true);
    }
    // A definition without the class behind it (a look-alike object) gets no check either.
    const lookAlike = { _zod: { def: { type: 'number', checks: [] } } };
    expect(numberKeyCheck(lookAlike as unknown as z.ZodType)).toBeUndefined();
  });
});

describeDrivers('numeric keys through get', (getCtx) => {
  async function accountsRepository(id: z.ZodType<number>) {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.accounts (id bigint PRIMARY KEY, user_name text, username text)`);
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.accounts VALUES (1, 'one', 'one'), (2, 'two', 'two'), (3, 'three', 'three')`,
    );
    const accounts = defineTable({
      name: `${ctx.schema}.accounts`,
      key: 'id',
      entity: z.object({ id, username: z.string() }),
    });
    const migration = defineMigration({
      name: 'accounts-username',
      table: accounts,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
      defaultStage: 'off',
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'shadow', [migration.percentFlagKey]: 0 });
    return createRepository(migration, { driver: ctx.driver, flags });
  }

  it("a key the checked schema refuses gets zod's error; one it accepts is read", async () => {
    const repo = await accountsRepository(z.number().int().positive());
    expect(await repo.get(2)).toEqual({ id: 2, username: 'two' });
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(repo.get(bad), String(bad)).rejects.toBeInstanceOf(ValidationError);
    }
  });

  it('a schema without a check still decides: its refinement refuses a key', async () => {
    const even = await accountsRepository(
      z
        .number()
        .int()
        .refine((n) => n % 2 === 0, 'an even id'),
    );
    expect(await even.get(2)).toEqual({ id: 2, username: 'two' });
    await expect(even.get(3)).rejects.toThrow(/an even id/);
  });
});
