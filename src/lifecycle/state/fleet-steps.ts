/**
 * The fleet's step log (`<stateSchema>.fleet_steps`): per migration, the last step a fleet
 * run started on this member and how it ended, kept in the member's own state schema.
 * Whether a step is done is read off the member itself (its catalog, backfill checkpoint,
 * verifications); this table only adds what the member can't show: that a step is
 * running, or why it failed, for a status read by another process or after a crash.
 */
import { type Queryable, toDate } from '../../kernel/index.js';
import { DEFAULT_STATE_SCHEMA, existingStateTables, quoteStateSchema } from './state-schema.js';
import { createInStateSchema } from './state-tables.js';

/** The steps a fleet run takes on each member, in order. */
export const FLEET_STEPS = ['expand', 'backfill', 'verify', 'contract'] as const;

/** A step the fleet runs on each member, in this order: expand, backfill, verify, contract. */
export type FleetStep = (typeof FLEET_STEPS)[number];

/** The last step a fleet run started on a member, and how it ended. */
export interface FleetStepRecord {
  readonly step: FleetStep;
  /** `running` until the step ends; a run that crashed leaves it `running`. */
  readonly outcome: 'running' | 'done' | 'failed';
  /** The error's message when `failed`. */
  readonly error: string | undefined;
  readonly at: Date;
}

/** Records that a fleet run started, finished or failed `step` of `migration` on this member. */
export async function recordFleetStep(
  db: Queryable,
  migration: string,
  record: Omit<FleetStepRecord, 'at'>,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<void> {
  const s = quoteStateSchema(schema);
  if (!(await existingStateTables(db, schema, ['fleet_steps'])).has('fleet_steps')) {
    await createInStateSchema(
      db,
      schema,
      'flagshift.fleet-steps',
      `CREATE TABLE IF NOT EXISTS ${s}.fleet_steps (
    migration text PRIMARY KEY,
    step text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('running', 'done', 'failed')),
    error text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  );`,
    );
  }
  await db.query(
    `INSERT INTO ${s}.fleet_steps (migration, step, outcome, error) VALUES ($1, $2, $3, $4)
     ON CONFLICT (migration) DO UPDATE
       SET step = excluded.step, outcome = excluded.outcome, error = excluded.error, at = clock_timestamp()`,
    [migration, record.step, record.outcome, record.error ?? null],
  );
}

/** The last fleet step of `migration` on this member; `undefined` when no fleet run touched it. Never creates the table. */
export async function lastFleetStep(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<FleetStepRecord | undefined> {
  if (!(await existingStateTables(db, schema, ['fleet_steps'])).has('fleet_steps')) return undefined;
  const { rows } = await db.query<{
    step: FleetStep;
    outcome: FleetStepRecord['outcome'];
    error: string | null;
    at: unknown;
  }>(`SELECT step, outcome, error, at FROM ${quoteStateSchema(schema)}.fleet_steps WHERE migration = $1`, [migration]);
  const row = rows[0];
  if (row === undefined) return undefined;
  return { step: row.step, outcome: row.outcome, error: row.error ?? undefined, at: toDate(row.at) };
}
