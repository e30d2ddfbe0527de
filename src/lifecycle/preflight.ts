/**
 * Pre-flight: what an operator should know before expand and backfill touch a table. How
 * many rows, how long the backfill will take (from one timed batch that is rolled back),
 * and what makes the migration dangerous right now: no usable key, long transactions or
 * locks that DDL would queue behind, a missing index that turns batches into scans.
 */
import { z } from 'zod';
import {
  hasIndexLeadingWith,
  hasUniqueIndexOn,
  loadLongTransactions,
  loadRelationLocks,
  loadTableCatalog,
  loadTableSize,
  type TableCatalog,
} from '../catalog/index.js';
import { type Driver, FlagshiftError, parseJson, parseOptions, type Queryable } from '../kernel/index.js';
import type { Migration } from '../model/index.js';
import { batchSql, inspectMigration, keyOrder, keyToJson, type MigrationInspection } from './backfill/index.js';
import { backfillMark, syncTriggerObjects, triggersToReplace } from './ddl/index.js';
import { nullableSources } from './required-columns.js';
import { forwardSql } from './sql-forms.js';
import { type LifecycleOptions, lifecycleOptionExpectations, lifecycleOptionsShape } from './state/index.js';

/** Stable codes of pre-flight findings. Match on these, never on messages. */
export const PreflightCode = {
  /** The migration's table does not exist. */
  TableMissing: 'table-missing',
  /** Columns the migration names don't exist (expected before expand). */
  ColumnsMissing: 'columns-missing',
  /** The table has no primary key. */
  NoPrimaryKey: 'no-primary-key',
  /** No primary key or unique index covers the migration's key: keyset batches can't run. */
  KeyNotUnique: 'key-not-unique',
  /** A side table has no unique index on its key: the backfill's upsert can't run. */
  SideKeyNotUnique: 'side-key-not-unique',
  /** No index leads with the key columns: every batch would scan the table. */
  KeyNotIndexed: 'key-not-indexed',
  /** A mapping has no SQL form: backfill and verification can't run in the database. */
  NoSqlForm: 'no-sql-form',
  /** A transaction has been open longer than the threshold (DDL would queue behind its locks; vacuum can't clean). */
  LongRunningTransaction: 'long-running-transaction',
  /** Another session holds or waits for a lock on the table. */
  TableLocked: 'table-locked',
  /** The table is larger than the threshold. */
  LargeTable: 'large-table',
  /** The table has no statistics (never analyzed): the row estimate is unknown. */
  NoStatistics: 'no-statistics',
  /** The backfill time was estimated from a read-only batch (the new columns don't exist yet). */
  EstimateReadOnly: 'estimate-read-only',
  /** The timed sample batch could not run (a lock or statement timeout, an error). */
  SampleBatchFailed: 'sample-batch-failed',
  /**
   * Contract will make a new column `NOT NULL` (its field is required), and its old source
   * column holds NULLs: the backfill copies them, and contract's validation fails.
   */
  NullsBlockNotNull: 'nulls-block-not-null',
  /**
   * Contract will make a new column `NOT NULL`, and its old source column is nullable:
   * no NULL there yet, but one written before contract would make it fail.
   */
  NullableSource: 'nullable-source',
  /**
   * A sync trigger was created by an earlier flagshift without the condition that skips
   * the backfill's own rows: the backfill is correct, but slower (each row it writes calls
   * the trigger's function). `expand` replaces it.
   */
  SyncTriggerWithoutSkip: 'sync-trigger-without-skip',
} as const;

/** One of {@link PreflightCode}. */
export type PreflightCode = (typeof PreflightCode)[keyof typeof PreflightCode];

/** One finding of a pre-flight check. */
export interface PreflightWarning {
  readonly code: PreflightCode;
  /** `error`: the migration can't proceed as is; `warning`: it can, at a risk; `info`: worth knowing. */
  readonly severity: 'error' | 'warning' | 'info';
  readonly message: string;
  /** The table concerned, for messages (`schema.table`). */
  readonly table?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The timed sample batch. */
export interface PreflightSampleBatch {
  /** `update`: a real batch, rolled back; `read-only`: reading and transforming only (new columns missing). */
  readonly method: 'update' | 'read-only';
  readonly rows: number;
  readonly changedRows: number;
  readonly ms: number;
}

/** What {@link preflight} returns. */
export interface PreflightReport {
  readonly migration: string;
  /** No finding of severity `error`. */
  readonly ok: boolean;
  readonly rowEstimate: number;
  /** `statistics`: `pg_class.reltuples`; `count`: counted (small or never-analyzed tables). */
  readonly rowEstimateSource: 'statistics' | 'count' | 'unknown';
  /** Size of the table with its indexes and TOAST, in bytes. */
  readonly tableBytes: number;
  readonly sampleBatch: PreflightSampleBatch | undefined;
  /** Estimated backfill duration at the sample batch's speed, without throttling. */
  readonly estimatedBackfillMs: number | undefined;
  readonly warnings: readonly PreflightWarning[];
}

/** Options of {@link preflight}. */
export interface PreflightOptions extends LifecycleOptions {
  /** Rows in the timed sample batch. @default 1000 */
  readonly sampleBatchSize?: number;
  /** Run the timed sample batch at all (it takes row locks briefly, then rolls back). @default true */
  readonly sampleBatch?: boolean;
  /** A transaction open longer than this, in seconds, is reported. @default 60 */
  readonly longTransactionSeconds?: number;
  /** A lock on the table held by a transaction open longer than this, in seconds, is reported. @default 1 */
  readonly lockHeldSeconds?: number;
  /** A table larger than this, in bytes, is reported. @default 10 GiB */
  readonly largeTableBytes?: number;
  /** Tables with fewer rows than this by the statistics are counted exactly. @default 100000 */
  readonly countBelowRows?: number;
  /** `lock_timeout` of the sample batch, in milliseconds. @default 1000 */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` of the sample batch, in milliseconds. @default 30000 */
  readonly statementTimeoutMs?: number;
}

const optionsSchema = z.strictObject({
  ...lifecycleOptionsShape,
  sampleBatchSize: z.number().int().min(1).max(1_000_000).optional(),
  sampleBatch: z.boolean().optional(),
  longTransactionSeconds: z.number().positive().optional(),
  lockHeldSeconds: z.number().min(0).optional(),
  largeTableBytes: z.number().positive().optional(),
  countBelowRows: z.number().int().min(0).optional(),
  lockTimeoutMs: z.number().int().min(1).optional(),
  statementTimeoutMs: z.number().int().min(1).optional(),
});

const EXPECTED = {
  ...lifecycleOptionExpectations,
  sampleBatchSize: 'an integer from 1 to 1000000',
  sampleBatch: 'a boolean',
  longTransactionSeconds: 'a positive number',
  lockHeldSeconds: 'a number of at least 0',
  largeTableBytes: 'a positive number',
  countBelowRows: 'an integer of at least 0',
  lockTimeoutMs: 'an integer of at least 1',
  statementTimeoutMs: 'an integer of at least 1',
};

/** Thrown to roll the sample batch back. */
class RollbackSample extends Error {
  constructor(readonly result: PreflightSampleBatch) {
    super('rollback');
  }
}

/**
 * Checks `migration`'s tables before expand and backfill. Reads the catalog and the
 * activity views, and times one backfill batch inside a transaction that is rolled back,
 * so nothing changes. Never throws for a finding; only for a database error.
 *
 * @example
 * ```ts
 * import { preflight } from 'flagshift/lifecycle';
 *
 * const report = await preflight(driver, usernameRename);
 * for (const w of report.warnings) console.log(`${w.severity} ${w.code}: ${w.message}`);
 * console.log(`about ${report.rowEstimate} rows, backfill ~${Math.round((report.estimatedBackfillMs ?? 0) / 1000)} s`);
 * ```
 */
export async function preflight(
  driver: Driver,
  migration: Migration,
  options: PreflightOptions = {},
): Promise<PreflightReport> {
  const parsed = parseOptions(`pre-flight of migration "${migration.name}"`, optionsSchema, options ?? {}, EXPECTED);
  const settings = {
    sampleBatchSize: parsed.sampleBatchSize ?? 1000,
    sampleBatch: parsed.sampleBatch ?? true,
    longTransactionSeconds: parsed.longTransactionSeconds ?? 60,
    lockHeldSeconds: parsed.lockHeldSeconds ?? 1,
    largeTableBytes: parsed.largeTableBytes ?? 10 * 1024 ** 3,
    countBelowRows: parsed.countBelowRows ?? 100_000,
    lockTimeoutMs: parsed.lockTimeoutMs ?? 1000,
    statementTimeoutMs: parsed.statementTimeoutMs ?? 30_000,
  };
  const warnings: PreflightWarning[] = [];
  let inspection: MigrationInspection;
  try {
    inspection = await inspectMigration(driver, migration);
  } catch (error) {
    if (!(error instanceof FlagshiftError)) throw error;
    // A mapping without a SQL form: the tables can still be checked, the data steps can't run.
    warnings.push({ code: PreflightCode.NoSqlForm, severity: 'error', message: error.message });
    inspection = await inspectWithoutForms(driver, migration);
  }
  const main = inspection.main;
  const display = migration.table.table.display;
  if (!main.exists) {
    const missing = inspection.problems.find((problem) => problem.code === 'table-missing');
    warnings.push({
      code: PreflightCode.TableMissing,
      severity: 'error',
      message: missing?.message ?? `table "${display}" does not exist`,
      table: display,
    });
    return report(migration, warnings, 0, 'unknown', 0, undefined, undefined);
  }
  checkKeys(migration, inspection, warnings);
  if (!warnings.some((w) => w.code === PreflightCode.NoSqlForm)) {
    await checkSyncTriggers(driver, migration, inspection, warnings);
  }
  await checkRequiredColumns(driver, migration, warnings);
  for (const problem of inspection.problems) {
    if (problem.code === 'columns-missing') {
      warnings.push({
        code: PreflightCode.ColumnsMissing,
        severity: 'info',
        message: problem.message,
        details: { columns: problem.columns ?? [] },
      });
    } else if (problem.code === 'table-missing') {
      warnings.push({ code: PreflightCode.TableMissing, severity: 'error', message: problem.message });
    }
  }
  const size = await loadTableSize(driver, main.table);
  if (size.bytes > settings.largeTableBytes) {
    warnings.push({
      code: PreflightCode.LargeTable,
      severity: 'warning',
      message: `table "${display}" is ${formatBytes(size.bytes)}: the backfill rewrites every row version (table bloat, WAL volume, replica lag); throttle it and watch replication lag`,
      table: display,
      details: { bytes: size.bytes },
    });
  }
  let rowEstimate = size.reltuples;
  let source: PreflightReport['rowEstimateSource'] = 'statistics';
  if (rowEstimate < settings.countBelowRows) {
    if (rowEstimate < 0 && size.bytes > 1024 ** 3) {
      source = 'unknown';
      rowEstimate = 0;
      warnings.push({
        code: PreflightCode.NoStatistics,
        severity: 'warning',
        message: `table "${display}" has never been analyzed; run ANALYZE ${display} for a row estimate`,
        table: display,
      });
    } else {
      const counted = await driver.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${main.table.quoted}`);
      rowEstimate = Number(counted.rows[0]?.n ?? 0);
      source = 'count';
    }
  }
  const relations = [main, ...inspection.sides].filter((table) => table.exists);
  await checkActivity(driver, relations, settings, warnings);
  let sampleBatch: PreflightSampleBatch | undefined;
  if (settings.sampleBatch && !warnings.some((w) => w.code === PreflightCode.NoSqlForm)) {
    try {
      sampleBatch = await timeSampleBatch(driver, migration, inspection, settings);
    } catch (error) {
      warnings.push({
        code: PreflightCode.SampleBatchFailed,
        severity: 'warning',
        message: `the timed sample batch failed, so there is no time estimate: ${(error as Error).message}`,
        table: display,
      });
    }
    if (sampleBatch?.method === 'read-only') {
      warnings.push({
        code: PreflightCode.EstimateReadOnly,
        severity: 'info',
        message:
          'the new columns do not exist yet, so the sample batch only read and transformed rows: the time estimate is a lower bound; run pre-flight again after expand',
      });
    }
  }
  const estimatedBackfillMs =
    sampleBatch === undefined
      ? undefined
      : sampleBatch.rows === 0
        ? 0
        : (rowEstimate / sampleBatch.rows) * sampleBatch.ms;
  return report(migration, warnings, rowEstimate, source, size.bytes, sampleBatch, estimatedBackfillMs);
}

/**
 * Sync triggers an earlier flagshift created without the condition that skips the
 * backfill's rows, where expand can replace them (PostgreSQL 14+).
 */
async function checkSyncTriggers(
  db: Queryable,
  migration: Migration,
  inspection: MigrationInspection,
  warnings: PreflightWarning[],
): Promise<void> {
  const catalogs = new Map([inspection.main, ...inspection.sides].map((catalog) => [catalog.table.quoted, catalog]));
  for (const trigger of await triggersToReplace(db, syncTriggerObjects(migration).triggers, catalogs)) {
    warnings.push({
      code: PreflightCode.SyncTriggerWithoutSkip,
      severity: 'info',
      message: `sync trigger "${trigger.name}" on ${trigger.table.display} was created without the condition that skips the backfill's own rows, so each row the backfill writes calls it; run expand to replace it`,
      table: trigger.table.display,
      details: { trigger: trigger.name },
    });
  }
}

function report(
  migration: Migration,
  warnings: PreflightWarning[],
  rowEstimate: number,
  rowEstimateSource: PreflightReport['rowEstimateSource'],
  tableBytes: number,
  sampleBatch: PreflightSampleBatch | undefined,
  estimatedBackfillMs: number | undefined,
): PreflightReport {
  return {
    migration: migration.name,
    ok: !warnings.some((warning) => warning.severity === 'error'),
    rowEstimate,
    rowEstimateSource,
    tableBytes,
    sampleBatch,
    estimatedBackfillMs,
    warnings,
  };
}

/** The tables alone, for a migration whose SQL forms can't be rendered. */
async function inspectWithoutForms(driver: Driver, migration: Migration): Promise<MigrationInspection> {
  const main = await loadTableCatalog(driver, migration.table.table);
  const sides: TableCatalog[] = [];
  for (const mapping of migration.mappings) {
    if (mapping.newTable !== undefined) sides.push(await loadTableCatalog(driver, mapping.newTable.table));
  }
  return {
    main,
    sides,
    problems: !main.exists
      ? [{ code: 'table-missing', message: `table "${migration.table.table.display}" does not exist` }]
      : [],
    plan: undefined,
  };
}

/** Findings for the nullable sources of required new columns (see {@link nullableSources}). */
async function checkRequiredColumns(driver: Driver, migration: Migration, warnings: PreflightWarning[]): Promise<void> {
  for (const source of await nullableSources(driver, migration)) {
    warnings.push({
      code: source.nulls > 0 ? PreflightCode.NullsBlockNotNull : PreflightCode.NullableSource,
      severity: source.nulls > 0 ? 'warning' : 'info',
      message: source.message,
      table: migration.table.table.display,
      details: source.nulls > 0 ? { column: source.oldColumn, nulls: source.nulls } : { column: source.oldColumn },
    });
  }
}

function checkKeys(migration: Migration, inspection: MigrationInspection, warnings: PreflightWarning[]): void {
  const main = inspection.main;
  const display = migration.table.table.display;
  const keyNames = migration.table.keyFields.map((field) => migration.table.columns[field]!.name);
  const unique = hasUniqueIndexOn(main, keyNames);
  if (![...main.indexes.values()].some((index) => index.primary)) {
    warnings.push({
      code: PreflightCode.NoPrimaryKey,
      severity: unique ? 'warning' : 'error',
      message: unique
        ? `table "${display}" has no primary key; the backfill uses the unique index on (${keyNames.join(', ')}), but logical replication and many tools need a primary key`
        : `table "${display}" has no primary key and no unique index on (${keyNames.join(', ')}): rows can't be batched by key or told apart; add a primary key first`,
      table: display,
    });
  } else if (!unique) {
    warnings.push({
      code: PreflightCode.KeyNotUnique,
      severity: 'error',
      message: `the key (${keyNames.join(', ')}) of migration "${migration.name}" is not unique in table "${display}": no primary key or unique index covers it`,
      table: display,
    });
  }
  if (!hasIndexLeadingWith(main, keyNames)) {
    warnings.push({
      code: PreflightCode.KeyNotIndexed,
      severity: 'warning',
      message: `no index of table "${display}" starts with (${keyNames.join(', ')}): every backfill batch and verification chunk would scan the table; CREATE INDEX CONCURRENTLY on it first`,
      table: display,
      details: { columns: keyNames },
    });
  }
  for (const problem of inspection.problems) {
    if (problem.code === 'side-key-not-unique') {
      warnings.push({ code: PreflightCode.SideKeyNotUnique, severity: 'error', message: problem.message });
    }
  }
}

/** Long transactions anywhere in the database, and other sessions' locks on the tables. */
async function checkActivity(
  db: Queryable,
  tables: readonly TableCatalog[],
  settings: { longTransactionSeconds: number; lockHeldSeconds: number },
  warnings: PreflightWarning[],
): Promise<void> {
  for (const row of await loadLongTransactions(db, settings.longTransactionSeconds)) {
    warnings.push({
      code: PreflightCode.LongRunningTransaction,
      severity: 'warning',
      message: `session ${row.pid}${row.applicationName ? ` (${row.applicationName})` : ''} has had a transaction open for ${Math.round(row.seconds)} s (${row.state}): DDL would queue behind its locks and block the application meanwhile, and vacuum can't clean up after the backfill`,
      details: { pid: row.pid, applicationName: row.applicationName, state: row.state, seconds: row.seconds },
    });
  }
  const oids = tables.map((table) => table.oid!);
  for (const row of await loadRelationLocks(db, oids, settings.lockHeldSeconds)) {
    const table = tables.find((t) => t.oid === row.relation)?.table.display ?? String(row.relation);
    warnings.push({
      code: PreflightCode.TableLocked,
      severity: 'warning',
      message: `session ${row.pid}${row.applicationName ? ` (${row.applicationName})` : ''} ${row.granted ? 'holds' : 'waits for'} ${row.mode} on table "${table}" in a transaction open for ${Math.round(row.seconds)} s: expand's DDL would wait behind it`,
      table,
      details: { pid: row.pid, mode: row.mode, granted: row.granted, seconds: row.seconds },
    });
  }
}

/** Times one batch from the start of the key space, then rolls it back. */
async function timeSampleBatch(
  driver: Driver,
  migration: Migration,
  inspection: MigrationInspection,
  settings: { sampleBatchSize: number; lockTimeoutMs: number; statementTimeoutMs: number },
): Promise<PreflightSampleBatch | undefined> {
  const plan = inspection.plan;
  const main = inspection.main;
  const keyNames = migration.table.keyFields.map((field) => migration.table.columns[field]!.name);
  if (!keyNames.every((name) => main.columns.has(name))) return undefined;
  try {
    await driver.transaction(async (tx) => {
      // Marked as the backfill's batches are, so the sync triggers skip its rows as they skip theirs.
      const mark = backfillMark(migration.name);
      await tx.query(
        `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true), set_config($3, $4, true)`,
        [`${settings.lockTimeoutMs}ms`, `${settings.statementTimeoutMs}ms`, mark.setting, mark.value],
      );
      const started = performance.now();
      let result: PreflightSampleBatch;
      if (plan !== undefined) {
        const top = await tx.query<{ k: unknown }>(
          `SELECT ${keyToJson(plan, 't')} AS k FROM ${plan.table.quoted} AS t ORDER BY ${keyOrder(plan, 't', 'DESC')} LIMIT 1`,
        );
        const upper = parseJson(top.rows[0]?.k);
        if (upper === undefined || upper === null) {
          result = { method: 'update', rows: 0, changedRows: 0, ms: performance.now() - started };
        } else {
          const batch = await tx.query<{ scanned: number; changed: number }>(batchSql(plan, false), [
            JSON.stringify(upper),
            settings.sampleBatchSize,
          ]);
          result = {
            method: 'update',
            rows: Number(batch.rows[0]?.scanned ?? 0),
            changedRows: Number(batch.rows[0]?.changed ?? 0),
            ms: performance.now() - started,
          };
        }
      } else {
        // The new columns don't exist: read the old ones and compute the forward forms.
        const order = keyNames.map((name) => `t."${name}"`).join(', ');
        const forwards = migration.mappings.flatMap((mapping) =>
          forwardSql(migration, mapping, (column) => `t."${column}"`),
        );
        const read = await tx.query<{ n: unknown }>(
          `SELECT count(*) AS n FROM (SELECT ${forwards.join(', ')} FROM ${main.table.quoted} AS t ORDER BY ${order} LIMIT $1) AS x`,
          [settings.sampleBatchSize],
        );
        result = {
          method: 'read-only',
          rows: Number(read.rows[0]?.n ?? 0),
          changedRows: 0,
          ms: performance.now() - started,
        };
      }
      throw new RollbackSample(result);
    });
  } catch (error) {
    if (error instanceof RollbackSample) return error.result;
    throw error;
  }
  return undefined;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value >= 10 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}
