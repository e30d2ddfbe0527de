/**
 * One backfill batch as it goes to the server: the lease's renewal, the batch's statement
 * and the range's checkpoint in one pipeline (one round trip and one transaction where the
 * driver can), and what the answers say about the range.
 */
import { type Driver, parseJson, runPipeline } from '../../kernel/index.js';
import { backfillMark } from '../ddl/index.js';
import { leasedRangeOf, leaseRenewalStatement, rangeDoneStatement } from '../state/index.js';
import type { BackfillSettings } from './backfill-options.js';
import { type BatchAt, type BatchStatements, batchStatement } from './batch-sql.js';

/**
 * What became of a batch: `lost` (the range is no longer the worker's, and nothing was
 * written), `moved` (the range went on past `cursor` without the worker seeing it, a batch
 * that committed as its answer was lost: nothing was written), or `ran` with its counts,
 * the last key it scanned and the rows the pass had done before it.
 */
export type BatchOutcome =
  | { readonly kind: 'lost' }
  | { readonly kind: 'moved'; readonly cursor: unknown[] | null }
  | {
      readonly kind: 'ran';
      readonly scanned: number;
      readonly changed: number;
      readonly lastKey: unknown[] | null;
      readonly rowsBefore: number;
    };

/**
 * Sends one batch. The lease's renewal proves the range is still the worker's, locks its
 * row, sets the batch's timeouts and marks the transaction so the sync triggers skip its
 * writes; the batch fills the next keys and advances the range's last key in one
 * statement, writing only while the range is as the worker left it; the checkpoint is
 * brought up to date if the batch finished the range. Sent together, the rows the batch
 * locks are released when it commits on the server, not a round trip later.
 */
export async function sendBatch(
  driver: Driver,
  schema: string,
  statements: BatchStatements,
  at: BatchAt,
  settings: Pick<BackfillSettings, 'leaseMs' | 'lockTimeoutMs' | 'statementTimeoutMs'>,
): Promise<BatchOutcome> {
  const [renewed, filled] = await runPipeline(driver, [
    leaseRenewalStatement(schema, {
      migration: at.migration,
      rangeId: at.rangeId,
      workerId: at.workerId,
      leaseMs: settings.leaseMs,
      lockTimeoutMs: settings.lockTimeoutMs,
      statementTimeoutMs: settings.statementTimeoutMs,
      mark: backfillMark(at.migration),
    }),
    batchStatement(statements, at),
    rangeDoneStatement(schema, at.migration, at.rangeId, at.workerId),
  ]);
  const range = leasedRangeOf(renewed!);
  if (range === undefined) return { kind: 'lost' };
  if (JSON.stringify(range.cursor) !== JSON.stringify(at.cursor)) return { kind: 'moved', cursor: range.cursor };
  const row = filled!.rows[0] as { scanned: unknown; changed: unknown; last_key: unknown; rows_before: unknown };
  // The statement's own check of the range refused it (no progress recorded): whatever
  // the renewal said, the range is not the worker's to go on with.
  if (row.rows_before === null) return { kind: 'lost' };
  return {
    kind: 'ran',
    scanned: Number(row.scanned),
    changed: Number(row.changed),
    lastKey: row.last_key === null ? null : (parseJson(row.last_key) as unknown[]),
    // Read before this statement's own change.
    rowsBefore: Number(row.rows_before),
  };
}
