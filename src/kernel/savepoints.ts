/**
 * Nested transactions for drivers that can't nest by themselves: a savepoint on the
 * transaction's connection, released on success and rolled back to on failure. The pg
 * and PGlite drivers nest natively (see `NestingQueryable`); any other driver's
 * transactions nest through here.
 */
import type { Queryable } from './driver.js';

/** Savepoints opened here, for unique names. */
let savepoints = 0;

/**
 * The nested transactions running on each level of a transaction (the `Queryable` its
 * handles use), one at a time: releasing or rolling back one savepoint would end a
 * sibling's opened after it.
 */
const levelQueues = new WeakMap<Queryable, Promise<unknown>>();

/**
 * Runs `body` under a savepoint of the transaction `db` is a level of: rolled back to it
 * when `body` throws. `body` gets the new level, on which its own nested transactions
 * queue; a nested body must use its own handle, as one of an outer level would wait for it.
 */
export function underSavepoint<T>(db: Queryable, body: (level: Queryable) => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    const name = `flagshift_nested_${++savepoints}`;
    await db.query(`SAVEPOINT ${name}`);
    const level: Queryable = { query: (sql, params) => db.query(sql, params) };
    let value: T;
    try {
      value = await body(level);
    } catch (error) {
      // A failed rollback leaves the outer transaction aborted: it fails loudly there.
      await db.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
      throw error;
    }
    await db.query(`RELEASE SAVEPOINT ${name}`);
    return value;
  };
  const previous = levelQueues.get(db) ?? Promise.resolve();
  const result = previous.then(run, run);
  levelQueues.set(
    db,
    result.catch(() => undefined),
  );
  return result;
}
