import { createPgliteDriver, openPglite, type PGliteLike, type PgliteResultLike } from 'flagshift/pglite';
import { describe, expect, it, vi } from 'vitest';
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

  it('asyncHooksOf: the builtin where the runtime gives it, imported on a Node without getBuiltinModule, none in a browser', async () => {
    const { asyncHooksOf } = await import('../../../adapters/pglite/pglite-driver.js');
    const builtin = { AsyncLocalStorage: class {} } as never;
    expect(await asyncHooksOf({ getBuiltinModule: () => builtin, versions: { node: '22.12.0' } })).toBe(builtin);
    // Node 20.0 to 20.15.
    const imported = await asyncHooksOf({ versions: { node: '20.15.0' } });
    expect(typeof imported?.AsyncLocalStorage).toBe('function');
    expect(await asyncHooksOf(undefined)).toBeUndefined();
    expect(await asyncHooksOf({})).toBeUndefined();
  });

  it('on a Node without process.getBuiltinModule, a statement through the driver inside a transaction joins it', async () => {
    const saved = Object.getOwnPropertyDescriptor(process, 'getBuiltinModule');
    // As on Node before 20.16: the adapter module is evaluated afresh without it.
    delete (process as { getBuiltinModule?: unknown }).getBuiltinModule;
    vi.resetModules();
    try {
      const { createPgliteDriver: create } = await import('../../../adapters/pglite/pglite-driver.js');
      const { PGlite } = await import('@electric-sql/pglite');
      const db = new PGlite();
      try {
        const driver = create(db);
        expect(driver.inTransaction()).toBe(false);
        const counted = driver.transaction(async (tx) => {
          await tx.query('CREATE TABLE items (id int)');
          await tx.query('INSERT INTO items VALUES ($1)', [1]);
          return (await driver.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows;
        });
        let timer: NodeJS.Timeout | undefined;
        const stuck = new Promise((resolve) => {
          timer = setTimeout(() => resolve('waited for the transaction that holds PGlite'), 5_000);
        });
        expect(await Promise.race([counted, stuck]).finally(() => clearTimeout(timer))).toEqual([{ n: 1 }]);
      } finally {
        await db.close();
      }
    } finally {
      if (saved !== undefined) Object.defineProperty(process, 'getBuiltinModule', saved);
      vi.resetModules();
    }
  });
});
