/**
 * The rewrite itself, on PostgreSQL's parser and without a database: what each stage turns
 * a statement into, and hostile SQL (comments, quoted look-alike identifiers, reused
 * parameters, literals naming columns, long statements, constructs refused before
 * anything runs).
 */
import {
  ConfigurationError,
  createMemoryFlags,
  defineMigration,
  moveColumn,
  type Stage,
  ValidationError,
} from 'flagshift';
import { loadSqlParser } from 'flagshift/sql';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSqlRouter, type SqlParser, type SqlRouter } from '../../src/internal.js';
import { usernameRename, users } from './fixture.js';

const migration = usernameRename('off');

let parser: SqlParser;
beforeAll(async () => {
  parser = await loadSqlParser();
});

function routerAt(stage: Stage): SqlRouter {
  const flags = createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: 100 });
  return createSqlRouter(() => parser, { migrations: [migration], flags });
}

/** The routed text of `sql` at `stage`, normalized through the parser for comparison; `undefined` when passed through. */
async function routed(stage: Stage, sql: string, values: unknown[] = [1]): Promise<string | undefined> {
  const query = await routerAt(stage).route(sql, values, undefined, undefined);
  return query?.sql === sql || query === undefined ? undefined : query.sql;
}

const same = (sql: string) => parser.deparse(parser.parse(sql).stmts![0]!.stmt);

describe('routed SQL: rewrites', () => {
  it('passes statements on other tables through untouched', async () => {
    expect(await routed('off', 'SELECT username FROM accounts WHERE id = $1')).toBeUndefined();
    const router = routerAt('off');
    expect(router.route('SELECT 1', [], undefined, undefined)).toBeUndefined();
    router.route('SELECT 1', [], undefined, undefined);
    expect(router.stats()).toMatchObject({ planMisses: 1, planHits: 1, passedThrough: 2 });
  });

  it('serves the old column under the new name while the stage serves old', async () => {
    expect(await routed('off', 'SELECT u.id, u.username FROM users u WHERE u.username = $1 ORDER BY u.username')).toBe(
      same('SELECT u.id, u.user_name AS username FROM users u WHERE u.user_name = $1 ORDER BY u.user_name'),
    );
    expect(await routed('rampdown', 'SELECT u.id, u.username FROM users u WHERE u.username = $1')).toBeUndefined();
  });

  it('resolves joins, sub-queries, CTEs, GROUP BY, schema-qualified names and RETURNING', async () => {
    expect(
      await routed(
        'dualwrite',
        'WITH t AS (SELECT id, username FROM users) SELECT o.id, t.username FROM orgs o JOIN t ON t.id = o.owner WHERE EXISTS (SELECT 1 FROM public.users x WHERE x.username = o.name)',
      ),
    ).toBe(
      same(
        'WITH t AS (SELECT id, users.user_name AS username FROM users) SELECT o.id, t.username FROM orgs o JOIN t ON t.id = o.owner WHERE EXISTS (SELECT 1 FROM public.users x WHERE x.user_name = o.name)',
      ),
    );
    expect(
      await routed(
        'off',
        'SELECT "public"."users"."username", count(*) FROM "public"."users" GROUP BY "public"."users"."username"',
      ),
    ).toBe(
      same('SELECT public.users.user_name AS username, count(*) FROM public.users GROUP BY public.users.user_name'),
    );
    expect(await routed('off', 'DELETE FROM users WHERE username = $1 RETURNING username')).toBe(
      same('DELETE FROM users WHERE users.user_name = $1 RETURNING users.user_name AS username'),
    );
  });

  it('expands * to the application shape of the served side', async () => {
    expect(await routed('off', 'SELECT * FROM users')).toBe(
      same('SELECT users.id AS id, users.user_name AS username, users.email AS email FROM users'),
    );
  });

  it('writes both column sets in one statement from dualwrite to rampdown, reusing the parameters', async () => {
    const insert =
      'INSERT INTO users (id, username, email) VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT (id) DO UPDATE SET username = excluded.username';
    expect(await routed('dualwrite', insert)).toBe(
      same(
        'INSERT INTO users (id, username, email, user_name) VALUES ($1, $2, $3, $2), ($4, $5, $6, $5) ON CONFLICT (id) DO UPDATE SET username = excluded.username, user_name = excluded.username',
      ),
    );
    expect(await routed('off', 'UPDATE users SET username = $2 WHERE id = $1')).toBe(
      same('UPDATE users SET user_name = $2 WHERE id = $1'),
    );
    expect(await routed('rampdown', 'UPDATE users SET username = $2 WHERE id = $1')).toBe(
      same('UPDATE users SET username = $2, user_name = $2 WHERE id = $1'),
    );
    expect(await routed('complete', 'UPDATE users SET username = $2 WHERE id = $1')).toBeUndefined();
  });

  it('fetches the other side in hidden columns of the same statement in shadow', async () => {
    expect(await routed('shadow', 'SELECT username FROM users WHERE id = $1')).toBe(
      same(
        'SELECT users.user_name AS username, users.id AS __flagshift_0, users.username AS __flagshift_1 FROM users WHERE id = $1',
      ),
    );
    // Grouped rows don't map to table rows: served, not compared.
    expect(await routed('shadow', 'SELECT username, count(*) FROM users GROUP BY username')).toBe(
      same('SELECT users.user_name AS username, count(*) FROM users GROUP BY users.user_name'),
    );
  });
});

describe('routed SQL: hostile statements', () => {
  it('leaves comments, string literals and quoted look-alike identifiers alone', async () => {
    const sql = `/* username */ SELECT id, 'username' AS "username2", "Username", "user name" FROM users WHERE email = 'username = $1' -- username`;
    expect(await routed('off', sql)).toBeUndefined();
    expect(await routed('off', `SELECT $1::text AS "username" FROM users`)).toBeUndefined();
  });

  it('rewrites a very long statement whole', async () => {
    const conditions = Array.from({ length: 2000 }, (_, i) => `username = $${(i % 50) + 1}`).join(' OR ');
    const out = await routed(
      'off',
      `SELECT id FROM users WHERE ${conditions}`,
      Array.from({ length: 50 }, (_, i) => `n${i}`),
    );
    expect(out).toBeDefined();
    expect(out!.split('user_name').length - 1).toBe(2000);
    expect(out).not.toMatch(/[^_]username/);
  });

  const refused: [string, string][] = [
    ['SELECT user_name FROM users', 'old column'],
    ['SELECT username FROM users JOIN orgs ON orgs.id = users.org', 'unqualified column'],
    ['SELECT row_to_json(u.*) FROM users u', 'whole-row'],
    ['INSERT INTO users (id, username) SELECT id, name FROM people', 'INSERT ... SELECT'],
    ['INSERT INTO users (id, user_name) VALUES ($1, $2)', 'old column'],
    ['SELECT 1; UPDATE users SET username = $1', 'several statements'],
    ['INSERT INTO users (id, username) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING', 'ON CONFLICT (username)'],
    ['SELECT * FROM users JOIN orgs USING (username)', 'USING'],
  ];
  for (const [sql, construct] of refused) {
    it(`refuses ${construct}: ${sql}`, async () => {
      const attempt = async () => routerAt('dualwrite').route(sql, [1, 'a'], undefined, undefined);
      await expect(attempt()).rejects.toThrow(ValidationError);
      await expect(attempt()).rejects.toThrow(construct);
    });
  }
});

describe('routed SQL: options', () => {
  const flags = createMemoryFlags();
  it('refuses unknown options and a router without flags when it is created', () => {
    expect(() => createSqlRouter(() => parser, { migrations: [migration], flags, typo: 1 } as never)).toThrow(
      ConfigurationError,
    );
    expect(() => createSqlRouter(() => parser, { migrations: [migration] })).toThrow(/options.flags is required/);
  });

  it('reads a moved column from its side table through a correlated sub-query, and from the main row before', async () => {
    const moved = defineMigration({
      name: 'users-email',
      table: users,
      mappings: [moveColumn({ field: 'email', from: 'email', to: { table: 'app.profiles', column: 'email' } })],
      defaultStage: 'off',
    });
    const at = async (stage: Stage, sql: string) => {
      const stageFlags = createMemoryFlags({ [moved.stageFlagKey]: stage, [moved.percentFlagKey]: 100 });
      const router = createSqlRouter(() => parser, { migrations: [moved], flags: stageFlags });
      return (await router.route(sql, [1], undefined, undefined))?.sql;
    };
    const sql = 'SELECT u.email FROM users u WHERE u.id = $1';
    expect(await at('dualwrite', sql)).toBe(same('SELECT u.email AS email FROM users u WHERE u.id = $1'));
    expect(await at('rampdown', sql)).toBe(
      same(
        'SELECT (SELECT "__flagshift_side".email FROM app.profiles AS "__flagshift_side" WHERE "__flagshift_side".id = u.id) AS email FROM users u WHERE u.id = $1',
      ),
    );
    await expect(at('rampdown', 'SELECT __flagshift_side.email FROM users __flagshift_side')).rejects.toThrow(
      /can't rewrite a relation named "__flagshift_side"/,
    );
  });
});
