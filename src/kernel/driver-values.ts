/**
 * Values as they cross the driver seam. Drivers differ in how they hand back what the
 * database returns (pg parses `jsonb`, `text[]` and timestamps; some setups give text), so
 * every reader of raw rows decodes through here, and the one SQL string literal the SDK
 * writes (for a `DO` block, where parameters can't go) is written here too.
 */

/** A `json`/`jsonb` value as pg returns it (parsed) or as text; text that isn't JSON comes back as it is. */
export function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** A `text[]` as pg returns it (an array) or as its text form (`{a,"b c"}`, `{}`). */
export function parseTextArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string' || value === '{}') return [];
  return value
    .slice(1, -1)
    .split(',')
    .map((part) => part.replace(/^"(.*)"$/, '$1').replace(/\\(.)/g, '$1'));
}

/** An `int[]` or `int2vector` as pg returns it (an array) or as text (`{1,2}`, `1 2`). */
export function parseIntArray(value: unknown): number[] {
  if (Array.isArray(value)) return value.map(Number);
  if (typeof value !== 'string') return [];
  return value
    .replace(/[{}]/g, '')
    .split(/[,\s]+/)
    .filter((part) => part !== '')
    .map(Number);
}

/** A timestamp as a `Date` (pg, PGlite) or as text. */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  return new Date(String(value));
}

/** A timestamp as ISO-8601 text; a value that is no timestamp comes back as its text. */
export function isoOf(value: unknown): string {
  const date = toDate(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

/** A single-quoted SQL string literal, for the few places (DO blocks, DDL defaults) parameters can't go. */
export function sqlLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
