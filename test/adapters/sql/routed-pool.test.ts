/**
 * The routed pool's connection identity, without a database: a structural pool that hands
 * out one connection, whose statements (none touching a migrated table) answer at once.
 */
import { createMemoryFlags, defineMigration, defineTable, rename } from 'flagshift';
import { type PoolClientLike, type PoolLike, routePool } from 'flagshift/sql';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { userEntity } from '../../support/fixtures.js';

const migration = defineMigration({
  name: 'users-username',
  table: defineTable({ name: 'users', key: 'id', entity: userEntity }),
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'off',
});

/** A pool of one connection that records the statements it runs. */
function onePool() {
  const statements: string[] = [];
  let releases = 0;
  const query = (textOrConfig: string | { text: string }) => {
    statements.push(typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text);
    return Promise.resolve({ rows: [{ one: 1 }], rowCount: 1, fields: [] });
  };
  const client: PoolClientLike = {
    query,
    release: () => {
      releases++;
    },
  };
  const pool: PoolLike = { query, connect: () => Promise.resolve(client), end: () => Promise.resolve() };
  return { pool, statements, releases: () => releases };
}

describe('routePool', () => {
  it('hands out one routed client per connection, however often it is checked out', async () => {
    const { pool } = onePool();
    const routed = routePool(pool, { migrations: [migration], flags: createMemoryFlags({}) });
    const first = await routed.connect();
    first.release();
    const second = await routed.connect();
    second.release();
    expect(second).toBe(first);
  });

  it("runs Kysely's onCreateConnection once per connection, not once per query", async () => {
    const { pool, statements, releases } = onePool();
    const routed = routePool(pool, { migrations: [migration], flags: createMemoryFlags({}) });
    let created = 0;
    const db = new Kysely<Record<string, never>>({
      dialect: new PostgresDialect({
        pool: routed as never,
        onCreateConnection: async () => {
          created++;
        },
      }),
    });
    for (let i = 0; i < 3; i++) await sql`SELECT 1 AS one`.execute(db);
    expect(created).toBe(1);
    expect(statements).toEqual(['SELECT 1 AS one', 'SELECT 1 AS one', 'SELECT 1 AS one']);
    expect(releases()).toBe(3);
  });
});
