/**
 * Whether a statement survives being printed: the router runs the text `pgsql-deparser`
 * prints from the rewritten parse tree, so a construct the printer drops or changes
 * (`FETCH FIRST n ROWS WITH TIES` printed as `LIMIT n`, `GROUP BY DISTINCT` as `GROUP
 * BY`, `INTO TEMP` as a permanent table) would change what the statement does. Checked
 * once per statement text that is rewritten: the original tree is printed, parsed again
 * and compared with itself, positions aside.
 */
import type { SqlNode, SqlParser } from './parser.js';

/** Constructs known to be lost, by the field where the reparsed tree differs. */
const KNOWN: Readonly<Record<string, string>> = {
  limitOption: 'FETCH FIRST ... WITH TIES',
  groupDistinct: 'GROUP BY DISTINCT',
  relpersistence: 'a TEMP or UNLOGGED table',
  XmlExpr: 'an XML expression',
  lateral: 'LATERAL',
};

/**
 * `undefined` when `statement` prints as text that parses back to the same tree;
 * otherwise the construct that doesn't, for a refusal.
 */
export function lostInPrinting(parser: SqlParser, statement: SqlNode): string | undefined {
  let reparsed: SqlNode | undefined;
  try {
    reparsed = parser.parse(parser.deparse(statement)).stmts?.[0]?.stmt;
  } catch (error) {
    const unknown = /node type: (\w+)/.exec(String((error as Error | null)?.message))?.[1];
    return `${unknown === undefined ? 'a construct' : `the construct ${unknown}`}, which pgsql-deparser can't print`;
  }
  const path: string[] = [];
  if (reparsed !== undefined && same(statement, reparsed, path)) return undefined;
  const known = [...path].reverse().find((step) => KNOWN[step] !== undefined);
  return `${known === undefined ? 'a construct' : KNOWN[known]}, which pgsql-deparser doesn't print back as written`;
}

/**
 * Fields that say where in the text a node was (`location`, `name_location`, an `IN`
 * list's `rexpr_list_start` and `_end`, an array's `list_start`, `stmt_len`): they differ
 * whenever the printed text is spaced or quoted otherwise, which changes nothing.
 */
const POSITION = /(^|_)location$|_start$|_end$|^stmt_len$/;

/** Deep equality ignoring positions ({@link POSITION}); on a difference, `path` holds the keys down to it. */
function same(a: unknown, b: unknown, path: string[]): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    if (a.length !== other.length) return false;
    for (let i = 0; i < a.length; i++) if (!same(a[i], other[i], path)) return false;
    return true;
  }
  const left = a as SqlNode;
  const right = b as SqlNode;
  for (const key in left) {
    if (POSITION.test(key)) continue;
    path.push(key);
    if (!(key in right) || !same(left[key], right[key], path)) return false;
    path.pop();
  }
  for (const key in right) {
    if (!POSITION.test(key) && !(key in left)) {
      path.push(key);
      return false;
    }
  }
  return true;
}
