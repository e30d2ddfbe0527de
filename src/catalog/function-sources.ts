/**
 * The installed bodies of functions, so expand replaces a sync function only when its
 * body differs and contract's rollback restores the body as it was installed.
 */
import type { Queryable } from '../kernel/index.js';
import type { FunctionSources } from './types.js';

/**
 * The source (`prosrc`, the text between the dollar quotes) of each argument-less function
 * named in `names` (SQL names, possibly qualified), or `undefined` for one that doesn't exist.
 */
export async function loadFunctionSources(db: Queryable, names: readonly string[]): Promise<FunctionSources> {
  const sources = new Map<string, string | undefined>();
  if (names.length === 0) return sources;
  const result = await db.query<{ name: string; source: string | null }>(
    `SELECT n.name, p.prosrc AS source FROM unnest($1::text[]) AS n(name)
       LEFT JOIN pg_catalog.pg_proc p ON p.oid = to_regprocedure(n.name || '()')`,
    [[...names]],
  );
  for (const row of result.rows) sources.set(row.name, row.source ?? undefined);
  return sources;
}
