/**
 * Which side a failure belongs to when a read that also fetched the other side's columns
 * (only to compare) failed, and its retry without them succeeded. The retry's success
 * proves the served side can answer, not that the comparison columns broke the first
 * attempt: a serialization failure, a deadlock, a cancelled statement or a dropped
 * connection is just as likely to clear on a retry. Only errors an expression over the
 * compared columns can raise are the compared side's; everything else stays the served
 * side's, so a transient failure never counts against the side being proven (and never
 * trips its guardrail or holds its promotion). Repositories and the SQL router both ask here.
 */
import type { Side } from '../model/index.js';

/**
 * SQLSTATE classes an expression over columns can raise: 42 (an undefined column or
 * table, a missing privilege), 22 (a value its form can't convert), 21 (a sub-query
 * returning more than one row), 0A (an unsupported feature), 2F/38/39 (a function's
 * failure).
 */
const COMPARED_COLUMN_CLASSES: ReadonlySet<string> = new Set(['42', '22', '21', '0A', '2F', '38', '39']);

/** The SQLSTATE of `error` or of the error it wraps (`code` from pg and PGlite, `sqlState` from flagshift's DriverError). */
function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== null && typeof current === 'object' && depth < 4; depth++) {
    const { code, sqlState: state } = current as { code?: unknown; sqlState?: unknown };
    if (typeof state === 'string') return state;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * The side to count `error` against: `compared` when it is an error the comparison
 * columns can cause, else `served`.
 *
 * @example
 * ```ts
 * blamedSide({ code: '42703' }, 'old', 'new'); // 'new': the new column is missing
 * blamedSide({ code: '40001' }, 'old', 'new'); // 'old': a serialization failure, retried
 * ```
 */
export function blamedSide(error: unknown, served: Side, compared: Side): Side {
  const state = sqlState(error);
  return state !== undefined && COMPARED_COLUMN_CLASSES.has(state.slice(0, 2)) ? compared : served;
}
