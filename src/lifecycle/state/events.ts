/**
 * The event log (`<stateSchema>.events`): what every lifecycle step did, in order. The
 * contract gate reads it to know when the write path last changed; status reads when a
 * migration was last expanded or contracted.
 */
import { ConfigurationError, parseJson, type Queryable, toDate } from '../../kernel/index.js';
import {
  DEFAULT_STATE_SCHEMA,
  EVENT_KINDS,
  existingStateTables,
  type LifecycleEventKind,
  quoteStateSchema,
} from './state-schema.js';
import { ensureStateTables } from './state-tables.js';

/** Kinds that change how the application writes: a verification older than one of these proves nothing. */
const WRITE_PATH_KINDS = ['expand', 'contract', 'stage'] as const;

/** One entry of the event log. */
export interface RecordedEvent {
  readonly id: number;
  readonly migration: string;
  readonly kind: LifecycleEventKind;
  readonly details: Record<string, unknown>;
  readonly at: Date;
}

/** Whether the event log exists in `schema` (reads never create it). */
async function eventsExist(db: Queryable, schema: string): Promise<boolean> {
  return (await existingStateTables(db, schema, ['events'])).has('events');
}

/** Appends an entry to the event log (creating the state tables when missing). */
export async function recordEvent(
  db: Queryable,
  migration: string,
  kind: LifecycleEventKind,
  details: Record<string, unknown>,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<void> {
  if (!(EVENT_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigurationError(`event kind ${JSON.stringify(kind)} is not one of ${EVENT_KINDS.join(', ')}`);
  }
  await ensureStateTables(db, schema);
  await db.query(`INSERT INTO ${quoteStateSchema(schema)}.events (migration, kind, details) VALUES ($1, $2, $3)`, [
    migration,
    kind,
    JSON.stringify(details),
  ]);
}

/** The event log of `migration`, oldest first (at most `limit` latest entries); empty when there are no state tables. */
export async function listEvents(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
  limit = 1000,
): Promise<RecordedEvent[]> {
  if (!(await eventsExist(db, schema))) return [];
  const result = await db.query<{
    id: string;
    migration: string;
    kind: LifecycleEventKind;
    details: unknown;
    at: unknown;
  }>(
    `SELECT * FROM (SELECT id, migration, kind, details, at FROM ${quoteStateSchema(schema)}.events
       WHERE migration = $1 ORDER BY id DESC LIMIT $2) e ORDER BY id`,
    [migration, limit],
  );
  return result.rows.map((row) => ({
    id: Number(row.id),
    migration: row.migration,
    kind: row.kind,
    details: parseJson(row.details) as Record<string, unknown>,
    at: toDate(row.at),
  }));
}

/**
 * The time of `migration`'s latest event that `condition` (SQL over the events table,
 * with `$1` the migration and `params` from `$2` on) selects; `undefined` when there is
 * none or no event log.
 */
async function latestEventAt(
  db: Queryable,
  migration: string,
  schema: string,
  condition: string,
  params: readonly unknown[] = [],
): Promise<Date | undefined> {
  if (!(await eventsExist(db, schema))) return undefined;
  const { rows } = await db.query<{ at: unknown }>(
    `SELECT max(at) AS at FROM ${quoteStateSchema(schema)}.events WHERE migration = $1 AND (${condition})`,
    [migration, ...params],
  );
  const at = rows[0]?.at;
  return at === null || at === undefined ? undefined : toDate(at);
}

/**
 * When `migration`'s write path last changed (its latest expand, contract or stage event,
 * leaving out those whose details say `writePathChanged: false`), or `undefined` when it
 * never did. A verification older than this proves nothing about the data written since.
 */
export function lastWritePathChange(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<Date | undefined> {
  // An event that says it left the write path alone (a stage event for a percentage
  // change, or shadow to live: both write old and new; an expand that only replaced sync
  // triggers of an earlier flagshift) doesn't invalidate a verification.
  return latestEventAt(
    db,
    migration,
    schema,
    `kind = ANY($2::text[]) AND details->>'writePathChanged' IS DISTINCT FROM 'false'`,
    [[...WRITE_PATH_KINDS]],
  );
}

/**
 * When `migration`'s flags last changed through flagshift (its latest `stage` event), or
 * `undefined` when they never did (or there is no event log). The promotion gate counts
 * the evidence published since.
 */
export function lastStageChange(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<Date | undefined> {
  return latestEventAt(db, migration, schema, `kind = 'stage'`);
}

/** A change of a migration's flags, as its `stage` event logged it. */
export interface StageMove {
  /** The stored stage before and after (`null`: unset); not necessarily a valid stage. */
  readonly from: string | null;
  readonly to: string | null;
  /** The read percentage after (`null`: unset or not a number). */
  readonly percent: number | null;
  readonly at: Date;
}

/**
 * `migration`'s latest `stage` events, newest first (at most `limit`); empty when there
 * is no event log. The promotion gate walks them back to the position whose comparisons
 * count.
 */
export async function stageMoves(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
  limit = 1000,
): Promise<StageMove[]> {
  if (!(await eventsExist(db, schema))) return [];
  const { rows } = await db.query<{
    from_stage: string | null;
    to_stage: string | null;
    percent: unknown;
    at: unknown;
  }>(
    `SELECT details->'from'->>'stage' AS from_stage, details->'to'->>'stage' AS to_stage,
            CASE WHEN jsonb_typeof(details->'to'->'percent') = 'number' THEN (details->'to'->>'percent')::double precision END AS percent,
            at
       FROM ${quoteStateSchema(schema)}.events
      WHERE migration = $1 AND kind = 'stage' ORDER BY id DESC LIMIT $2`,
    [migration, limit],
  );
  return rows.map((row) => ({
    from: row.from_stage ?? null,
    to: row.to_stage ?? null,
    percent: row.percent === null || row.percent === undefined ? null : Number(row.percent),
    at: toDate(row.at),
  }));
}

/** The latest schema change of a migration: its last expand or contract. */
export interface SchemaChange {
  readonly kind: 'expand' | 'contract';
  readonly at: Date;
}

/** `migration`'s latest expand or contract event, or `undefined` when it has none (or there is no event log). */
export async function lastSchemaChange(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<SchemaChange | undefined> {
  if (!(await eventsExist(db, schema))) return undefined;
  const { rows } = await db.query<{ kind: 'expand' | 'contract'; at: unknown }>(
    `SELECT kind, at FROM ${quoteStateSchema(schema)}.events
      WHERE migration = $1 AND kind IN ('expand', 'contract') ORDER BY id DESC LIMIT 1`,
    [migration],
  );
  const row = rows[0];
  return row === undefined ? undefined : { kind: row.kind, at: toDate(row.at) };
}
