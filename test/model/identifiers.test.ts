import { describe, expect, it } from 'vitest';
import { ConfigurationError, ErrorCode } from '../../src/kernel/errors.js';
import { identifierProblem, parseQualifiedName, quoteIdentifier, sqlTypeProblem } from '../../src/model/identifiers.js';

const ALLOWED = /ASCII letters, digits and underscores/;

describe('identifierProblem', () => {
  it.each(['users', 'user_name', '_private', 'A1', 'x', 'CamelCase', 'a'.repeat(63)])(
    'accepts the plain identifier %j',
    (name) => {
      expect(identifierProblem(name)).toBeUndefined();
    },
  );

  it.each([
    ['a double quote', 'user"name', ALLOWED],
    ['a quote that closes the identifier', 'x"; DROP TABLE users; --', ALLOWED],
    ['a semicolon', 'users;', ALLOWED],
    ['a line comment', 'users--', ALLOWED],
    ['a block comment', 'users/*x*/', ALLOWED],
    ['a space', 'user name', ALLOWED],
    ['a tab', 'user\tname', ALLOWED],
    ['a newline', 'users\n', ALLOWED],
    ['a dot', 'public.users', ALLOWED],
    ['a hyphen', 'user-name', ALLOWED],
    ['a dollar sign', 'users$1', ALLOWED],
    ['a non-ASCII letter', 'usérs', ALLOWED],
    ['a zero-width space', 'users\u200b', ALLOWED],
    ['a zero-width joiner', 'us\u200ders', ALLOWED],
    ['a byte-order mark', '\ufeffusers', ALLOWED],
    ['a NUL character', 'users\u0000', ALLOWED],
    ['a leading digit', '1users', /must not start with a digit/],
    ['nothing', '', /is empty/],
    ['64 characters', 'a'.repeat(64), /is 64 characters long; PostgreSQL allows at most 63/],
  ])('rejects a name with %s', (_what, name, message) => {
    expect(identifierProblem(name)).toMatch(message);
  });

  it.each([
    [42, 'expected a string, got 42'],
    [null, 'expected a string, got null'],
    [undefined, 'expected a string, got undefined'],
    [['users'], 'expected a string, got ["users"]'],
    [{ name: 'users' }, 'expected a string, got an object'],
    [Symbol('users'), 'expected a string, got Symbol(users)'],
  ])('rejects the non-string %s and says what it got', (value, message) => {
    expect(identifierProblem(value)).toBe(message);
  });
});

describe('quoteIdentifier', () => {
  it('double-quotes a valid identifier', () => {
    expect(quoteIdentifier('user_name')).toBe('"user_name"');
    expect(quoteIdentifier('MixedCase')).toBe('"MixedCase"');
  });

  it('throws a ConfigurationError naming what and the value for a hostile identifier', () => {
    const error = catchError(() => quoteIdentifier('x"; DROP TABLE users; --', 'column'));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as ConfigurationError).code).toBe(ErrorCode.Configuration);
    expect((error as Error).message).toBe(
      'column "x\\"; DROP TABLE users; --" may contain only ASCII letters, digits and underscores, and must not start with a digit',
    );
  });

  it('defaults the subject of the message to "identifier"', () => {
    expect(() => quoteIdentifier('')).toThrow('identifier "" is empty');
  });
});

describe('parseQualifiedName', () => {
  it('parses an unqualified table name', () => {
    expect(parseQualifiedName('users')).toEqual({
      schema: undefined,
      name: 'users',
      quoted: '"users"',
      display: 'users',
    });
  });

  it('parses schema.table and quotes each part separately', () => {
    expect(parseQualifiedName('app.users')).toEqual({
      schema: 'app',
      name: 'users',
      quoted: '"app"."users"',
      display: 'app.users',
    });
  });

  it('rejects a.b.c with a message naming the value', () => {
    expect(() => parseQualifiedName('a.b.c')).toThrow(ConfigurationError);
    expect(() => parseQualifiedName('a.b.c')).toThrow('table name "a.b.c" has more than one dot; use "schema.table"');
  });

  it.each([
    ['.users', '""', /is empty/],
    ['app.', '""', /is empty/],
    ['app.us ers', '"us ers"', ALLOWED],
    ['a"pp.users', '"a\\"pp"', ALLOWED],
    ['app.1users', '"1users"', /must not start with a digit/],
  ])('rejects %j naming the offending part', (value, part, problem) => {
    const error = catchError(() => parseQualifiedName(value, 'table'));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain(`table ${JSON.stringify(value)}: part ${part}`);
    expect((error as Error).message).toMatch(problem);
  });
});

describe('sqlTypeProblem', () => {
  it.each([
    'bigint',
    'integer',
    'text',
    'jsonb',
    'numeric(10,2)',
    'numeric( 10 , 2 )',
    'numeric(12)',
    'character varying(255)',
    'varchar(255)[]',
    'text[]',
    'timestamp with time zone',
    'double precision',
    'BIGINT',
  ])('accepts the type %j', (type) => {
    expect(sqlTypeProblem(type)).toBeUndefined();
  });

  it.each([
    'int; drop table x',
    'text)',
    'jsonb --',
    'text /* x */',
    "text default 'x'",
    'text collate "C"',
    'numeric(10,2,3)',
    'numeric(a)',
    'text[1]',
    '1nt',
    '',
    'x'.repeat(64),
    'text\u200b',
  ])('rejects the type %j', (type) => {
    expect(sqlTypeProblem(type)).toMatch(/is not a plain SQL type name/);
  });

  it.each([[42], [null], [undefined], [['text']]])('rejects the non-string type %j', (value) => {
    expect(sqlTypeProblem(value)).toMatch(/^expected a string, got /);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('sqlTypeProblem: a type name carries no clause', () => {
  it.each(['text or true', 'text default 1', 'bigint or 1=1', 'integer union select 1', 'text collate c'])(
    'rejects %j, which would read as SQL after a cast',
    (type) => {
      expect(sqlTypeProblem(type)).toMatch(/is not a plain SQL type name/);
    },
  );
  it.each(['double precision[]', 'Timestamp With Time Zone', 'public.mood', 'bit varying(8)'])('accepts %j', (type) => {
    expect(sqlTypeProblem(type)).toBeUndefined();
  });
});
