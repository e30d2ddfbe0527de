/**
 * Creates the lifecycle's state tables. Keeping the state next to the data (not in a
 * file or a flag service) lets every process and every operator see the same truth, and
 * lets a backfill batch and its checkpoint commit in one transaction.
 */
import { loadColumns } from '../../catalog/index.js';
import { ConfigurationError, type Queryable, sqlLiteral } from '../../kernel/index.js';
import { parseQualifiedName } from '../../model/index.js';
import { DEFAULT_STATE_SCHEMA, EVENT_KINDS, quoteStateSchema, STATE_TABLES, type StateTable } from './state-schema.js';

/** Columns that tell flagshift's state tables from an application's tables of the same name. */
const REQUIRED_COLUMNS: Record<StateTable, readonly string[]> = {
  events: ['migration', 'kind', 'details', 'at'],
  verifications: ['migration', 'passed', 'checked_rows', 'mismatched_rows', 'missing_rows'],
  backfill_checkpoints: ['migration', 'status', 'pass', 'upper_key', 'range_count'],
  backfill_ranges: ['migration', 'range_id', 'owner', 'lease_until', 'last_key'],
};

/**
 * Creates the state schema and tables when missing. Idempotent, and safe when several
 * processes call it at once: the creation runs as one statement under a transaction-level
 * advisory lock, so two callers never race on `CREATE TABLE IF NOT EXISTS` (which can
 * fail with a unique violation on the catalog when two sessions create the same table).
 */
export async function ensureStateTables(db: Queryable, schema: string = DEFAULT_STATE_SCHEMA): Promise<void> {
  const s = quoteStateSchema(schema);
  const present = await loadColumns(
    db,
    STATE_TABLES.map((table) => parseQualifiedName(`${schema}.${table}`)),
  );
  let found = 0;
  for (const table of STATE_TABLES) {
    const columns = present.get(`${s}."${table}"`);
    if (columns == null) continue;
    found++;
    // A state schema shared with the application may hold a table of the same name (an
    // `events` table is common): say so, rather than fail later on a missing column.
    const lacking = REQUIRED_COLUMNS[table].find((column) => !columns.has(column));
    if (lacking !== undefined) {
      throw new ConfigurationError(
        `option "stateSchema": table "${schema}.${table}" exists but is not flagshift's (it has no column "${lacking}"); choose a schema of flagshift's own (the default is "${DEFAULT_STATE_SCHEMA}")`,
        { path: 'stateSchema' },
      );
    }
  }
  if (found === STATE_TABLES.length) return;
  await createInStateSchema(
    db,
    schema,
    'flagshift.state-tables',
    `CREATE TABLE IF NOT EXISTS ${s}.events (
    id bigserial PRIMARY KEY,
    migration text NOT NULL,
    kind text NOT NULL CHECK (kind IN (${EVENT_KINDS.map(sqlLiteral).join(', ')})),
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE INDEX IF NOT EXISTS events_migration_at ON ${s}.events (migration, at);
  CREATE TABLE IF NOT EXISTS ${s}.verifications (
    id bigserial PRIMARY KEY,
    migration text NOT NULL,
    passed boolean NOT NULL,
    checked_rows bigint NOT NULL,
    mismatched_rows bigint NOT NULL,
    missing_rows bigint NOT NULL,
    sample double precision,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE INDEX IF NOT EXISTS verifications_migration_at ON ${s}.verifications (migration, at);
  CREATE TABLE IF NOT EXISTS ${s}.backfill_checkpoints (
    migration text PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('running', 'done')),
    pass integer NOT NULL DEFAULT 1,
    upper_key jsonb,
    range_count integer NOT NULL,
    total_estimate bigint NOT NULL,
    rows_done bigint NOT NULL DEFAULT 0,
    last_key jsonb,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
  );
  CREATE TABLE IF NOT EXISTS ${s}.backfill_ranges (
    migration text NOT NULL REFERENCES ${s}.backfill_checkpoints (migration) ON DELETE CASCADE,
    range_id integer NOT NULL,
    lower_key jsonb,
    upper_key jsonb NOT NULL,
    last_key jsonb,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'done')),
    owner text,
    lease_until timestamptz,
    rows_done bigint NOT NULL DEFAULT 0,
    rows_changed bigint NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (migration, range_id)
  );`,
  );
}

/**
 * Runs `statements` (DDL ending in `;`) after creating the state schema `schema` when
 * missing, as one statement under the transaction-level advisory lock `lock`: one DO block
 * is one transaction even on a pool, and the lock covers every CREATE in it, so callers
 * racing on `CREATE ... IF NOT EXISTS` queue instead of failing on the catalog.
 */
export async function createInStateSchema(
  db: Queryable,
  schema: string,
  lock: string,
  statements: string,
): Promise<void> {
  await db.query(`DO $flagshift$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(${sqlLiteral(lock)}), hashtext(${sqlLiteral(schema)}));
  CREATE SCHEMA IF NOT EXISTS ${quoteStateSchema(schema)};
  ${statements}
END
$flagshift$`);
}
