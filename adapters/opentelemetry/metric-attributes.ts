/**
 * Attribute values from metric events, each checked against its bounded set so that a
 * malformed event (from untyped code) can never open an unbounded series: what doesn't
 * fit becomes `other`.
 */
import { ErrorCode } from '../../src/errors.js';
import type { Operation } from '../../src/metrics-events.js';
import { isStage } from '../../src/stages.js';

/** Attribute value of anything outside its attribute's known set. */
export const OTHER = 'other';

const MIGRATION_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const SQLSTATE = /^[0-9A-Z]{5}$/;
const FLAGSHIFT_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
const OPERATIONS: ReadonlySet<string> = new Set<Operation>([
  'get',
  'getMany',
  'find',
  'insert',
  'update',
  'upsert',
  'delete',
]);
/** Flag keys are the user's configuration, one or two per migration; this only keeps out junk. */
const FLAG_KEY = /^[\w.:/-]{1,200}$/;

/** A migration name as `defineMigration` accepts it, else `other`. */
export function migrationValue(value: unknown): string {
  return typeof value === 'string' && MIGRATION_NAME.test(value) ? value : OTHER;
}

/** A stage name, else `other`. */
export function stageValue(value: unknown): string {
  return isStage(value) ? value : OTHER;
}

/** `old` or `new` (and `both` when allowed, for latency), else `other`. */
export function sideValue(value: unknown, allowBoth = false): string {
  return value === 'old' || value === 'new' || (allowBoth && value === 'both') ? value : OTHER;
}

/** A repository operation, else `other`. */
export function operationValue(value: unknown): string {
  return typeof value === 'string' && OPERATIONS.has(value) ? value : OTHER;
}

/** The sides a write set: `old`, `new` or `both`. */
export function sidesValue(sides: unknown): string {
  if (!Array.isArray(sides)) return OTHER;
  const old = sides.includes('old');
  const neu = sides.includes('new');
  return old && neu ? 'both' : old ? 'old' : neu ? 'new' : OTHER;
}

/** A SQLSTATE, a flagshift error code or `unknown`; anything else is `other`. */
export function errorTypeValue(value: unknown): string {
  if (typeof value !== 'string') return OTHER;
  return SQLSTATE.test(value) || FLAGSHIFT_CODES.has(value) || value === 'unknown' ? value : OTHER;
}

/** A flag key of ordinary characters and length, else `other`. */
export function flagKeyValue(value: unknown): string {
  return typeof value === 'string' && FLAG_KEY.test(value) ? value : OTHER;
}

/** `value` when it is one of `allowed`, else `other`. */
export function oneOf(value: unknown, allowed: readonly string[]): string {
  return typeof value === 'string' && allowed.includes(value) ? value : OTHER;
}
