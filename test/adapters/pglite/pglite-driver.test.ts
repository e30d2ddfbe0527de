import { createPgliteDriver, openPglite, type PGliteLike, type PgliteResultLike } from 'flagshift/pglite';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../../src/kernel/errors.js';

/** A PGlite stand-in answering every statement with `result`. */
function stubPglite(result: PgliteResultLike): PGliteLike {
  const db: PGliteLike = {
    query: async () => result,
    transaction: (fn) => fn(db),
  };
  return db;
}

describe('pglite driver', () => {
  it('openPglite: opens an in-memory database whose driver closes it', async () => {
    const { db, driver, close } = await openPglite();
    expect(driver.name).toBe('pglite');
    expect(driver.supportsConcurrentQueries).toBe(false);
    await driver.query('CREATE TABLE items (id int)');
    expect((await db.query('SELECT count(*)::int AS n FROM items')).rows).toEqual([{ n: 0 }]);
    expect(driver.close).toBe(close);
    await driver.close?.();
    expect(db.closed).toBe(true);
  });

  it('createPgliteDriver: never closes a database it was given', () => {
    expect(createPgliteDriver(stubPglite({ rows: [] })).close).toBeUndefined();
  });

  it('createPgliteDriver: rejects something that is not a PGlite instance', () => {
    expect(() => createPgliteDriver({ query: async () => ({ rows: [] }) } as unknown as PGliteLike)).toThrow(
      ConfigurationError,
    );
  });

  it('openPglite: an invalid option is a ConfigurationError naming it', async () => {
    await expect(openPglite({ dataDir: '' })).rejects.toThrow(/"dataDir"/);
    await expect(openPglite({ memory: true } as object)).rejects.toThrow(ConfigurationError);
  });

  it('rowCount: PGlite before 0.3 (affectedRows only) counts like node-postgres', async () => {
    const selected = createPgliteDriver(stubPglite({ rows: [{ id: 1 }, { id: 2 }], affectedRows: 0 }));
    expect((await selected.query('SELECT id FROM items')).rowCount).toBe(2);
    const updated = createPgliteDriver(stubPglite({ rows: [], affectedRows: 3 }));
    expect((await updated.query('UPDATE items SET id = id')).rowCount).toBe(3);
    const created = createPgliteDriver(stubPglite({ rows: [], affectedRows: 0, command: 'CREATE' }));
    expect((await created.query('CREATE TABLE items (id int)')).rowCount).toBeNull();
  });
});
