/**
 * Hostile and malformed migration definitions: identifiers carrying quotes, semicolons,
 * comments, unicode or too many characters, SQL clauses posing as type names, values of
 * the wrong type, unknown fields. Each is rejected with a ConfigurationError naming the
 * value, when the definition is made, and nothing reaches the database: a recording driver
 * proves that no statement ran on the way from definition to first write.
 */
import fc from 'fast-check';
import {
  ConfigurationError,
  changeType,
  createMemoryFlags,
  createRepository,
  customMapping,
  defineMigration,
  defineTable,
  ErrorCode,
  type MappingSpec,
  merge,
  moveColumn,
  rename,
  split,
} from 'flagshift';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Driver } from '../../src/kernel/driver.js';
import { recordingDriver } from '../support/model-driver.js';

const entity = z.object({ id: z.number().int(), username: z.string(), email: z.string(), bio: z.string() });
const users = defineTable({ name: 'users', key: 'id', entity });

/** A database that must never be reached. */
const unreachable: Driver = {
  name: 'unreachable',
  supportsConcurrentQueries: false,
  query: async () => {
    throw new Error('a statement reached the database');
  },
  transaction: async () => {
    throw new Error('a transaction reached the database');
  },
  session: async () => {
    throw new Error('a session reached the database');
  },
};

/**
 * Goes from definition to first write: defines, creates the repository, checks and
 * inserts. Returns what was thrown and every statement the driver was asked to run.
 */
async function attempt(define: () => unknown): Promise<{ error: unknown; statements: readonly string[] }> {
  const driver = recordingDriver(unreachable);
  let error: unknown;
  try {
    const target = define() as Parameters<typeof createRepository>[0];
    const repo = createRepository(target, { driver, flags: createMemoryFlags() });
    await repo.check();
    await repo.insert({ id: 1, username: 'ada', email: 'a@x', bio: '' } as never);
  } catch (caught) {
    error = caught;
  }
  return { error, statements: driver.statements.map((statement) => statement.sql) };
}

function migrationWith(mapping: () => MappingSpec) {
  return () => defineMigration({ name: 'hostile', table: users, mappings: [mapping()], defaultStage: 'off' });
}

const HOSTILE_IDENTIFIERS = [
  'user"name',
  'x"; DROP TABLE users; --',
  "Robert'); DROP TABLE students;--",
  'users;',
  'users --',
  'users/* */',
  'ユーザー',
  'usér',
  'users\u200b',
  'users\u0000',
  'a'.repeat(64),
  '',
  '1users',
  'user name',
  'select * from users',
];

const HOSTILE_TYPES = [
  'text or true',
  'text); DROP TABLE users; --',
  "text default 'x'",
  'integer union select 1',
  'int --',
  'text /* x */',
  'text\n; SELECT 1',
  'jsonb[]; SELECT',
  'bigint)',
  'text collate "C"',
  't'.repeat(70),
];

/** Every place a migration definition takes an identifier. */
const IDENTIFIER_POSITIONS: Record<string, (name: string) => () => unknown> = {
  'table name': (name) => () => defineTable({ name, key: 'id', entity }),
  'schema of a qualified table name': (name) => () => defineTable({ name: `${name}.users`, key: 'id', entity }),
  'plain column': (name) => () => defineTable({ name: 'users', key: 'id', entity, columns: { email: name } }),
  'plain column, object form': (name) => () =>
    defineTable({ name: 'users', key: 'id', entity, columns: { email: { column: name } } }),
  'rename from': (name) => migrationWith(() => rename({ field: 'username', from: name, to: 'username' })),
  'rename to': (name) => migrationWith(() => rename({ field: 'username', from: 'user_name', to: name })),
  'changeType from': (name) =>
    migrationWith(() =>
      changeType({ field: 'username', from: { column: name, type: 'text' }, to: { column: 'u2', type: 'text' } }),
    ),
  'changeType to': (name) =>
    migrationWith(() =>
      changeType({ field: 'username', from: { column: 'u1', type: 'text' }, to: { column: name, type: 'text' } }),
    ),
  'split from': (name) => migrationWith(() => split({ from: name, into: { username: 'username', email: 'email2' } })),
  'split into': (name) => migrationWith(() => split({ from: 'both', into: { username: name, email: 'email2' } })),
  'merge from': (name) =>
    migrationWith(() => merge({ from: [name, 'last'], into: { field: 'username', column: 'u' } })),
  'merge into': (name) =>
    migrationWith(() => merge({ from: ['first', 'last'], into: { field: 'username', column: name } })),
  'moveColumn from': (name) =>
    migrationWith(() => moveColumn({ field: 'bio', from: name, to: { table: 'profiles', column: 'bio' } })),
  'moveColumn table': (name) =>
    migrationWith(() => moveColumn({ field: 'bio', from: 'bio', to: { table: name, column: 'bio' } })),
  'moveColumn column': (name) =>
    migrationWith(() => moveColumn({ field: 'bio', from: 'bio', to: { table: 'profiles', column: name } })),
  'moveColumn key': (name) =>
    migrationWith(() =>
      moveColumn({ field: 'bio', from: 'bio', to: { table: 'profiles', column: 'bio', key: [name] } }),
    ),
  'customMapping old column': (name) =>
    migrationWith(() =>
      customMapping({
        fields: { username: 'username' },
        old: [{ column: name }],
        forward: (v) => [...v],
        backward: (v) => [...v],
      }),
    ),
  'customMapping new column': (name) =>
    migrationWith(() =>
      customMapping({
        fields: { username: name },
        old: [{ column: 'u' }],
        forward: (v) => [...v],
        backward: (v) => [...v],
      }),
    ),
};

/** Every place a migration definition takes an SQL type. */
const TYPE_POSITIONS: Record<string, (type: string) => () => unknown> = {
  'plain column type': (type) => () =>
    defineTable({ name: 'users', key: 'id', entity, columns: { email: { column: 'email', type } } }),
  'rename type': (type) => migrationWith(() => rename({ field: 'username', from: 'a', to: 'b', type })),
  'changeType from type': (type) =>
    migrationWith(() =>
      changeType({ field: 'username', from: { column: 'a', type }, to: { column: 'b', type: 'text' } }),
    ),
  'changeType to type': (type) =>
    migrationWith(() =>
      changeType({ field: 'username', from: { column: 'a', type: 'text' }, to: { column: 'b', type } }),
    ),
  'merge into type': (type) =>
    migrationWith(() => merge({ from: ['first', 'last'], into: { field: 'username', column: 'u', type } })),
  'moveColumn type': (type) =>
    migrationWith(() => moveColumn({ field: 'bio', from: 'bio', to: { table: 'profiles', column: 'bio' }, type })),
  'customMapping old type': (type) =>
    migrationWith(() =>
      customMapping({
        fields: { username: 'username' },
        old: [{ column: 'u', type }],
        forward: (v) => [...v],
        backward: (v) => [...v],
      }),
    ),
};

async function expectRejected(define: () => unknown, value: unknown, what: string): Promise<void> {
  const { error, statements } = await attempt(define);
  expect(error, `invariant: a hostile definition is rejected (${what})`).toBeInstanceOf(ConfigurationError);
  expect((error as ConfigurationError).code).toBe(ErrorCode.Configuration);
  if (typeof value === 'string') {
    expect((error as Error).message, `invariant: the rejection names the offending value (${what})`).toContain(
      JSON.stringify(value).slice(0, 40),
    );
  }
  expect(statements, `invariant: a rejected definition executes nothing (${what})`).toEqual([]);
}

describe('hostile identifiers and types are rejected when defined, and nothing is executed', () => {
  for (const [position, define] of Object.entries(IDENTIFIER_POSITIONS)) {
    it(`${position}: every hostile identifier`, async () => {
      for (const name of HOSTILE_IDENTIFIERS)
        await expectRejected(define(name), name, `${position} ${JSON.stringify(name)}`);
    });
  }
  for (const [position, define] of Object.entries(TYPE_POSITIONS)) {
    it(`${position}: every SQL clause posing as a type name`, async () => {
      for (const type of HOSTILE_TYPES) await expectRejected(define(type), type, `${position} ${JSON.stringify(type)}`);
    });
  }

  it('the same definitions with plain identifiers are accepted (the matrix tests what it claims)', async () => {
    for (const [position, define] of Object.entries(IDENTIFIER_POSITIONS)) {
      expect(() => define('plain_name')(), position).not.toThrow();
    }
    for (const [position, define] of Object.entries(TYPE_POSITIONS)) {
      expect(() => define('character varying(20)')(), position).not.toThrow();
    }
  });

  it('any string as a column name is either a plain identifier or rejected with a ConfigurationError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 70 }),
          fc.string({ unit: fc.constantFrom('a', 'Z', '_', '0', '$', '"', ';', ' ', '-', '.', 'é'), maxLength: 70 }),
        ),
        (name) => {
          let error: unknown;
          try {
            migrationWith(() => rename({ field: 'username', from: 'user_name', to: name }))();
          } catch (caught) {
            error = caught;
          }
          if (error === undefined) {
            expect(name, 'invariant: only plain identifiers reach SQL').toMatch(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/);
          } else {
            expect(error, 'invariant: a bad name is a ConfigurationError, never a crash').toBeInstanceOf(
              ConfigurationError,
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('any string as a type is either a plain type name or rejected with a ConfigurationError', () => {
    const multiWord = new Set([
      'bit varying',
      'character varying',
      'double precision',
      'time with time zone',
      'time without time zone',
      'timestamp with time zone',
      'timestamp without time zone',
    ]);
    const typeLike = fc
      .tuple(
        fc.constantFrom('text', 'bigint', 'double', 'character', 'timestamp', 'or', 'true', 'select', 'union', '1'),
        fc.array(
          fc.constantFrom(
            ' ',
            'precision',
            'varying',
            'with',
            'time',
            'zone',
            'or',
            '(',
            ')',
            '10',
            ',',
            '[]',
            ';',
            '--',
            "'",
            '"',
            '\n',
            '.',
          ),
          {
            maxLength: 6,
          },
        ),
      )
      .map(([head, rest]) => head + rest.join(' '));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 70 }), typeLike), (type) => {
        let error: unknown;
        try {
          migrationWith(() => rename({ field: 'username', from: 'a', to: 'b', type }))();
        } catch (caught) {
          error = caught;
        }
        if (error !== undefined) {
          expect(error, 'invariant: a bad type is a ConfigurationError, never a crash').toBeInstanceOf(
            ConfigurationError,
          );
          return;
        }
        expect(type, 'invariant: an accepted type holds no quote, comment or statement separator').toMatch(
          /^[A-Za-z0-9_ .()[\],\s]*$/,
        );
        const words = type
          // The modifier may span lines (whitespace is whitespace): strip it whole.
          .replace(/\([\s\S]*\)|\[\]/g, ' ')
          .trim()
          .toLowerCase()
          .split(/\s+/);
        if (words.length > 1) {
          expect(multiWord.has(words.join(' ')), `invariant: a multi-word type is a standard name (${type})`).toBe(
            true,
          );
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('malformed definitions (wrong types, unknown fields) are rejected when defined, and nothing is executed', () => {
  const migration = (overrides: Record<string, unknown>) => () =>
    defineMigration({
      name: 'users-username',
      table: users,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username' })],
      defaultStage: 'off',
      ...overrides,
    } as never);
  const cases: [string, () => unknown, unknown][] = [
    ['a name that is not a string', migration({ name: 42 }), undefined],
    ['a name with a quote', migration({ name: "users'; --" }), "users'; --"],
    ['a name of 64 characters', migration({ name: 'a'.repeat(64) }), undefined],
    ['mappings that are a string', migration({ mappings: 'rename' }), undefined],
    ['a mapping object not from a helper', migration({ mappings: [{ kind: 'drop-table' }] }), undefined],
    ['an unknown stage', migration({ defaultStage: 'LIVE' }), 'LIVE'],
    ['a default percentage above 100', migration({ flags: { defaultPercent: 150 } }), undefined],
    ['a default percentage that is a string', migration({ flags: { defaultPercent: '50' } }), '50'],
    ['a default percentage that is NaN', migration({ flags: { defaultPercent: Number.NaN } }), undefined],
    ['an unknown evaluation mode', migration({ flags: { evaluation: 'per-user' } }), 'per-user'],
    ['an empty flag key', migration({ flags: { stage: '' } }), undefined],
    ['a sampling rate of 0', migration({ compare: { sampleOneIn: 0 } }), undefined],
    ['rawValues that is a string', migration({ compare: { rawValues: 'yes' } }), 'yes'],
    ['an unknown option', migration({ dropOldColumns: true }), undefined],
    ['a table not from defineTable', migration({ table: { name: 'users' } }), undefined],
    [
      'a mapping of a field the entity lacks',
      migration({ mappings: [rename({ field: 'nickname', from: 'nick', to: 'nickname' })] }),
      'nickname',
    ],
    [
      'a field given as a number',
      migration({ mappings: [rename({ field: 42 as never, from: 'a', to: 'b' })] }),
      undefined,
    ],
    ['a table key that is not a field', () => defineTable({ name: 'users', key: 'uuid' as never, entity }), 'uuid'],
    [
      'columns naming a field the entity lacks',
      () => defineTable({ name: 'users', key: 'id', entity, columns: { nickname: 'nick' } as never }),
      'nickname',
    ],
    [
      'an entity that is not a zod object',
      () => defineTable({ name: 'users', key: 'id', entity: {} as never }),
      undefined,
    ],
  ];
  it.each(cases)('%s', async (what, define, value) => {
    await expectRejected(define, value, what);
  });
});
