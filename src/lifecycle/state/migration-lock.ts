/**
 * flagshift's transaction-level advisory locks, keyed by what they guard and by migration:
 * they need no table and end with the transaction that took them. The per-migration lock
 * serialises a change of a migration's flags with contract's destructive steps; the
 * backfill's pass start has one of its own.
 */
import type { Queryable } from '../../kernel/index.js';
import { DEFAULT_STATE_SCHEMA } from './state-schema.js';

/**
 * Takes `migration`'s lock for the rest of the transaction `tx` runs in, waiting (under
 * the transaction's `lock_timeout`) while another holds it. A flag change takes it before
 * it checks the schema, and contract takes it before each step it runs, so each sees what
 * the other committed: a flag change never passes its check against columns contract is
 * about to drop, and contract never drops them under a stage moved since its gate.
 */
export async function lockMigration(
  tx: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<void> {
  await xactLock(tx, `flagshift.migration ${schema}`, migration);
}

/**
 * Takes the transaction-level advisory lock of `key` in `namespace` for the rest of the
 * transaction `tx` runs in, waiting (under its `lock_timeout`) while another holds it.
 */
export async function xactLock(tx: Queryable, namespace: string, key: string): Promise<void> {
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [namespace, key]);
}
