/**
 * How a failed batch is told apart: a timeout or deadlock (retried smaller), a lost
 * connection (retried as it was: a batch commits atomically with its range), a range lost
 * to another worker, or anything else (the backfill fails). And where a batch can't run at
 * all: inside a caller's transaction.
 */
import { ConfigurationError, type Driver } from '../../kernel/index.js';

/** A batch found its range no longer the worker's: it wrote nothing, and the worker lets the range go. */
export class LostRangeError extends Error {}

/**
 * A backfill commits each batch by itself. Inside a caller's transaction its batches would
 * be savepoints of that one transaction, holding every row they write until it ends, and
 * the mark that lets the sync triggers skip a batch's rows (a released savepoint keeps it)
 * would also skip the caller's later writes.
 */
export function refuseInsideTransaction(driver: Driver, migration: string): void {
  if (driver.inTransaction?.() === true) {
    throw new ConfigurationError(
      `backfill of migration "${migration}" refused inside a transaction: it commits each batch on its own; run it outside one`,
    );
  }
}

/** The SQLSTATEs after which a batch is retried smaller: lock and statement timeouts, deadlocks. */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set(['55P03', '57014', '40P01', '40001']);

// Connection exceptions (08xxx) and an administrator's or crash shutdown (57P01-57P03).
const CONNECTION_LOST_SQLSTATES: ReadonlySet<string> = new Set(['08000', '08003', '08006', '57P01', '57P02', '57P03']);
const CONNECTION_LOST_MESSAGE = /Connection terminated|not queryable|ECONNRESET|EPIPE|connection error/i;

/**
 * Whether `error` says the connection was lost (killed, reset, or found dead when used),
 * as opposed to the statement failing: a batch is atomic with its checkpoint, so running
 * it again on another connection is safe.
 */
export function isConnectionLost(error: unknown): boolean {
  const sqlState = sqlStateOf(error);
  if (sqlState !== undefined) return CONNECTION_LOST_SQLSTATES.has(sqlState);
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && CONNECTION_LOST_MESSAGE.test(message);
}

/** The SQLSTATE of a driver error, raw (`code`) or wrapped (`sqlState`). */
export function sqlStateOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; sqlState?: unknown } | null;
  if (typeof e?.sqlState === 'string') return e.sqlState;
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  return undefined;
}
