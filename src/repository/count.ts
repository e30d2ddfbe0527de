/**
 * `count`: how many entities match a filter, routed as a whole like `find`. When the query
 * compares, the same count on the other side is compared with the served one: counts that
 * differ are a mismatch of the migration, as result sets that differ are for `find`.
 */
import { type QueryResult, toDriverError } from '../kernel/index.js';
import type { Side } from '../model/index.js';
import type { Handle } from './core.js';
import { type Filters, filterConditions } from './filters.js';
import { routeQuery } from './find.js';
import { Params } from './statements.js';
import type { CallState } from './types.js';

/** The field a count mismatch reports, as `$row` and `$order` are reported for result sets. */
const COUNT_FIELD = '$count';

/** How many rows match `filters`, counted on the side the query is routed to (and compared, as `find` compares). */
export async function countRows(handle: Handle, filters: Filters, call: CallState): Promise<number> {
  const { core } = handle;
  const routed = await routeQuery(handle, { ...filters, orderBy: [] }, call);
  if (routed === undefined) return countOn(handle, filters, new Map());
  const { touched, routes, servedSides, otherSides, compare } = routed;
  const started = performance.now();
  const [served, other] = await Promise.all([
    countOn(handle, filters, servedSides),
    compare
      ? countOn(handle, filters, otherSides).catch((error: unknown) => {
          for (const p of touched) core.emitError(core.plans[p]!, routes[p]!, otherSides.get(p)!, 'find', error);
          return undefined;
        })
      : undefined,
  ]);
  const elapsed = performance.now() - started;
  for (const p of touched) {
    const plan = core.plans[p]!;
    const route = routes[p]!;
    const compared = other !== undefined && otherSides.get(p) !== servedSides.get(p);
    core.emit({
      type: 'latency',
      migration: plan.migration.name,
      side: compared ? 'both' : servedSides.get(p)!,
      operation: 'find',
      milliseconds: elapsed,
    });
    if (!compared) continue;
    const matched = served === other;
    core.emitComparison(plan, route, matched);
    if (!matched) {
      const [oldCount, newCount] = servedSides.get(p) === 'old' ? [served, other] : [other, served];
      core.mismatch(
        plan,
        route,
        'find',
        null,
        [{ field: COUNT_FIELD, kind: 'value', old: oldCount, new: newCount }],
        call.context,
      );
    }
  }
  return served;
}

/** `SELECT count(*)` of the rows matching `filters`, migrated fields filtered on `sides`. */
async function countOn(handle: Handle, filters: Filters, sides: ReadonlyMap<number, Side>): Promise<number> {
  const { core } = handle;
  const params = new Params();
  const conditions = filterConditions(core, filters, sides, params, 't');
  let sql = `SELECT count(*) AS n FROM ${core.table.table.quoted} t`;
  if (conditions.length > 0) sql += ` WHERE ${conditions.join(' AND ')}`;
  let result: QueryResult<{ n: unknown }>;
  try {
    result = await handle.db.query<{ n: unknown }>(sql, params.values);
  } catch (error) {
    throw toDriverError(error, sql);
  }
  return Number(result.rows[0]?.n ?? 0);
}
