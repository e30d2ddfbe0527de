import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError, ErrorCode } from '../../src/kernel/errors.js';
import { defineTable } from '../../src/model/table.js';

const entity = z.object({ id: z.number().int(), username: z.string(), email: z.string().optional() });

// Options are deliberately malformed here, so they go through this untyped door.
function defineUnchecked(options: unknown) {
  return defineTable(options as Parameters<typeof defineTable>[0]);
}

function configurationError(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe(ErrorCode.Configuration);
    return error as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

describe('defineTable: valid definitions', () => {
  it('binds every field to a column of the same name by default', () => {
    const users = defineTable({ name: 'users', key: 'id', entity });
    expect(users.kind).toBe('table');
    expect(users.table.quoted).toBe('"users"');
    expect(users.keyFields).toEqual(['id']);
    expect(users.fields).toEqual(['id', 'username', 'email']);
    expect(users.columns['username']).toMatchObject({ name: 'username', quoted: '"username"', type: undefined });
  });

  it('takes a schema-qualified name', () => {
    const users = defineTable({ name: 'app.users', key: 'id', entity });
    expect(users.table).toMatchObject({ schema: 'app', name: 'users', quoted: '"app"."users"' });
  });

  it('maps fields to differently named columns, with or without a type', () => {
    const users = defineTable({
      name: 'users',
      key: 'id',
      entity,
      columns: { username: 'user_name', id: { column: 'user_id', type: 'bigint' }, email: { type: 'text' } },
    });
    expect(users.columns['username']).toMatchObject({ name: 'user_name', quoted: '"user_name"', type: undefined });
    expect(users.columns['id']).toMatchObject({ name: 'user_id', quoted: '"user_id"', type: 'bigint' });
    expect(users.columns['id']!.codec.cast).toBe('::bigint');
    expect(users.columns['email']).toMatchObject({ name: 'email', type: 'text' });
  });

  it('accepts a composite key, in the given order', () => {
    const memberships = defineTable({
      name: 'memberships',
      key: ['orgId', 'userId'],
      entity: z.object({ userId: z.number(), orgId: z.number(), role: z.string() }),
    });
    expect(memberships.keyFields).toEqual(['orgId', 'userId']);
  });

  it('is frozen', () => {
    const users = defineTable({ name: 'users', key: 'id', entity });
    expect(Object.isFrozen(users)).toBe(true);
    expect(Object.isFrozen(users.columns)).toBe(true);
    expect(Object.isFrozen(users.keyFields)).toBe(true);
  });
});

describe('defineTable: invalid definitions throw a ConfigurationError naming the table, path and value', () => {
  it('rejects a hostile table name', () => {
    const error = configurationError(() => defineUnchecked({ name: 'users; drop table x', key: 'id', entity }));
    expect(error.message).toMatch(/^table "users; drop table x": name/);
    expect(error.message).toMatch(/ASCII letters, digits and underscores/);
  });

  it('rejects a.b.c as a table name', () => {
    const error = configurationError(() => defineUnchecked({ name: 'a.b.c', key: 'id', entity }));
    expect(error.message).toContain('table "a.b.c"');
    expect(error.message).toContain('more than one dot');
  });

  it('rejects a table name that is not a string', () => {
    const error = configurationError(() => defineUnchecked({ name: 42, key: 'id', entity }));
    expect(error.message).toMatch(/^table "42": name: /);
    expect(error.path).toBe('name');
  });

  it('rejects an empty table name', () => {
    const error = configurationError(() => defineUnchecked({ name: '', key: 'id', entity }));
    expect(error.message).toMatch(/^table "": name: /);
    expect(error.path).toBe('name');
  });

  it('rejects a key that is not a field of the entity', () => {
    const error = configurationError(() => defineUnchecked({ name: 'users', key: 'user_id', entity }));
    expect(error.message).toBe('table "users": key: field "user_id" is not a field of the entity');
    expect(error.path).toBe('key');
  });

  it('rejects a composite key that lists a field twice', () => {
    const error = configurationError(() => defineUnchecked({ name: 'users', key: ['id', 'id'], entity }));
    expect(error.message).toBe('table "users": key: field "id" is listed twice');
    expect(error.path).toBe('key');
  });

  it('rejects a composite key with one unknown field', () => {
    const error = configurationError(() => defineUnchecked({ name: 'users', key: ['id', 'tenant'], entity }));
    expect(error.message).toBe('table "users": key: field "tenant" is not a field of the entity');
  });

  it.each([
    ['an empty list', []],
    ['an empty string', ''],
  ])('rejects %s as the key', (_what, key) => {
    const error = configurationError(() => defineUnchecked({ name: 'users', key, entity }));
    expect(error.message).toMatch(/^table "users": key: /);
    expect(error.path).toBe('key');
  });

  it.each([
    ['a plain object', { id: 1 }],
    ['a zod string', z.string()],
    ['a zod array of objects', z.array(z.object({ id: z.number() }))],
    ['nothing', undefined],
  ])('rejects %s as the entity', (_what, value) => {
    const error = configurationError(() => defineUnchecked({ name: 'users', key: 'id', entity: value }));
    expect(error.message).toBe('table "users": entity: must be a zod object schema, e.g. z.object({ id: z.number() })');
    expect(error.path).toBe('entity');
  });

  it('rejects columns naming a field the entity does not have', () => {
    const error = configurationError(() =>
      defineUnchecked({ name: 'users', key: 'id', entity, columns: { nickname: 'nick' } }),
    );
    expect(error.message).toBe('table "users": columns: "nickname" is not a field of the entity');
    expect(error.path).toBe('columns.nickname');
  });

  it.each([
    'user"name',
    'x"; DROP TABLE users; --',
    'user name',
    'users/*',
    'usérs',
    'user\u200bname',
    '1user',
    '',
    'c'.repeat(64),
  ])('rejects the hostile column name %j', (column) => {
    const error = configurationError(() =>
      defineUnchecked({ name: 'users', key: 'id', entity, columns: { username: column } }),
    );
    expect(error.message).toContain(`table "users": column of field "username": ${JSON.stringify(column)} `);
    expect(error.path).toBe('columns.username');
  });

  it('rejects a hostile column name given in the object form', () => {
    const error = configurationError(() =>
      defineUnchecked({ name: 'users', key: 'id', entity, columns: { username: { column: 'a;b' } } }),
    );
    expect(error.message).toContain('column of field "username": "a;b"');
  });

  it.each(['int; drop table x', 'text)', 'jsonb --', 'text /* */'])('rejects the column type %j', (type) => {
    const error = configurationError(() =>
      defineUnchecked({ name: 'users', key: 'id', entity, columns: { username: { column: 'user_name', type } } }),
    );
    expect(error.message).toContain(`table "users": type of column "user_name": ${JSON.stringify(type)} `);
    expect(error.message).toContain('is not a plain SQL type name');
    expect(error.path).toBe('columns.username.type');
  });

  it('rejects a column spec that is neither a name nor an object', () => {
    const error = configurationError(() =>
      defineUnchecked({ name: 'users', key: 'id', entity, columns: { username: 7 } }),
    );
    expect(error.message).toMatch(/^table "users": columns\.username: /);
    expect(error.path).toBe('columns.username');
  });

  it('rejects options that are not an object', () => {
    const error = configurationError(() => defineUnchecked(null));
    expect(error.message).toMatch(/^table "undefined": options: /);
  });
});

describe('defineTable: logical kinds', () => {
  enum Color {
    Red = 'red',
    Blue = 'blue',
  }
  const kinds = defineTable({
    name: 'kinds',
    key: 'id',
    entity: z.object({
      id: z.number(),
      text: z.string(),
      email: z.email(),
      number: z.number(),
      int: z.int(),
      intCheck: z.number().int(),
      big: z.bigint(),
      flag: z.boolean(),
      at: z.date(),
      status: z.enum(['active', 'banned']),
      color: z.enum(Color),
      literalText: z.literal('x'),
      literalNumber: z.literal(3),
      literalBool: z.literal(true),
      literalBig: z.literal(3n),
      object: z.object({ a: z.number() }),
      array: z.array(z.string()),
      record: z.record(z.string(), z.number()),
      unknown: z.unknown(),
      optionalText: z.string().optional(),
      nullableNumber: z.number().nullable(),
      nullishBig: z.bigint().nullish(),
      defaultedFlag: z.boolean().default(false),
      defaultedOptionalDate: z.date().optional().default(new Date(0)),
      optionalObject: z.object({ a: z.string() }).optional(),
      transformed: z.string().transform((value) => value.trim()),
      coerced: z.coerce.number(),
    }),
  });

  it.each([
    ['text', 'string'],
    ['email', 'string'],
    ['number', 'number'],
    ['int', 'number'],
    ['intCheck', 'number'],
    ['big', 'bigint'],
    ['flag', 'boolean'],
    ['at', 'date'],
    ['status', 'string'],
    ['color', 'string'],
    ['literalText', 'string'],
    ['literalNumber', 'number'],
    ['literalBool', 'boolean'],
    ['literalBig', 'bigint'],
    ['object', 'json'],
    ['array', 'json'],
    ['record', 'json'],
    ['unknown', 'json'],
    ['optionalText', 'string'],
    ['nullableNumber', 'number'],
    ['nullishBig', 'bigint'],
    ['defaultedFlag', 'boolean'],
    ['defaultedOptionalDate', 'date'],
    ['optionalObject', 'json'],
    ['transformed', 'string'],
    ['coerced', 'number'],
  ])('detects the kind of field %s as %s', (field, kind) => {
    expect(kinds.fieldKinds[field]).toBe(kind);
  });

  it('gives each column the codec of its field kind', () => {
    expect(kinds.columns['big']!.codec.decode('9007199254740993')).toBe(9007199254740993n);
    expect(kinds.columns['number']!.codec.decode('1.5')).toBe(1.5);
    expect(kinds.columns['at']!.codec.decode('2024-01-02T03:04:05.000Z')).toEqual(new Date('2024-01-02T03:04:05.000Z'));
  });
});

describe('defineTable: write and patch schemas', () => {
  const users = defineTable({ name: 'users', key: 'id', entity });

  it('writeSchema accepts a complete entity', () => {
    expect(users.writeSchema.parse({ id: 1, username: 'ada' })).toEqual({ id: 1, username: 'ada' });
  });

  it('writeSchema rejects unknown fields', () => {
    const result = users.writeSchema.safeParse({ id: 1, username: 'ada', user_name: 'ada' });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['user_name'] });
  });

  it('writeSchema rejects a missing required field', () => {
    expect(users.writeSchema.safeParse({ id: 1 }).success).toBe(false);
  });

  it('patchSchema accepts any subset of fields, including none', () => {
    expect(users.patchSchema.parse({ username: 'grace' })).toEqual({ username: 'grace' });
    expect(users.patchSchema.parse({})).toEqual({});
  });

  it('patchSchema still checks the types of the fields present', () => {
    expect(users.patchSchema.safeParse({ username: 42 }).success).toBe(false);
  });

  it('patchSchema rejects unknown fields', () => {
    const result = users.patchSchema.safeParse({ nickname: 'g' });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]).toMatchObject({ code: 'unrecognized_keys', keys: ['nickname'] });
  });
});
