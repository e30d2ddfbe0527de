/**
 * A comparing read whose first attempt fails for a reason of the served side's (here a
 * serialization failure injected once in front of a real PGlite) and succeeds on the
 * retry without the comparison columns: the error is the served side's, through the SQL
 * router and through a repository alike; a missing compared column stays the compared side's.
 */
import { PGlite } from '@electric-sql/pglite';
import { createMemoryFlags, createMemoryMetrics, createRepository, type Stage } from 'flagshift';
import { createPgliteDriver } from 'flagshift/pglite';
import { routePglite } from 'flagshift/sql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { usernameRename } from './fixture.js';

const migration = usernameRename();

let pglite: PGlite;
beforeAll(async () => {
  pglite = new PGlite();
  await pglite.waitReady;
});
afterAll(() => pglite.close());
beforeEach(async () => {
  await pglite.exec(`DROP TABLE IF EXISTS users;
    CREATE TABLE users (id int PRIMARY KEY, user_name text, username text, email text);
    INSERT INTO users VALUES (1, 'ada', 'ada', 'a@x')`);
});

/** PGlite whose next statement matching `armed` fails once with `code`, before reaching the database. */
function failingOnce(db: PGlite) {
  let armed: { matches: (sql: string) => boolean; code: string } | undefined;
  let failures = 0;
  const query = (sql: string, params?: unknown[], options?: Record<string, unknown>) => {
    if (armed?.matches(sql)) {
      const { code } = armed;
      armed = undefined;
      failures++;
      return Promise.reject(Object.assign(new Error(`injected failure ${code}`), { code }));
    }
    return db.query(sql, params, options);
  };
  const wrapped = new Proxy(db, {
    get: (target, property) => {
      if (property === 'query') return query;
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    db: wrapped,
    arm: (matches: (sql: string) => boolean, code: string) => {
      armed = { matches, code };
    },
    failures: () => failures,
  };
}

function routing(stage: Stage) {
  const flags = createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: 100 });
  const metrics = createMemoryMetrics();
  const errors = () => metrics.snapshot().migrations[migration.name]?.errors.bySide;
  return { flags, metrics, errors };
}

/** A read fetching both sides: the router's hidden columns, a repository's two columns. */
const comparing = (sql: string) =>
  sql.includes('__flagshift_') || (sql.includes('user_name') && sql.includes('"username"'));

describe('a comparing read that succeeds on its retry without the comparison columns', () => {
  for (const stage of ['shadow', 'live'] as const) {
    const served = stage === 'shadow' ? 'old' : 'new';
    const compared = stage === 'shadow' ? 'new' : 'old';

    it(`routed SQL in ${stage}: a serialization failure is the served (${served}) side's`, async () => {
      const flaky = failingOnce(pglite);
      const { flags, metrics, errors } = routing(stage);
      const db = routePglite(flaky.db, { migrations: [migration], flags, metrics });
      flaky.arm(comparing, '40001');
      const result = await db.query('SELECT id, username FROM users WHERE id = $1', [1]);
      expect(result.rows).toEqual([{ id: 1, username: 'ada' }]);
      expect(flaky.failures()).toBe(1);
      expect(errors()?.[served]).toBe(1);
      expect(errors()?.[compared] ?? 0).toBe(0);
    });

    it(`routed SQL in ${stage}: an undefined column is the compared (${compared}) side's`, async () => {
      const flaky = failingOnce(pglite);
      const { flags, metrics, errors } = routing(stage);
      const db = routePglite(flaky.db, { migrations: [migration], flags, metrics });
      flaky.arm(comparing, '42703');
      await db.query('SELECT id, username FROM users WHERE id = $1', [1]);
      expect(flaky.failures()).toBe(1);
      expect(errors()?.[compared]).toBe(1);
      expect(errors()?.[served] ?? 0).toBe(0);
    });

    it(`repository in ${stage}: a serialization failure is the served (${served}) side's`, async () => {
      const flaky = failingOnce(pglite);
      const { flags, metrics, errors } = routing(stage);
      const repo = createRepository(migration, { driver: createPgliteDriver(flaky.db), flags, metrics });
      flaky.arm(comparing, '40001');
      expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
      expect(flaky.failures()).toBe(1);
      expect(errors()?.[served]).toBe(1);
      expect(errors()?.[compared] ?? 0).toBe(0);
    });
  }
});
