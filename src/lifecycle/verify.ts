/**
 * Verification: proves that a migration's new columns hold forward(old) for every row (or
 * a stated sample), before the old columns are dropped. The comparison runs in the
 * database, through the same SQL forward forms the backfill and the sync triggers use,
 * in key-ordered chunks so it never holds a long snapshot or a long lock.
 */
import { z } from 'zod';
import { type Driver, parseJson, parseOptions, toDate } from '../kernel/index.js';
import type { BoundColumn, Migration } from '../model/index.js';
import { redactValue } from '../shadow/index.js';
import {
  allTargets,
  type DataPlan,
  heldOf,
  keyFromJson,
  keyJoin,
  keyList,
  keyOrder,
  keyRow,
  keyToJson,
  loadDataPlan,
  sleep,
  staleSql,
} from './backfill/index.js';
import { comparableSql } from './sql-forms.js';
import {
  DEFAULT_STATE_SCHEMA,
  emitEvent,
  type LifecycleOptions,
  lifecycleOptionExpectations,
  lifecycleOptionsShape,
  recordEvent,
  recordVerification,
} from './state/index.js';

/** Options of {@link verify}. */
export interface VerifyOptions extends LifecycleOptions {
  /**
   * Fraction of rows to compare, in (0, 1]: each row is picked at random with this
   * probability. The report says what was sampled.
   * @default undefined: every row
   */
  readonly sample?: number;
  /** Rows per chunk (one statement each). @default 5000 */
  readonly chunkSize?: number;
  /** How many failing rows to report as examples. @default 10 */
  readonly examples?: number;
  /** Put raw keys and values in the examples instead of their {@link redactValue} digests. @default false */
  readonly rawValues?: boolean;
  /** Pause between chunks, in milliseconds, to go easy on a busy primary. @default 0 */
  readonly delayMs?: number;
  /** Stops the verification between chunks; the result is then not recorded. @default none */
  readonly signal?: AbortSignal;
  /** Called after every chunk. Exceptions are ignored. @default none */
  readonly onProgress?: (progress: VerificationProgress) => void;
}

/** Where a verification stands. */
export interface VerificationProgress {
  readonly migration: string;
  /** Rows read so far (compared or skipped by sampling). */
  readonly scannedRows: number;
  readonly checkedRows: number;
  readonly mismatchedRows: number;
  readonly missingRows: number;
}

/** One new column of a failing row. */
export interface VerificationColumn {
  /** `table.column`. */
  readonly column: string;
  /** What the new column holds (redacted unless `rawValues`). */
  readonly actual: unknown;
  /** forward(old) (redacted unless `rawValues`). */
  readonly expected: unknown;
}

/** A failing row. */
export interface VerificationExample {
  /** The row's key values in key order (each redacted unless `rawValues`). */
  readonly key: readonly unknown[];
  /** `missing`: a new column is NULL (or the side row absent) where forward(old) isn't; `mismatch`: it differs. */
  readonly kind: 'missing' | 'mismatch';
  /** The new columns that differ from forward(old). */
  readonly columns: readonly VerificationColumn[];
}

/**
 * A new column that contract makes `NOT NULL` (its entity field is required) holding NULL
 * in some rows: the contract would fail half-way on them, so verification fails first.
 */
export interface VerificationNullColumn {
  /** `table.column`. */
  readonly column: string;
  /** Rows whose value is NULL. */
  readonly rows: number;
  /** The key of the first such row, in key order (redacted unless `rawValues`). */
  readonly exampleKey: readonly unknown[];
}

/** What {@link verify} returns. */
export interface VerificationReport {
  readonly migration: string;
  /**
   * No mismatched and no missing rows among those checked, and no NULL in a new column
   * contract makes `NOT NULL` (see {@link VerificationReport.nullColumns}).
   */
  readonly passed: boolean;
  /** Rows compared. */
  readonly checkedRows: number;
  /** Rows read (equal to `checkedRows` unless sampling). */
  readonly scannedRows: number;
  /** Rows whose new columns differ from forward(old), not counting missing ones. */
  readonly mismatchedRows: number;
  /** Rows whose new columns are NULL while forward(old) isn't, or whose side row is absent. */
  readonly missingRows: number;
  /** The sampled fraction, or `undefined` when every row was compared. */
  readonly sample: number | undefined;
  /**
   * New columns that contract makes `NOT NULL` and that hold NULL in some of the rows
   * checked (counted in the same chunks, so a sample counts only its rows). A row whose old
   * side is NULL too matches forward(old), so the comparison can't see these; `SET NOT
   * NULL` would.
   */
  readonly nullColumns: readonly VerificationNullColumn[];
  /** The first failing rows, in key order. */
  readonly examples: readonly VerificationExample[];
  readonly redacted: boolean;
  /**
   * When it started reading, by the database's clock: the contract gate takes it as
   * evidence only when this is after the last write-path change.
   */
  readonly startedAt: Date;
  /** When it finished and was recorded. */
  readonly at: Date;
  readonly durationMs: number;
}

const optionsSchema = z.strictObject({
  ...lifecycleOptionsShape,
  sample: z.number().gt(0, 'must be a fraction in (0, 1]').max(1, 'must be a fraction in (0, 1]').optional(),
  chunkSize: z.number().int().min(1).max(1_000_000).optional(),
  examples: z.number().int().min(0).max(10_000).optional(),
  rawValues: z.boolean().optional(),
  delayMs: z.number().min(0).optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal').optional(),
  onProgress: z.function().optional(),
});

const EXPECTED = {
  ...lifecycleOptionExpectations,
  sample: 'a fraction in (0, 1]',
  chunkSize: 'an integer from 1 to 1000000',
  examples: 'an integer from 0 to 10000',
  rawValues: 'a boolean',
  delayMs: 'a number of at least 0',
  signal: 'an AbortSignal',
  onProgress: 'a function',
};

/**
 * Compares `migration`'s new columns with forward(old) over every row (or a sample), in
 * the database, records the result for the contract gate (and a `verify` event), and
 * returns counts and the first failing rows. Throws only when it can't run (columns
 * missing, cancelled, a database error); a failed comparison is `passed: false`.
 *
 * @example
 * ```ts
 * import { verify } from 'flagshift/lifecycle';
 *
 * const report = await verify(driver, usernameRename);
 * if (!report.passed) console.error(report.mismatchedRows, report.missingRows, report.examples);
 * ```
 */
export async function verify(
  driver: Driver,
  migration: Migration,
  options: VerifyOptions = {},
): Promise<VerificationReport> {
  const parsed = parseOptions(`verification of migration "${migration.name}"`, optionsSchema, options ?? {}, EXPECTED);
  const chunkSize = parsed.chunkSize ?? 5000;
  const exampleLimit = parsed.examples ?? 10;
  const rawValues = parsed.rawValues ?? false;
  const sample = parsed.sample === 1 ? undefined : parsed.sample;
  const schema = options.stateSchema ?? DEFAULT_STATE_SCHEMA;
  const started = performance.now();
  const plan = await loadDataPlan(driver, migration);
  const targets = allTargets(plan);
  const required = requiredTargets(migration, targets);
  const statement = chunkSql(plan, sample !== undefined, required);
  const nulls = required.map(() => ({ rows: 0, key: undefined as unknown[] | undefined }));
  let cursor: unknown[] | null = null;
  let scannedRows = 0;
  let checkedRows = 0;
  let mismatchedRows = 0;
  let missingRows = 0;
  const examples: VerificationExample[] = [];
  const redact = (value: unknown) => (rawValues ? value : redactValue(value));
  // By the database's clock, which stamps the events it is compared with: a write-path
  // change after this may have touched rows the scan had already passed.
  const startedAt = toDate((await driver.query<{ now: unknown }>('SELECT clock_timestamp() AS now')).rows[0]?.now);
  while (true) {
    if (options.signal?.aborted) {
      throw options.signal.reason instanceof Error
        ? options.signal.reason
        : new Error(`verification of migration "${migration.name}" was cancelled`);
    }
    const params: unknown[] = [chunkSize, Math.max(0, exampleLimit - examples.length)];
    if (sample !== undefined) params.push(sample);
    if (cursor !== null) params.push(JSON.stringify(cursor));
    const result = await driver.query<{
      scanned: number;
      checked: number;
      missing: number;
      mismatched: number;
      last_key: unknown;
      examples: unknown;
      nulls: unknown;
    }>(cursor === null ? statement.first : statement.next, params);
    const row = result.rows[0]!;
    const chunkNulls = (parseJson(row.nulls) as { rows: number; key: unknown[] | null }[] | null) ?? [];
    for (const [k, found] of chunkNulls.entries()) {
      nulls[k]!.rows += Number(found.rows);
      if (nulls[k]!.key === undefined && found.key !== null) nulls[k]!.key = found.key;
    }
    scannedRows += Number(row.scanned);
    checkedRows += Number(row.checked);
    missingRows += Number(row.missing);
    mismatchedRows += Number(row.mismatched);
    const found = (parseJson(row.examples) as RawExample[] | null) ?? [];
    for (const example of found) {
      examples.push({
        key: example.key.map(redact),
        kind: example.missing ? 'missing' : 'mismatch',
        columns: example.columns
          .map((value, index) => ({ value, target: targets[index]! }))
          .filter(({ value }) => value.differs)
          .map(({ value, target }) => ({
            column: `${target.table.display}.${target.target.column.name}`,
            actual: redact(value.actual),
            expected: redact(value.expected),
          })),
      });
    }
    const progress: VerificationProgress = {
      migration: migration.name,
      scannedRows,
      checkedRows,
      mismatchedRows,
      missingRows,
    };
    try {
      options.onProgress?.(progress);
    } catch {
      // A broken progress display must not stop the verification.
    }
    if (Number(row.scanned) < chunkSize) break;
    cursor = parseJson(row.last_key) as unknown[];
    await sleep(parsed.delayMs ?? 0, options.signal);
  }
  const nullColumns: VerificationNullColumn[] = [];
  for (const [k, found] of nulls.entries()) {
    if (found.rows === 0) continue;
    const target = targets[required[k]!]!;
    nullColumns.push({
      column: `${target.table.display}.${target.target.column.name}`,
      rows: found.rows,
      exampleKey: (found.key ?? []).map(redact),
    });
  }
  const passed = mismatchedRows === 0 && missingRows === 0 && nullColumns.length === 0;
  const durationMs = performance.now() - started;
  const details = {
    scannedRows,
    sample: sample ?? null,
    examples: examples.length,
    // Only digests go to the state tables, whatever `rawValues` says: they outlive the run.
    firstKeys: examples.slice(0, 3).map((example) => (rawValues ? example.key.map(redactValue) : example.key)),
    nullColumns: nullColumns.map(({ column, rows }) => ({ column, rows })),
    durationMs: Math.round(durationMs),
  };
  const at = await recordVerification(
    driver,
    migration.name,
    { passed, startedAt, checkedRows, mismatchedRows, missingRows, sample, details },
    schema,
  );
  await recordEvent(
    driver,
    migration.name,
    'verify',
    { passed, checkedRows, mismatchedRows, missingRows, sample: sample ?? null },
    schema,
  );
  emitEvent(options, {
    type: passed ? 'verify-passed' : 'verify-failed',
    migration: migration.name,
    message: passed
      ? `verified ${checkedRows} rows${sample === undefined ? '' : ` (sample ${sample})`}: no mismatches`
      : `verification failed: ${mismatchedRows} mismatched and ${missingRows} missing of ${checkedRows} rows${nullColumns.map(({ column, rows }) => `; ${rows} NULL in ${column}, which contract makes NOT NULL`).join('')}`,
    checkedRows,
    mismatchedRows,
    missingRows,
  });
  return {
    migration: migration.name,
    passed,
    checkedRows,
    scannedRows,
    mismatchedRows,
    missingRows,
    sample,
    nullColumns,
    examples,
    redacted: !rawValues,
    startedAt,
    at,
    durationMs,
  };
}

/**
 * Indexes in `targets` of the new columns contract makes `NOT NULL` (as `planContract`
 * decides: the entity field is neither optional nor nullable).
 */
function requiredTargets(migration: Migration, targets: ReturnType<typeof allTargets>): number[] {
  const shape = migration.table.entity.shape as Record<string, z.ZodType>;
  const required = new Set<BoundColumn>();
  for (const mapping of migration.mappings) {
    for (const [index, column] of mapping.newColumns.entries()) {
      const field = shape[mapping.fields[index]!]!;
      if (!field.isOptional() && !field.isNullable()) required.add(column);
    }
  }
  const indexes: number[] = [];
  for (const [index, { target }] of targets.entries()) if (required.has(target.column)) indexes.push(index);
  return indexes;
}

interface RawExample {
  key: unknown[];
  missing: boolean;
  columns: { actual: unknown; expected: unknown; differs: boolean }[];
}

/**
 * The statement of one chunk (`first` without a cursor, `next` with one). Parameters:
 * `$1` chunk size, `$2` examples wanted, then the sample fraction when sampling, then the
 * cursor (exclusive). Keys are read first (an index-only walk); only sampled rows are
 * fetched and compared.
 */
export function chunkSql(
  plan: DataPlan,
  sampling: boolean,
  required: readonly number[] = [],
): { first: string; next: string } {
  const table = plan.table.quoted;
  const targets = allTargets(plan);
  const joins = plan.sides
    .map(
      (side, index) =>
        `LEFT JOIN ${side.table.quoted} AS s${index} ON ${keyJoin(plan, 't', `s${index}`, side.keyColumns)}`,
    )
    .join('\n');
  const aliasOf = (index: number) => {
    const side = targets[index]!.side;
    return side === undefined ? 't' : `s${plan.sides.indexOf(side)}`;
  };
  const actual = (index: number) => `${aliasOf(index)}.${targets[index]!.target.column.quoted}`;
  const expected = (index: number) => targets[index]!.target.forward('t');
  // A new side that stands as written (SameRowTarget.held) is neither missing nor mismatched.
  const standing = (index: number) => {
    const held = heldOf(targets[index]!.target);
    return held === undefined ? '' : ` AND NOT ${held('t')}`;
  };
  const missingTerms = [
    ...targets.map((_, index) => `(${actual(index)} IS NULL AND ${expected(index)} IS NOT NULL${standing(index)})`),
    ...plan.sides.map((side, index) => `s${index}.${side.keyColumns[0]!.quoted} IS NULL`),
  ];
  const columns = targets
    .map(
      (_, index) =>
        `jsonb_build_object('actual', to_jsonb(${actual(index)}), 'expected', to_jsonb(${expected(index)}), 'differs', ${comparableSql(actual(index), targets[index]!.target.type)} IS DISTINCT FROM ${comparableSql(expected(index), targets[index]!.target.type)})`,
    )
    .join(', ');
  // NULL in a column contract makes NOT NULL (a side column only where the side row exists:
  // an absent one is missing already), counted with the first key, per required target.
  const nullFlags = required.map((index, k) => {
    const side = targets[index]!.side;
    const present =
      side === undefined ? '' : ` AND s${plan.sides.indexOf(side)}.${side.keyColumns[0]!.quoted} IS NOT NULL`;
    return `,\n         (${actual(index)} IS NULL${present}) AS null_${k}`;
  });
  const jsonKey = (alias: string) =>
    `jsonb_build_array(${plan.key.map((column) => `to_jsonb(${alias}.${column.quoted})`).join(', ')})`;
  const nulls =
    required.length === 0
      ? 'NULL::jsonb'
      : `jsonb_build_array(${required
          .map(
            (_, k) =>
              `jsonb_build_object('rows', (SELECT count(*) FROM judged AS j WHERE j.null_${k}), 'key', (SELECT ${jsonKey('j')} FROM judged AS j WHERE j.null_${k} ORDER BY ${keyOrder(plan, 'j')} LIMIT 1))`,
          )
          .join(', ')})`;
  const build = (hasCursor: boolean) => {
    const sampleParam = '$3';
    const cursorParam = sampling ? '$4' : '$3';
    // Only flags are computed per row; the JSON of an example is built for the few
    // failing rows reported, so a clean chunk costs a join and a comparison per row.
    return `WITH keys AS MATERIALIZED (
  SELECT ${keyList(plan, 't')} FROM ${table} AS t
  ${hasCursor ? `WHERE ${keyRow(plan, 't')} > ${keyFromJson(plan, cursorParam)}` : ''}
  ORDER BY ${keyOrder(plan, 't')} LIMIT $1
), picked AS MATERIALIZED (
  SELECT ${keyList(plan, 'k')} FROM keys AS k${sampling ? ` WHERE random() < ${sampleParam}::float8` : ''}
), judged AS MATERIALIZED (
  SELECT ${keyList(plan, 't')},
         (${missingTerms.join(' OR ')}) AS missing,
         ${staleSql(
           targets.map(({ target }, index) => ({ target, actual: actual(index) })),
           't',
         )} AS mismatched${nullFlags.join('')}
    FROM picked AS p JOIN ${table} AS t ON ${keyJoin(plan, 't', 'p')}
    ${joins}
), totals AS (
  SELECT count(*)::int AS checked, count(*) FILTER (WHERE missing)::int AS missing,
         count(*) FILTER (WHERE mismatched AND NOT missing)::int AS mismatched
    FROM judged
)
SELECT (SELECT count(*) FROM keys)::int AS scanned,
       (SELECT ${keyToJson(plan, 'k')} FROM keys AS k ORDER BY ${keyOrder(plan, 'k', 'DESC')} LIMIT 1) AS last_key,
       totals.checked, totals.missing, totals.mismatched,
       (SELECT jsonb_agg(jsonb_build_object(
                 'key', jsonb_build_array(${plan.key.map((column) => `to_jsonb(t.${column.quoted})`).join(', ')}),
                 'missing', e.missing, 'columns', jsonb_build_array(${columns}))
               ORDER BY ${keyOrder(plan, 'e')})
          FROM (SELECT * FROM judged AS j WHERE j.missing OR j.mismatched ORDER BY ${keyOrder(plan, 'j')} LIMIT $2) AS e
          JOIN ${table} AS t ON ${keyJoin(plan, 't', 'e')}
          ${joins}) AS examples,
       ${nulls} AS nulls
  FROM totals`;
  };
  return { first: build(false), next: build(true) };
}
