/**
 * A migration's timeline on the dashboard: the latest entries of its event log (stage
 * changes with who made them and why, and the promotion gate's evidence or what was
 * forced past it; expand, backfill, verify, contract).
 * Only facts named here leave the server: an entry may also hold row data (a verification
 * records a mismatched row as a sample), which the page must not show unredacted.
 */
import type { Queryable } from '../../src/index.js';
import { listEvents, type RecordedEvent } from '../../src/internal.js';

/** How many of a migration's latest events the page shows. */
export const TIMELINE_EVENTS = 25;

/** What an event's details may show on the page: who, why, what moved, counts and verdicts, never row data. */
const SHOWN_DETAILS = [
  'action',
  'actor',
  'reason',
  'from',
  'to',
  'forced',
  'writePathChanged',
  'gate',
  'overridden',
  'passed',
  'checkedRows',
  'mismatchedRows',
  'missingRows',
  'pass',
  'rowsDone',
  'ranges',
  'totalEstimate',
  'backfillReset',
] as const;

/** Longest text shown from one detail; an operator's reason is a sentence, not a document. */
const MAX_TEXT = 300;

/** One entry of a migration's event log, as the page shows it. */
export interface EventView {
  readonly id: number;
  /** ISO 8601. */
  readonly at: string;
  /** `stage`, `force`, `expand`, `backfill`, `verify` or `contract`. */
  readonly kind: string;
  /** The shown details the entry has (see the list above); a stage move's `from`/`to` hold `stage` and `percent`. */
  readonly details: Readonly<Record<string, unknown>>;
}

/** The latest {@link TIMELINE_EVENTS} events of `migration`, newest first. */
export async function readTimeline(db: Queryable, migration: string, stateSchema: string): Promise<EventView[]> {
  const events = await listEvents(db, migration, stateSchema, TIMELINE_EVENTS);
  return events.reverse().map(toView);
}

function toView(event: RecordedEvent): EventView {
  const details: Record<string, unknown> = {};
  for (const key of SHOWN_DETAILS) {
    const value = event.details[key];
    if (value === undefined) continue;
    details[key] = key === 'from' || key === 'to' ? flagValues(value) : scalar(value);
  }
  return { id: event.id, at: event.at.toISOString(), kind: event.kind, details };
}

/** A stage move's `from` or `to`: its stage and percent, as stored (they may be any JSON a person wrote). */
function flagValues(value: unknown): { stage: unknown; percent: unknown } {
  const record = value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  return { stage: scalar(record['stage'] ?? null), percent: scalar(record['percent'] ?? null) };
}

/** Strings, numbers, booleans and null as they are (long text cut); anything else as short JSON text. */
function scalar(value: unknown): string | number | boolean | null {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}...` : text;
}
