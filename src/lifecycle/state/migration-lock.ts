/**
 * The per-migration lock that serialises a change of a migration's flags with contract's
 * destructive steps: a transaction-level advisory lock keyed by the state schema and the
 * migration, so it needs no table and ends with the transaction that took it.
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
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [
    `flagshift.migration ${schema}`,
    migration,
  ]);
}
