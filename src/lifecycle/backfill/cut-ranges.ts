/**
 * Cuts the key space of a new backfill pass into ranges, the unit workers claim: where the
 * keys are (not where the key space is), so skewed, composite and text keys balance alike.
 */
import { loadTableSize } from '../../catalog/index.js';
import { parseJson, type Queryable } from '../../kernel/index.js';
import type { NewRange } from '../state/index.js';
import { keyFromJson, keyList, keyOrder, keyRow, keyToJson } from './key-sql.js';
import type { DataPlan } from './types.js';

/** About one range per this many rows: a range is at least a few batches of work. */
const ROWS_PER_RANGE = 1000;
/**
 * Keys sampled to cut a large table into ranges: over 1,500 per range at the default 32
 * ranges. The cut runs before the first batch, so its time is the pass's: on 300,000 rows
 * a sample of 100,000 keys took 51 ms (145 ms sorted a second time by tile), one of
 * 30,000 took 15 ms.
 */
const RANGE_SAMPLE_ROWS = 50_000;

/**
 * Takes the key bound of a new backfill pass (its largest key now), estimates its rows,
 * and cuts the keys up to it into at most `maxRanges` ranges, each from the last key of
 * the one before (`lower`, exclusive; `null` for the first) to its own `upper`. An empty
 * table has no bound and no range.
 */
export async function cutRanges(
  tx: Queryable,
  plan: DataPlan,
  maxRanges: number,
): Promise<{ upper: unknown[] | null; estimate: number; ranges: NewRange[] }> {
  const table = plan.table.quoted;
  const top = await tx.query<{ k: unknown }>(
    `SELECT ${keyToJson(plan, 't')} AS k FROM ${table} AS t ORDER BY ${keyOrder(plan, 't', 'DESC')} LIMIT 1`,
  );
  const upper = (parseJson(top.rows[0]?.k) as unknown[] | undefined) ?? null;
  if (upper === null) return { upper: null, estimate: 0, ranges: [] };
  let estimate = (await loadTableSize(tx, plan.table)).reltuples;
  // Never analyzed (-1) or small: counting is cheap enough, and makes progress exact.
  if (!(estimate >= 10_000)) {
    const counted = await tx.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${table}`);
    estimate = Number(counted.rows[0]?.n ?? 0);
  }
  const count = Math.min(maxRanges, Math.max(1, Math.ceil(estimate / ROWS_PER_RANGE)));
  if (count === 1) return { upper, estimate, ranges: rangesUpTo([], upper) };
  // Cut where the keys are, not where the key space is: ntile over the keys (a block
  // sample of them on large tables) balances skewed, composite and text keys alike. A
  // tile's last key is the one whose next key starts another tile: both windows share one
  // sort, and only the bounds are turned into JSON.
  const percent = Math.min(100, (100 * RANGE_SAMPLE_ROWS) / Math.max(estimate, 1));
  const sample = percent >= 100 ? '' : ` TABLESAMPLE SYSTEM (${percent.toFixed(6)})`;
  const cut = await tx.query<{ bound: unknown }>(
    `SELECT ${keyToJson(plan, 'y')} AS bound FROM (
       SELECT ${keyList(plan, 'x')}, x.tile, lead(x.tile) OVER (ORDER BY ${keyOrder(plan, 'x')}) AS next_tile FROM (
         SELECT ${keyList(plan, 's')}, ntile(${count}) OVER (ORDER BY ${keyOrder(plan, 's')}) AS tile
           FROM (SELECT ${keyList(plan, 't')} FROM ${table} AS t${sample}
                  WHERE ${keyRow(plan, 't')} <= ${keyFromJson(plan, '$1')}) AS s
       ) AS x
     ) AS y WHERE y.next_tile IS DISTINCT FROM y.tile ORDER BY ${keyOrder(plan, 'y')}`,
    [JSON.stringify(upper)],
  );
  const bounds = cut.rows.map((row) => parseJson(row.bound));
  // The last tile ends at (or below) the bound itself.
  bounds.pop();
  return { upper, estimate, ranges: rangesUpTo(bounds, upper) };
}

/** The ranges between consecutive `bounds`, the last ending at `upper`. */
function rangesUpTo(bounds: readonly unknown[], upper: unknown[]): NewRange[] {
  const uppers = [...bounds, upper];
  return uppers.map((bound, index) => ({ lower: index === 0 ? null : uppers[index - 1], upper: bound }));
}
