import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError, ErrorCode } from '../../src/kernel/errors.js';
import {
  changeType,
  customMapping,
  type MappingSpec,
  merge,
  moveColumn,
  rename,
  split,
} from '../../src/model/mappings.js';
import { defineMigration, type MigrationOptions } from '../../src/model/migration.js';
import { defineTable, type EntitySchema } from '../../src/model/table.js';

const users = defineTable({
  name: 'app.users',
  key: 'id',
  entity: z.object({
    id: z.number().int(),
    username: z.string(),
    firstName: z.string().nullable(),
    lastName: z.string().nullable(),
    visits: z.number().int(),
    bio: z.string().nullable(),
    settings: z.record(z.string(), z.unknown()),
  }),
  columns: { id: { column: 'user_id', type: 'bigint' } },
});

const renameUsername = rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' });

function options(overrides: Record<string, unknown> = {}): MigrationOptions<EntitySchema, string> {
  return {
    name: 'users-rename',
    table: users,
    mappings: [renameUsername],
    defaultStage: 'off',
    ...overrides,
  } as MigrationOptions<EntitySchema, string>;
}

function configurationError(overrides: Record<string, unknown>): ConfigurationError {
  try {
    defineMigration(options(overrides));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe(ErrorCode.Configuration);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('defineMigration: defaults', () => {
  const migration = defineMigration(options());

  it('derives the flag keys from the name', () => {
    expect(migration.stageFlagKey).toBe('flagshift.users-rename.stage');
    expect(migration.percentFlagKey).toBe('flagshift.users-rename.read-percent');
  });

  it('evaluates flags per migration, compares every read, hashes sample values, percent 0', () => {
    expect(migration).toMatchObject({
      kind: 'migration',
      name: 'users-rename',
      description: '',
      evaluation: 'per-migration',
      sampleOneIn: 1,
      shadowReadOneIn: 1,
      rawValues: false,
      defaultPercent: 0,
      defaultStage: 'off',
      crossTable: false,
      compare: {},
    });
  });

  it('lists the mapped fields and binds the columns with codecs', () => {
    expect(migration.fields).toEqual(['username']);
    const [mapping] = migration.mappings;
    expect(mapping?.oldColumns.map((column) => column.quoted)).toEqual(['"user_name"']);
    expect(mapping?.newColumns.map((column) => column.quoted)).toEqual(['"username"']);
    expect(mapping?.newColumns[0]?.codec.cast).toBe('::text');
    expect(mapping?.newTable).toBeUndefined();
  });

  it('is frozen', () => {
    expect(Object.isFrozen(migration)).toBe(true);
    expect(Object.isFrozen(migration.mappings)).toBe(true);
  });
});

describe('defineMigration: options', () => {
  it('takes custom flag keys, evaluation and default percent', () => {
    const migration = defineMigration(
      options({
        flags: {
          stage: 'ops.users.stage',
          percent: 'ops.users.percent',
          evaluation: 'per-entity',
          defaultPercent: 12.5,
        },
      }),
    );
    expect(migration.stageFlagKey).toBe('ops.users.stage');
    expect(migration.percentFlagKey).toBe('ops.users.percent');
    expect(migration.evaluation).toBe('per-entity');
    expect(migration.defaultPercent).toBe(12.5);
  });

  it('keeps a custom stage key and derives the percent key from the name', () => {
    const migration = defineMigration(options({ flags: { stage: 'custom-stage' } }));
    expect(migration.stageFlagKey).toBe('custom-stage');
    expect(migration.percentFlagKey).toBe('flagshift.users-rename.read-percent');
  });

  it('takes the compare options', () => {
    const comparator = (a: unknown, b: unknown) => a === b;
    const migration = defineMigration(
      options({ compare: { comparator, ignore: ['bio'], sampleOneIn: 10, shadowReadOneIn: 4, rawValues: true } }),
    );
    expect(migration.compare).toEqual({ comparator, ignore: ['bio'] });
    expect(migration.sampleOneIn).toBe(10);
    expect(migration.shadowReadOneIn).toBe(4);
    expect(migration.rawValues).toBe(true);
  });

  it('binds several mappings of different kinds', () => {
    const migration = defineMigration(
      options({
        mappings: [
          renameUsername,
          changeType({
            field: 'visits',
            from: { column: 'visits', type: 'integer' },
            to: { column: 'visits_big', type: 'bigint' },
          }),
          merge({ from: ['first', 'middle', 'last'], into: { field: 'firstName', column: 'first_name' } }),
        ],
      }),
    );
    expect(migration.fields).toEqual(['username', 'visits', 'firstName']);
    expect(migration.mappings[1]?.newColumns[0]?.codec.decode('42')).toBe(42);
    expect(migration.mappings[2]?.oldColumns.map((column) => column.name)).toEqual(['first', 'middle', 'last']);
  });

  it('binds a cross-table move, defaulting the side table key to the main key columns', () => {
    const migration = defineMigration(
      options({
        mappings: [moveColumn({ field: 'bio', from: 'bio', to: { table: 'app.user_profiles', column: 'bio' } })],
      }),
    );
    expect(migration.crossTable).toBe(true);
    const side = migration.mappings[0]?.newTable;
    expect(side?.table.quoted).toBe('"app"."user_profiles"');
    expect(side?.keyColumns.map((column) => [column.name, column.type])).toEqual([['user_id', 'bigint']]);
  });

  it('lets a cross-table move keep the column name on both sides', () => {
    const migration = defineMigration(
      options({
        mappings: [
          moveColumn({ field: 'bio', from: 'bio', to: { table: 'user_profiles', column: 'bio', key: ['owner_id'] } }),
        ],
      }),
    );
    expect(migration.mappings[0]?.newTable?.keyColumns.map((column) => column.quoted)).toEqual(['"owner_id"']);
  });
});

describe('defineMigration: invalid definitions throw a ConfigurationError naming migration, path and value', () => {
  it.each(['Users-Rename', 'users rename', '-users', '', 'users;drop', 'a'.repeat(64), 'usérs'])(
    'rejects the name %j',
    (name) => {
      const error = configurationError({ name });
      expect(error.message).toContain(`migration ${JSON.stringify(name)}: name: `);
      expect(error.message).toContain(`(got ${JSON.stringify(name)})`);
      expect(error.path).toBe('name');
    },
  );

  it('rejects a name that is not a string', () => {
    const error = configurationError({ name: 7 });
    expect(error.message).toMatch(/^migration "7": name: .*\(got 7\)$/);
  });

  it('rejects a table that does not come from defineTable', () => {
    const error = configurationError({ table: { name: 'users' } });
    expect(error.message).toMatch(/^migration "users-rename": table: must come from defineTable\(\)/);
    expect(error.path).toBe('table');
  });

  it('rejects an empty list of mappings', () => {
    const error = configurationError({ mappings: [] });
    expect(error.message).toMatch(/^migration "users-rename": mappings: .*\(got \[\]\)$/);
    expect(error.path).toBe('mappings');
  });

  it('rejects a mapping of a field the entity does not have', () => {
    const error = configurationError({ mappings: [rename({ field: 'nickname', from: 'nick', to: 'nickname' })] });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0.fields.0: "nickname" is not a field of the entity of table app.users',
    );
    expect(error.path).toBe('mappings.0.fields.0');
  });

  it('rejects a field mapped twice', () => {
    const error = configurationError({
      mappings: [renameUsername, rename({ field: 'username', from: 'login', to: 'login_name' })],
    });
    expect(error.message).toBe(
      'migration "users-rename": mappings.1.fields: field "username" is already mapped by mappings.0',
    );
    expect(error.path).toBe('mappings.1.fields');
  });

  it('rejects a mapping of a key field', () => {
    const error = configurationError({ mappings: [rename({ field: 'id', from: 'user_id', to: 'id' })] });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0.fields: field "id" is part of the key and can\'t be migrated',
    );
  });

  it.each([
    ['old', rename({ field: 'username', from: 'user"name', to: 'username' }), 'mappings.0.old.0.column', 'user"name'],
    [
      'new',
      rename({ field: 'username', from: 'user_name', to: 'x; drop table users' }),
      'mappings.0.new.0.column',
      'x; drop table users',
    ],
    ['old', rename({ field: 'username', from: 'name--', to: 'username' }), 'mappings.0.old.0.column', 'name--'],
    ['new', rename({ field: 'username', from: 'user_name', to: 'usérname' }), 'mappings.0.new.0.column', 'usérname'],
    [
      'merged',
      merge({ from: ['first', 'la st'], into: { field: 'firstName', column: 'first_name' } }),
      'mappings.0.old.1.column',
      'la st',
    ],
  ] as const)('rejects a hostile %s column name in a mapping', (_side, mapping, path, column) => {
    const error = configurationError({ mappings: [mapping] });
    expect(error.message).toContain(`migration "users-rename": ${path}: ${JSON.stringify(column)} `);
    expect(error.message).toContain('ASCII letters, digits and underscores');
    expect(error.path).toBe(path);
  });

  it('rejects a hostile side-table key column', () => {
    const error = configurationError({
      mappings: [moveColumn({ field: 'bio', from: 'bio', to: { table: 'profiles', column: 'bio', key: ['id"'] } })],
    });
    expect(error.message).toContain('mappings.0.newTable.key.0.column: "id\\""');
  });

  it('rejects a hostile side table name', () => {
    expect(() =>
      defineMigration(
        options({ mappings: [moveColumn({ field: 'bio', from: 'bio', to: { table: 'a.b.c', column: 'bio' } })] }),
      ),
    ).toThrow(/"a\.b\.c" has more than one dot/);
  });

  it.each(['int; drop table x', 'text)', 'jsonb --'])('rejects the column type %j', (type) => {
    const error = configurationError({
      mappings: [
        changeType({
          field: 'visits',
          from: { column: 'visits', type: 'integer' },
          to: { column: 'visits_big', type },
        }),
      ],
    });
    expect(error.message).toContain(`migration "users-rename": mappings.0.new.0.type: ${JSON.stringify(type)} `);
    expect(error.message).toContain('is not a plain SQL type name');
    expect(error.path).toBe('mappings.0.new.0.type');
  });

  it('rejects the same column as old and new of one same-row mapping', () => {
    const error = configurationError({ mappings: [rename({ field: 'username', from: 'username', to: 'username' })] });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0: column "username" appears twice; old and new columns must differ',
    );
    expect(error.path).toBe('mappings.0');
  });

  it('rejects a split whose new columns repeat its old column', () => {
    const error = configurationError({
      mappings: [split({ from: 'first_name', into: { firstName: 'first_name', lastName: 'last_name' } })],
    });
    expect(error.message).toContain('column "first_name" appears twice');
  });

  it('rejects a side table key with a column count unlike the main key', () => {
    const error = configurationError({
      mappings: [
        moveColumn({
          field: 'bio',
          from: 'bio',
          to: { table: 'profiles', column: 'bio', key: ['user_id', 'tenant_id'] },
        }),
      ],
    });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0.newTable.key: has 2 columns but the key of app.users has 1',
    );
    expect(error.path).toBe('mappings.0.newTable.key');
  });

  it('rejects a mapping whose fields and new columns do not pair', () => {
    const spec: MappingSpec = { ...renameUsername, new: [{ column: 'a' }, { column: 'b' }] };
    const error = configurationError({ mappings: [spec] });
    expect(error.message).toContain('mappings.0.fields: has 1 fields but 2 new columns');
  });

  it('rejects SQL forms of the wrong arity', () => {
    const twoColumns = customMapping({
      fields: { firstName: 'first_name', lastName: 'last_name' },
      old: [{ column: 'name', kind: 'string' }],
      forward: () => [null, null],
      backward: () => [null],
    });
    const error = configurationError({
      mappings: [{ ...twoColumns, sql: { forward: ['{name}'], backward: ['{first_name}'] } }],
    });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0.sql: needs one forward expression per new column and one backward expression per old column',
    );
  });

  it('rejects a missing default stage', () => {
    const error = configurationError({ defaultStage: undefined });
    expect(error.message).toBe(
      'migration "users-rename": defaultStage: must be one of off, dualwrite, shadow, live, rampdown, complete (got undefined)',
    );
    expect(error.path).toBe('defaultStage');
  });

  it.each(['ramp', 'LIVE', 3])('rejects the default stage %j', (stage) => {
    const error = configurationError({ defaultStage: stage });
    expect(error.message).toContain(
      `defaultStage: must be one of off, dualwrite, shadow, live, rampdown, complete (got ${JSON.stringify(stage)})`,
    );
  });

  it('rejects an unknown option in flags', () => {
    const error = configurationError({ flags: { stageKey: 'x' } });
    expect(error.message).toBe('migration "users-rename": flags: Unrecognized key: "stageKey" (got {"stageKey":"x"})');
    expect(error.path).toBe('flags');
  });

  it('rejects an unknown option in compare', () => {
    const error = configurationError({ compare: { sample: 10 } });
    expect(error.message).toContain('migration "users-rename": compare: ');
    expect(error.message).toContain('"sample"');
    expect(error.path).toBe('compare');
  });

  it.each([
    ['compare.sampleOneIn', { compare: { sampleOneIn: 0 } }, '0'],
    ['compare.sampleOneIn', { compare: { sampleOneIn: 1.5 } }, '1.5'],
    ['compare.shadowReadOneIn', { compare: { shadowReadOneIn: -1 } }, '-1'],
    ['compare.rawValues', { compare: { rawValues: 'yes' } }, '"yes"'],
    ['flags.evaluation', { flags: { evaluation: 'per-request' } }, '"per-request"'],
    ['flags.defaultPercent', { flags: { defaultPercent: 101 } }, '101'],
    ['flags.stage', { flags: { stage: '' } }, '""'],
  ])('rejects %s = %j', (path, overrides, shown) => {
    const error = configurationError(overrides);
    expect(error.message).toMatch(new RegExp(`^migration "users-rename": ${path.replace('.', '\\.')}: `));
    expect(error.message).toContain(`(got ${shown})`);
    expect(error.path).toBe(path);
  });
});

describe('defineMigration: columns are never shared', () => {
  it('rejects a new column that is a plain field column of the table', () => {
    expect(() =>
      defineMigration(options({ mappings: [rename({ field: 'username', from: 'user_name', to: 'bio' })] })),
    ).toThrow(/mappings\.0: column "bio" is already used by field "bio" of table app\.users/);
  });

  it('rejects a column used by two mappings', () => {
    const mappings = [
      rename({ field: 'username', from: 'user_name', to: 'login' }),
      rename({ field: 'bio', from: 'login', to: 'about' }),
    ];
    expect(() => defineMigration(options({ mappings }))).toThrow(
      /mappings\.1: column "login" is already used by mappings\.0/,
    );
  });

  it('rejects an unknown top-level option', () => {
    expect(() => defineMigration(options({ flag: { stage: 'x' } }))).toThrow(ConfigurationError);
  });

  it('names the migration and the path for a bad side-table name', () => {
    const error = (() => {
      try {
        defineMigration(
          options({ mappings: [moveColumn({ field: 'bio', from: 'bio', to: { table: 'a.b.c', column: 'bio' } })] }),
        );
      } catch (e) {
        return e as ConfigurationError;
      }
    })();
    expect(error?.message).toMatch(/^migration "users-rename": mappings\.0\.newTable\.name: .*"a\.b\.c"/);
    expect(error?.path).toBe('mappings.0.newTable.name');
  });
});

describe('defineMigration: definitions that could not keep their promises are refused', () => {
  const parts = defineTable({
    name: 'people',
    key: 'id',
    entity: z.object({ id: z.number().int(), first: z.string(), last: z.string().nullable(), age: z.number() }),
  });

  function refusal(overrides: Record<string, unknown>): ConfigurationError {
    return configurationError({ table: parts, ...overrides });
  }

  it.each([
    ['split', split({ from: 'name', into: { first: 'first', last: 'last' }, separator: '' })],
    ['merge', merge({ from: ['first', 'last'], into: { field: 'first', column: 'full' }, separator: '' })],
  ])('rejects a %s with an empty separator, which no text survives', (_, mapping) => {
    const error = refusal({ mappings: [mapping] });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0.separator: must not be empty: the parts could not be told apart when read back (got "")',
    );
    expect(error.path).toBe('mappings.0.separator');
  });

  it('rejects a split into a field the entity declares as a number', () => {
    const error = refusal({ mappings: [split({ from: 'name', into: { first: 'first', age: 'age' } })] });
    expect(error.message).toBe(
      'migration "users-rename": mappings.0.fields.1: split joins and cuts text, but field "age" of table people is declared as number; declare it z.string()',
    );
    expect(error.path).toBe('mappings.0.fields.1');
  });

  it('rejects a merge into a field the entity declares as a number', () => {
    const error = refusal({ mappings: [merge({ from: ['a', 'b'], into: { field: 'age', column: 'age_text' } })] });
    expect(error.path).toBe('mappings.0.fields.0');
    expect(error.message).toContain('field "age" of table people is declared as number');
  });

  it('rejects a split column declared with a type that is not text', () => {
    const error = refusal({
      mappings: [split({ from: 'name', into: { first: 'first', last: { column: 'last', type: 'integer' } } })],
    });
    expect(error.path).toBe('mappings.0.new.1.type');
    expect(error.message).toContain('column "last" is declared "integer"');
  });

  it('accepts a split into nullable text fields with varchar columns', () => {
    const migration = defineMigration(
      options({
        table: parts,
        mappings: [split({ from: { column: 'name', type: 'varchar(200)' }, into: { first: 'first', last: 'last' } })],
      }),
    );
    expect(migration.fields).toEqual(['first', 'last']);
  });

  it.each(['forward', 'backward'])('rejects a custom mapping whose %s is not a function', (side) => {
    const mapping = customMapping({
      fields: { username: 'login' },
      old: [{ column: 'user_name', kind: 'string' }],
      forward: (old: readonly unknown[]) => [...old],
      backward: (values: readonly unknown[]) => [...values],
      [side]: 5,
    } as unknown as Parameters<typeof customMapping>[0]);
    const error = configurationError({ mappings: [mapping] });
    expect(error.message).toMatch(
      new RegExp(`^migration "users-rename": mappings\\.0\\.${side}: .*function.*\\(got 5\\)$`),
    );
    expect(error.path).toBe(`mappings.0.${side}`);
  });

  it('rejects one flag key for both the stage and the percent', () => {
    const error = configurationError({ flags: { stage: 'x', percent: 'x' } });
    expect(error.message).toBe(
      'migration "users-rename": flags.percent: the stage flag and the percent flag are both "x"; they need a key each',
    );
    expect(error.path).toBe('flags.percent');
  });

  it('rejects a stage flag key that is the derived percent key', () => {
    const error = configurationError({ flags: { stage: 'flagshift.users-rename.read-percent' } });
    expect(error.path).toBe('flags.stage');
  });
});
