/**
 * Bounded label values for metrics backends, shared by the exporters (Prometheus labels,
 * OpenTelemetry attributes). Each value from a metric event is checked against its known
 * set, so a malformed event (from untyped code) can never open an unbounded series: what
 * doesn't fit becomes {@link OTHER}. The exporters choose the label names; this file only
 * decides the values.
 */

import { ErrorCode } from '../kernel/index.js';
import { isStage } from '../model/index.js';
import type { FallbackReason, Operation } from './events.js';
import { GUARDRAIL_REASONS } from './guardrail-events.js';

/** Label value of anything outside its label's known set. */
export const OTHER = 'other';

const MIGRATION_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const SQLSTATE = /^[0-9A-Z]{5}$/;
const FLAGSHIFT_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));
/** A record, not a list, so that the compiler catches an operation added to `Operation` but not here. */
const OPERATIONS: ReadonlySet<string> = new Set(
  Object.keys({
    get: true,
    getMany: true,
    find: true,
    insert: true,
    update: true,
    upsert: true,
    delete: true,
  } satisfies Record<Operation, true>),
);
/** Flag keys are the user's configuration, one or two per migration; this only keeps out junk. */
const FLAG_KEY = /^[\w.:/-]{1,200}$/;

/** A migration name as `defineMigration` accepts it, else `other`. */
export function migrationLabel(value: unknown): string {
  return typeof value === 'string' && MIGRATION_NAME.test(value) ? value : OTHER;
}

/** A stage name, else `other`. */
export function stageLabel(value: unknown): string {
  return isStage(value) ? value : OTHER;
}

/** `old` or `new` (and `both` when allowed, for latency), else `other`. */
export function sideLabel(value: unknown, allowBoth = false): string {
  return value === 'old' || value === 'new' || (allowBoth && value === 'both') ? value : OTHER;
}

/** A repository operation, else `other`. */
export function operationLabel(value: unknown): string {
  return typeof value === 'string' && OPERATIONS.has(value) ? value : OTHER;
}

/** The sides a write set: `old`, `new` or `both`. */
export function sidesLabel(sides: unknown): string {
  if (!Array.isArray(sides)) return OTHER;
  const old = sides.includes('old');
  const neu = sides.includes('new');
  return old && neu ? 'both' : old ? 'old' : neu ? 'new' : OTHER;
}

/** A SQLSTATE, a flagshift error code or `unknown`; anything else (a message, a stray string) is `other`. */
export function errorCodeLabel(value: unknown): string {
  if (typeof value !== 'string') return OTHER;
  return SQLSTATE.test(value) || FLAGSHIFT_CODES.has(value) || value === 'unknown' ? value : OTHER;
}

/** A flag key of ordinary characters and length, else `other`. */
export function flagKeyLabel(value: unknown): string {
  return typeof value === 'string' && FLAG_KEY.test(value) ? value : OTHER;
}

/** `value` when it is one of `allowed`, else `other`. */
function oneOf(value: unknown, allowed: readonly string[]): string {
  return typeof value === 'string' && allowed.includes(value) ? value : OTHER;
}

const FALLBACK_REASONS = ['error', 'timeout', 'type'] as const satisfies readonly FallbackReason[];
const FALLBACK_SOURCES = ['last-known-good', 'default'] as const;

/** A flag fallback's reason, else `other`. */
export function fallbackReasonLabel(value: unknown): string {
  return oneOf(value, FALLBACK_REASONS);
}

/** A flag fallback's source (`last-known-good` or `default`), else `other`. */
export function fallbackSourceLabel(value: unknown): string {
  return oneOf(value, FALLBACK_SOURCES);
}

/** A guardrail trip's reason, else `other`. */
export function guardrailReasonLabel(value: unknown): string {
  return oneOf(value, GUARDRAIL_REASONS);
}
