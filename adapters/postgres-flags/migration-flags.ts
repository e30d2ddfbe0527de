/**
 * Writing and reading flags in the PostgreSQL flags table: any flag, and a migration's
 * stage and read-percentage pair, with a kill switch. Every write notifies the providers
 * of every process in the same transaction, and a migration's changes are logged in
 * flagshift's lifecycle event log, which the contract gate reads.
 */
import { z } from 'zod';
import {
  type Driver,
  isStage,
  KILL_SWITCH,
  type Migration,
  type Queryable,
  STAGE_BEHAVIOUR,
  STAGES,
  type Stage,
  StageTransitionError,
  ValidationError,
} from '../../src/index.js';
import { resolveGate } from '../../src/internal.js';
import {
  checkPromotion,
  describeMove,
  type FlagPosition,
  type PromotionCheck,
  type PromotionGateOptions,
  PromotionRefusedError,
  recordEvent,
} from '../../src/lifecycle/index.js';
import {
  checkFlagKey,
  checkFlagValue,
  ensureFlagTable,
  type FlagChange,
  type FlagRecord,
  type FlagTable,
  type FlagTableOptions,
  type FlagValue,
  flagTableExists,
  readFlags,
  readFlagTable,
  resolveFlagTable,
  writeFlags,
} from './flag-table.js';

/** What the flag helpers run on: a flagshift driver (`createPgDriver(pool)`, a PGlite driver). */
export type FlagStoreDb = Pick<Driver, 'query' | 'transaction'>;

/** Options of the write helpers. */
export interface FlagWriteOptions extends FlagTableOptions {
  /**
   * Who makes the change: stored in the table's `updated_by` and in the event log.
   * @default the database user (`current_user`)
   */
  readonly actor?: string;
  /**
   * Why, recorded in the event log with the change.
   * @default undefined
   */
  readonly reason?: string;
  /**
   * Schema of flagshift's lifecycle state tables, where a migration's flag changes are
   * logged as `stage` events.
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
}

/** Options of {@link setMigrationFlags}. */
export interface SetMigrationFlagsOptions extends FlagWriteOptions {
  /**
   * Makes a change the checks refuse: a move the promotion gate holds for lack of
   * evidence, a stage the schema can't serve yet, leaving `complete`. The override is
   * logged in the event log with what it overrode, `actor` and `reason`.
   * @default false
   */
  readonly force?: boolean;
  /**
   * What a move that serves more new data needs from the fleet's published metrics (when
   * the target is a migration from `defineMigration`).
   * @default {} (every default of `PromotionGateOptions`)
   */
  readonly gate?: PromotionGateOptions;
}

/**
 * The flags of one migration: a migration from `defineMigration`, or just its flag keys.
 * Only a migration's changes are checked against its schema and the promotion gate.
 */
export interface MigrationFlagTarget {
  /** The migration's name; without it, changes are not written to the event log. */
  readonly name?: string;
  readonly stageFlagKey: string;
  readonly percentFlagKey: string;
  /** The stage processes use while the stage flag is unset. @default unknown */
  readonly defaultStage?: Stage;
  /** The read percentage processes use while the percent flag is unset. @default 0 */
  readonly defaultPercent?: number;
}

/** A change to a migration's flags; give at least one. */
export interface MigrationFlagChange {
  /** One of the six stages. */
  readonly stage?: Stage;
  /** Share of entities read from new in `live`: 0 to 100, fractions allowed. */
  readonly percent?: number;
}

/** A migration's flags as stored. */
export interface MigrationFlagState {
  readonly stageFlagKey: string;
  readonly percentFlagKey: string;
  /** The stored stage; `undefined` when the flag is unset or holds something else. */
  readonly stage: Stage | undefined;
  /** The stored percentage; `undefined` when the flag is unset or not a number in 0..100. */
  readonly percent: number | undefined;
  /** The stored values as they are (`undefined` when unset), to show what is wrong with a bad one. */
  readonly raw: { readonly stage: FlagValue | undefined; readonly percent: FlagValue | undefined };
  /** When either flag last changed, and by whom; `undefined` when neither is set. */
  readonly updatedAt: Date | undefined;
  readonly updatedBy: string | null | undefined;
}

/** What {@link changeMigrationFlags} did. */
export interface MigrationFlagsChanged {
  readonly before: MigrationFlagState;
  readonly after: MigrationFlagState;
  /**
   * What the promotion checks found (for a migration from `defineMigration`); with
   * `force`, its `problems` are what was overridden.
   */
  readonly check: PromotionCheck | undefined;
}

/** What {@link killMigration} did. */
export interface KillResult {
  readonly before: MigrationFlagState;
  readonly after: MigrationFlagState;
  /** Whether anything had to change (a migration already reading old only is left alone). */
  readonly changed: boolean;
}

const changeSchema = z.strictObject({
  stage: z.enum(STAGES, `must be one of ${STAGES.join(', ')}`).optional(),
  percent: z
    .number('must be a number from 0 to 100')
    .refine(Number.isFinite, 'must be a number from 0 to 100')
    .min(0, 'must be a number from 0 to 100')
    .max(100, 'must be a number from 0 to 100')
    .optional(),
});

const targetSchema = z.object({
  name: z.string().min(1).optional(),
  stageFlagKey: z.string().min(1),
  percentFlagKey: z.string().min(1),
  defaultStage: z.enum(STAGES).optional(),
  defaultPercent: z.number().min(0).max(100).optional(),
});

function checkTarget(target: MigrationFlagTarget): MigrationFlagTarget {
  const parsed = targetSchema.safeParse(target);
  if (!parsed.success) {
    throw new ValidationError(
      'migration flags target must be a migration or { stageFlagKey, percentFlagKey, name? } with non-empty keys',
      { cause: parsed.error },
    );
  }
  checkFlagKey(target.stageFlagKey);
  checkFlagKey(target.percentFlagKey);
  return target;
}

function label(target: MigrationFlagTarget): string {
  return target.name === undefined ? `flags "${target.stageFlagKey}"` : `migration "${target.name}"`;
}

function checkChange(target: MigrationFlagTarget, change: MigrationFlagChange): MigrationFlagChange {
  const parsed = changeSchema.safeParse(change);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new ValidationError(`${label(target)}: unknown flag change "${issue.keys[0]}"; give stage and/or percent`);
    }
    const field = String(issue.path[0] ?? 'change');
    const value = (change as Record<string, unknown> | null)?.[field];
    throw new ValidationError(
      `${label(target)}: ${field} ${issue.message}, got ${JSON.stringify(value) ?? 'undefined'}`,
      {
        fields: [field],
        cause: parsed.error,
      },
    );
  }
  if (parsed.data.stage === undefined && parsed.data.percent === undefined) {
    throw new ValidationError(`${label(target)}: nothing to change; give a stage and/or a percent`);
  }
  return parsed.data;
}

function stateOf(target: MigrationFlagTarget, records: ReadonlyMap<string, FlagRecord>): MigrationFlagState {
  const stageRecord = records.get(target.stageFlagKey);
  const percentRecord = records.get(target.percentFlagKey);
  const percent = percentRecord?.value;
  const latest = [stageRecord, percentRecord]
    .filter((record) => record !== undefined)
    .sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime())[0];
  return {
    stageFlagKey: target.stageFlagKey,
    percentFlagKey: target.percentFlagKey,
    stage: isStage(stageRecord?.value) ? stageRecord.value : undefined,
    percent: typeof percent === 'number' && percent >= 0 && percent <= 100 ? percent : undefined,
    raw: { stage: stageRecord?.value, percent },
    updatedAt: latest?.updatedAt,
    updatedBy: latest?.updatedBy,
  };
}

/** Whether moving from `from` to `to` changes which columns writes go to. */
function changesWritePath(from: Stage | undefined, to: Stage | undefined): boolean {
  if (to === undefined || from === to) return false;
  if (from === undefined) return true;
  return STAGE_BEHAVIOUR[from].writes.join('+') !== STAGE_BEHAVIOUR[to].writes.join('+');
}

function isMigration(target: MigrationFlagTarget): target is MigrationFlagTarget & Migration {
  return (target as { kind?: unknown }).kind === 'migration';
}

/**
 * Checks a change of a migration's flags (see `checkPromotion`); refuses it unless
 * forced. Key-only targets are checked for leaving `complete` only: without the
 * migration's columns nothing else is known.
 */
async function checkChangeAllowed(
  tx: Queryable,
  target: MigrationFlagTarget,
  before: MigrationFlagState,
  change: MigrationFlagChange,
  options: SetMigrationFlagsOptions,
): Promise<PromotionCheck | undefined> {
  const fromStage = before.stage ?? target.defaultStage;
  const force = options.force === true;
  if (!isMigration(target) || fromStage === undefined) {
    if (change.stage !== undefined && fromStage === 'complete' && change.stage !== 'complete' && !force) {
      throw new StageTransitionError(
        `${label(target)} is complete: writes since then went to the new columns only, so moving back to "${change.stage}" could serve stale old values; pass { force: true } to do it anyway (with the sync triggers of expand in place, old is filled from new and rampdown is safe)`,
      );
    }
    return undefined;
  }
  const from: FlagPosition = { stage: fromStage, percent: before.percent ?? target.defaultPercent ?? 0 };
  const to: FlagPosition = { stage: change.stage ?? from.stage, percent: change.percent ?? from.percent };
  const check = await checkPromotion(tx, target, from, to, {
    ...(options.stateSchema === undefined ? {} : { stateSchema: options.stateSchema }),
    ...(options.gate === undefined ? {} : { gate: options.gate }),
  });
  if (check.problems.length > 0 && !force) {
    throw new PromotionRefusedError(describeMove(target, from, to), check, '{ force: true }');
  }
  return check;
}

async function applyMigrationChange(
  tx: Queryable,
  table: FlagTable,
  target: MigrationFlagTarget,
  change: MigrationFlagChange,
  options: SetMigrationFlagsOptions & { readonly kind?: 'set' | 'kill' },
): Promise<MigrationFlagsChanged> {
  const records = await readFlags(tx, table, [target.stageFlagKey, target.percentFlagKey], true);
  const before = stateOf(target, records);
  const fromStage = before.stage ?? target.defaultStage;
  // A kill only ever moves reads back to old: it is never held by a check.
  const check = options.kind === 'kill' ? undefined : await checkChangeAllowed(tx, target, before, change, options);
  const changes: FlagChange[] = [];
  if (change.stage !== undefined) changes.push({ key: target.stageFlagKey, value: change.stage });
  if (change.percent !== undefined) changes.push({ key: target.percentFlagKey, value: change.percent });
  await writeFlags(tx, table, changes, options.actor);
  if (target.name !== undefined) {
    await recordEvent(
      tx,
      target.name,
      'stage',
      {
        action: options.kind ?? 'set',
        from: { stage: before.raw.stage ?? null, percent: before.raw.percent ?? null },
        to: { stage: change.stage ?? before.raw.stage ?? null, percent: change.percent ?? before.raw.percent ?? null },
        // Percent-only and read-side stage moves leave the write path alone; readers of the
        // log (the contract gate) can tell them apart by this.
        writePathChanged: changesWritePath(fromStage, change.stage),
        ...(options.actor === undefined ? {} : { actor: options.actor }),
        ...(options.reason === undefined ? {} : { reason: options.reason }),
        ...(check?.evidence === undefined ? {} : { gate: check.evidence.summary }),
        ...(options.force === true ? { forced: true } : {}),
        ...(options.force === true && check !== undefined && check.problems.length > 0
          ? { overridden: check.problems }
          : {}),
      },
      options.stateSchema,
    );
  }
  const after = stateOf(target, await readFlags(tx, table, [target.stageFlagKey, target.percentFlagKey]));
  return { before, after, check };
}

/**
 * Sets one flag to a JSON value and notifies every provider listening on the table, in one
 * transaction. Creates the table when missing.
 *
 * @throws {ValidationError} when the key or value is invalid.
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createPgDriver } from 'flagshift/pg';
 * import { setFlag } from 'flagshift/postgres-flags';
 *
 * const driver = createPgDriver(new pg.Pool({ connectionString: process.env.DATABASE_URL }));
 * await setFlag(driver, 'checkout.new-flow', true);
 * ```
 */
export async function setFlag(
  db: FlagStoreDb,
  key: string,
  value: FlagValue,
  options: FlagWriteOptions = {},
): Promise<void> {
  const table = resolveFlagTable(options, 'postgres flags');
  checkFlagKey(key);
  checkFlagValue(key, value);
  await ensureFlagTable(db, table);
  await db.transaction((tx) => writeFlags(tx, table, [{ key, value }], options.actor));
}

/** Removes one flag (evaluations then report `FLAG_NOT_FOUND`) and notifies the providers. */
export async function removeFlag(db: FlagStoreDb, key: string, options: FlagWriteOptions = {}): Promise<void> {
  const table = resolveFlagTable(options, 'postgres flags');
  checkFlagKey(key);
  await ensureFlagTable(db, table);
  await db.transaction((tx) => writeFlags(tx, table, [{ key, value: undefined }], options.actor));
}

/** Every stored flag, by key. An empty map when the table does not exist yet. */
export async function getFlags(db: Queryable, options: FlagTableOptions = {}): Promise<Map<string, FlagRecord>> {
  const table = resolveFlagTable(options, 'postgres flags');
  if (!(await flagTableExists(db, table))) return new Map();
  return readFlagTable(db, table);
}

/**
 * Changes a migration's stage and/or read percentage in one transaction that also notifies
 * every provider and, when the target has a name, logs a `stage` event for the contract
 * gate. The change is validated first: the stage must be one of the six, the percentage a
 * number from 0 to 100. For a migration from `defineMigration`, it is then checked in the
 * same transaction (see `checkPromotion` in `flagshift/lifecycle`): the target stage must
 * fit the schema (new columns added before they are written, old ones not dropped), reads
 * go new only after the backfill finished, and a move that serves more new data (into
 * `live`, a higher read percentage, `rampdown`, `complete`) needs the fleet's published
 * evidence since the last stage change. Moving back is never held for evidence.
 *
 * @throws {ValidationError} when the change is invalid; nothing is written.
 * @throws {PromotionRefusedError} (a `StageTransitionError`) when a check refuses it and
 *   `force` is not set; nothing is written. Its message says what is missing ("412 of 1000 comparisons since 14:02:07
 *   UTC; 0 mismatches").
 * @example
 * ```ts
 * import { setMigrationFlags } from 'flagshift/postgres-flags';
 *
 * await setMigrationFlags(driver, usernameRename, { stage: 'live', percent: 10 }, { actor: 'ada' });
 * ```
 */
export async function setMigrationFlags(
  db: FlagStoreDb,
  migration: MigrationFlagTarget,
  change: MigrationFlagChange,
  options: SetMigrationFlagsOptions = {},
): Promise<MigrationFlagState> {
  return (await changeMigrationFlags(db, migration, change, options)).after;
}

/**
 * {@link setMigrationFlags}, returning the flags before and after the change and what the
 * promotion checks found, all read in the transaction that wrote it.
 *
 * @throws as {@link setMigrationFlags}.
 */
export async function changeMigrationFlags(
  db: FlagStoreDb,
  migration: MigrationFlagTarget,
  change: MigrationFlagChange,
  options: SetMigrationFlagsOptions = {},
): Promise<MigrationFlagsChanged> {
  const table = resolveFlagTable(options, 'postgres flags');
  const target = checkTarget(migration);
  const checked = checkChange(target, change);
  resolveGate(options.gate);
  if (!(await flagTableExists(db, table))) {
    // Every flag is unset: checked before the table is made, so a refused change leaves
    // no table behind either. The transaction below checks again, against what it locks.
    await checkChangeAllowed(db, target, stateOf(target, new Map()), checked, options);
  }
  await ensureFlagTable(db, table);
  return db.transaction((tx) => applyMigrationChange(tx, table, target, checked, options));
}

/** A migration's stored stage and read percentage. Unset flags read as `undefined`. */
export async function getMigrationFlags(
  db: Queryable,
  migration: MigrationFlagTarget,
  options: FlagTableOptions = {},
): Promise<MigrationFlagState> {
  const table = resolveFlagTable(options, 'postgres flags');
  const target = checkTarget(migration);
  const records = (await flagTableExists(db, table))
    ? await readFlags(db, table, [target.stageFlagKey, target.percentFlagKey])
    : new Map<string, FlagRecord>();
  return stateOf(target, records);
}

/**
 * The kill switch ({@link KILL_SWITCH}, docs/STAGES.md "Kill"): sends every read of a
 * migration back to the old columns at once, and keeps writing both sides. Never held by
 * the promotion gate.
 *
 * - `shadow`, `live` and `rampdown` become `dualwrite` (and the read percentage `0`, so a
 *   later return to `live` starts from nobody).
 * - `off` and `dualwrite` already read old only: nothing changes.
 * - Never `off` once dual writes began: in `off` the new columns stop receiving writes and
 *   drift from the old ones, so the backfill and verification done so far would be lost
 *   and moving forward again would start from scratch (and serve drifted values in `live`
 *   had anyone skipped re-verifying). `dualwrite` is as safe for readers and loses nothing.
 * - `complete` is refused: its writes reached the new columns only, so reading old would
 *   serve stale values. Step back deliberately with `setMigrationFlags(..., { force })`.
 *
 * An unset stage flag counts as the migration's `defaultStage` when the target has one;
 * without it there is nothing known to kill, and the call is refused.
 *
 * @throws {StageTransitionError} for a complete migration or an unknown stage.
 * @example
 * ```ts
 * import { killMigration } from 'flagshift/postgres-flags';
 *
 * const { before, after } = await killMigration(driver, usernameRename, { reason: 'mismatches in live' });
 * ```
 */
export async function killMigration(
  db: FlagStoreDb,
  migration: MigrationFlagTarget,
  options: FlagWriteOptions = {},
): Promise<KillResult> {
  const table = resolveFlagTable(options, 'postgres flags');
  const target = checkTarget(migration);
  await ensureFlagTable(db, table);
  return db.transaction(async (tx) => {
    const before = stateOf(target, await readFlags(tx, table, [target.stageFlagKey, target.percentFlagKey], true));
    const current = before.stage ?? (before.raw.stage === undefined ? target.defaultStage : undefined);
    if (current === undefined) {
      throw new StageTransitionError(
        `${label(target)}: stage flag "${target.stageFlagKey}" ${
          before.raw.stage === undefined ? 'is not set' : `holds ${JSON.stringify(before.raw.stage)}, not a stage`
        }, so it is unknown whether dual writes began; set a stage explicitly`,
      );
    }
    if (current === 'complete') {
      throw new StageTransitionError(
        `${label(target)} is complete: the old columns no longer receive writes, so reads can't go back to them; nothing changed`,
      );
    }
    if (current === 'off' || current === 'dualwrite') return { before, after: before, changed: false };
    const { after } = await applyMigrationChange(tx, table, target, KILL_SWITCH, {
      ...options,
      kind: 'kill',
    });
    return { before, after, changed: true };
  });
}
