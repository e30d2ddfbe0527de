/**
 * Names of the database objects the lifecycle creates (sync functions and triggers,
 * indexes, constraints). They are derived from the migration or column names, so expand
 * and contract find the same objects again, and they always fit PostgreSQL's 63-byte limit:
 * a name that had to be shortened or changed gets a hash suffix, so two different sources
 * never map to the same name.
 */
import { createHash } from 'node:crypto';
import { quoteIdentifier } from '../../model/index.js';

const MAX_IDENTIFIER_LENGTH = 63;

/** Eight hex digits of a SHA-256 of `text`. */
function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/**
 * An identifier built from `parts` joined by `_` with `suffix` appended: lowercase, only
 * letters, digits and `_`, at most 63 characters. When the parts had to be changed or cut
 * to fit, a hash of the original parts is added before the suffix.
 */
export function derivedIdentifier(parts: readonly string[], suffix: string): string {
  const source = parts.join('_');
  let slug = source.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (!/^[a-z_]/.test(slug)) slug = `_${slug}`;
  const tail = suffix === '' ? '' : `_${suffix}`;
  if (slug === source && slug.length + tail.length <= MAX_IDENTIFIER_LENGTH) return `${slug}${tail}`;
  const hash = `_${shortHash(source)}`;
  return `${slug.slice(0, MAX_IDENTIFIER_LENGTH - hash.length - tail.length)}${hash}${tail}`;
}

/** `"schema"."name"` or `"name"`, both parts validated. */
export function qualifiedName(schema: string | undefined, name: string): string {
  const quoted = quoteIdentifier(name);
  return schema === undefined ? quoted : `${quoteIdentifier(schema, 'schema name')}.${quoted}`;
}
