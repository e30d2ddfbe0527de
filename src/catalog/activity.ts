/**
 * What other sessions are doing, from the statistics and lock views: long transactions
 * that DDL would queue behind, and locks on the tables a migration touches. Read like the
 * rest of the catalog, so pre-flight gets typed rows and no SQL of its own.
 */
import type { Queryable } from '../kernel/index.js';

/** A session of this database with a transaction open. */
export interface OpenTransaction {
  readonly pid: number;
  readonly applicationName: string;
  /** `pg_stat_activity.state`: `active`, `idle in transaction`, ... */
  readonly state: string;
  /** How long its transaction has been open, in seconds. */
  readonly seconds: number;
}

/** A lock another session holds or waits for on a relation. */
export interface RelationLock {
  readonly pid: number;
  /** The relation's oid. */
  readonly relation: number;
  readonly mode: string;
  readonly granted: boolean;
  readonly applicationName: string;
  /** How long the locking session's transaction has been open, in seconds. */
  readonly seconds: number;
}

/** Other sessions of this database whose transaction has been open longer than `seconds`, oldest first. */
export async function loadLongTransactions(db: Queryable, seconds: number): Promise<OpenTransaction[]> {
  const { rows } = await db.query<{ pid: unknown; application_name: string; state: string; age: unknown }>(
    `SELECT pid, application_name, state, extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age
       FROM pg_catalog.pg_stat_activity
      WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()
        AND clock_timestamp() - xact_start > $1::float8 * interval '1 second'
      ORDER BY xact_start`,
    [seconds],
  );
  return rows.map((row) => ({
    pid: Number(row.pid),
    applicationName: row.application_name,
    state: row.state,
    seconds: Number(row.age),
  }));
}

/**
 * Other sessions' locks on the relations `oids`: every lock waited for, and those held by
 * a transaction open longer than `heldSeconds`. Ordered by session and mode.
 */
export async function loadRelationLocks(
  db: Queryable,
  oids: readonly number[],
  heldSeconds: number,
): Promise<RelationLock[]> {
  const { rows } = await db.query<{
    pid: unknown;
    relation: unknown;
    mode: string;
    granted: boolean;
    application_name: string;
    age: unknown;
  }>(
    `SELECT l.pid, l.relation::oid::int8 AS relation, l.mode, l.granted, a.application_name,
            extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS age
       FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
        AND l.relation = ANY($1::oid[]) AND l.pid <> pg_backend_pid()
        AND (NOT l.granted OR clock_timestamp() - a.xact_start > $2::float8 * interval '1 second')
      ORDER BY l.pid, l.mode`,
    [[...oids], heldSeconds],
  );
  return rows.map((row) => ({
    pid: Number(row.pid),
    relation: Number(row.relation),
    mode: row.mode,
    granted: row.granted,
    applicationName: row.application_name,
    seconds: Number(row.age),
  }));
}
