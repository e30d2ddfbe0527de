/**
 * Contract: the last, irreversible step. It makes required new columns `NOT NULL`
 * without a long lock (a `CHECK (... IS NOT NULL) NOT VALID`, validated under a weak lock,
 * lets `SET NOT NULL` skip its table scan), ties a side table to the main table with a
 * foreign key (`NOT VALID`, then validated), drops the sync triggers, and drops the old
 * columns. It refuses to run until every process is at stage `complete` and verification
 * passed after the last change to the write path, unless forced, and a forced run is logged.
 */
import { z } from 'zod';
import { loadFunctionSources, loadTableCatalog, type TableCatalog } from '../../catalog/index.js';
import { type Driver, parseOptions, type Queryable, StageTransitionError } from '../../kernel/index.js';
import { type BoundColumn, type Migration, type QualifiedName, STAGES, type Stage } from '../../model/index.js';
import {
  DEFAULT_STATE_SCHEMA,
  type LifecycleOptions,
  lastVerification,
  lastWritePathChange,
  lifecycleOptionExpectations,
  lifecycleOptionsShape,
  lockMigration,
  recordEvent,
  stateTablesExist,
  type VerificationRecord,
  verifiedBefore,
} from '../state/index.js';
import { derivedIdentifier } from './names.js';
import {
  type BeforeStep,
  type DdlOptions,
  type DdlReport,
  type DdlStep,
  ddlOptionExpectations,
  ddlOptionsOf,
  ddlOptionsShape,
  runDdl,
} from './run-ddl.js';
import { syncTriggerObjects } from './sync-triggers.js';

/** Options of {@link planContract}. */
export interface ContractPlanOptions extends LifecycleOptions {
  /**
   * Plan as if expand had run: the sync triggers and new columns are taken to exist. For
   * showing a whole lifecycle before anything ran (`planMigration`).
   * @default false
   */
  readonly assumeExpanded?: boolean;
}

/** Options of {@link contract}. */
export interface ContractOptions extends DdlOptions {
  /**
   * Run although the gate is closed (the stage is not `complete`, or verification has not
   * passed since the last write-path change). The override is recorded in the event log
   * (kind `force`) with the reason it was needed.
   * @default false
   */
  readonly force?: boolean;
  /**
   * The stage every process is at, from your flag system. Contract drops the old columns,
   * which every stage before `complete` still reads or writes, so it refuses unless this
   * is `complete` (or `force`, logged). Required: flagshift can't know where your
   * applications are.
   */
  readonly stage?: Stage;
  /** Who runs it, recorded with a `force` event (the CLI passes the operator). */
  readonly actor?: string;
  /**
   * Reads the stage every process is at now, from your flag system, in the transaction
   * of each step, under the migration's lock. Contract stops before a step when it is no
   * longer `complete` (unless `force`). Without it, contract still stops when a write-path
   * change was logged after its gate (as `flagshift flags set` logs every stage move).
   * @default undefined
   */
  readonly currentStage?: (db: Queryable) => Promise<Stage | undefined>;
}

/** Options of {@link contractGate}. */
export interface ContractGateOptions {
  /** Schema of flagshift's state tables. @default 'flagshift' */
  readonly stateSchema?: string;
  /** The stage every process is at; the gate is closed unless it is `complete`. */
  readonly stage?: Stage | undefined;
}

/** Whether contract may run, and why not. */
export interface ContractGate {
  readonly ok: boolean;
  /** Why it may or may not run, one line. */
  readonly reason: string;
  /**
   * What closes the gate: the `stage` (not `complete`, or not given) or the `verification`
   * (none, failed, sampled, or started before the last write-path change). The stage is checked
   * first, since moving it (as a `stage` event) makes a verification stale; when both close
   * the gate, `reason` names both.
   */
  readonly closedBy: 'stage' | 'verification' | undefined;
  readonly verification: VerificationRecord | undefined;
  readonly lastWritePathChange: Date | undefined;
}

/** What {@link contract} did. */
export interface ContractReport {
  readonly migration: string;
  readonly gate: ContractGate;
  /** Whether the gate was overridden with `force`. */
  readonly forced: boolean;
  readonly steps: readonly DdlStep[];
  readonly ddl: DdlReport;
}

const planOptionsSchema = z.strictObject({ ...lifecycleOptionsShape, assumeExpanded: z.boolean().optional() });
const contractOptionsSchema = z.strictObject({
  ...ddlOptionsShape,
  force: z.boolean().optional(),
  stage: z.enum(STAGES).optional(),
  actor: z.string().optional(),
  currentStage: z.custom<(db: Queryable) => Promise<Stage | undefined>>((v) => typeof v === 'function').optional(),
});
const gateOptionsSchema = z.strictObject({
  stateSchema: lifecycleOptionsShape.stateSchema,
  stage: z.enum(STAGES).optional(),
});

const EXPECTED = {
  ...ddlOptionExpectations,
  assumeExpanded: 'a boolean',
  force: 'a boolean',
  stage: `one of ${STAGES.join(', ')}`,
  actor: 'a string',
  currentStage: 'a function',
};

/** What each of {@link ContractGateOptions} must be. */
const GATE_EXPECTED = { stateSchema: lifecycleOptionExpectations.stateSchema, stage: EXPECTED.stage };

/**
 * The steps that contract `migration` from the current state of the database, in order:
 * for each required new column, `ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID`,
 * `VALIDATE CONSTRAINT`, `SET NOT NULL`, `DROP CONSTRAINT`; for a side table without a
 * foreign key to the main table, one added `NOT VALID` and validated; `DROP NOT NULL` on
 * old columns (once the triggers are gone nothing fills them); the sync triggers and
 * functions dropped; the old columns dropped. A new column is required when its entity
 * field is neither optional nor nullable. Only what is still to do is planned.
 *
 * @example
 * ```ts
 * import { planContract } from 'flagshift/lifecycle';
 *
 * for (const step of await planContract(driver, usernameRename)) console.log(`${step.sql};`);
 * ```
 */
export async function planContract(
  db: Queryable,
  migration: Migration,
  options: ContractPlanOptions = {},
): Promise<DdlStep[]> {
  parseOptions(`contract of migration "${migration.name}"`, planOptionsSchema, options ?? {}, EXPECTED);
  const assume = options.assumeExpanded === true;
  const mainTable = migration.table.table;
  const main = await loadTableCatalog(db, mainTable);
  const catalogs = new Map<string, TableCatalog>([[mainTable.quoted, main]]);
  for (const side of migration.sideTables) {
    catalogs.set(side.table.quoted, await loadTableCatalog(db, side.table));
  }
  const steps: DdlStep[] = [];

  // NOT NULL on required new columns.
  const shape = migration.table.entity.shape as Record<string, z.ZodType>;
  for (const mapping of migration.mappings) {
    const table = mapping.newTable?.table ?? mainTable;
    const catalog = catalogs.get(table.quoted)!;
    for (const [index, column] of mapping.newColumns.entries()) {
      const field = shape[mapping.fields[index]!]!;
      if (field.isOptional() || field.isNullable()) continue;
      const existing = catalog.columns.get(column.name);
      if (existing === undefined && !assume) continue;
      steps.push(...notNullSteps(table, column, catalog, existing?.notNull === true));
    }
  }

  // Foreign keys from side tables to the main table.
  for (const side of migration.sideTables) {
    const catalog = catalogs.get(side.table.quoted)!;
    if (!catalog.exists && !assume) continue;
    steps.push(...foreignKeySteps(migration, side.table, side.keyColumns, catalog, main));
  }

  // The sync objects, then the old columns.
  const objects = syncTriggerObjects(migration);
  const oldColumns = migration.mappings.flatMap((mapping) => mapping.oldColumns);
  const present = oldColumns.filter((column) => main.columns.has(column.name));
  const required = present.filter((column) => main.columns.get(column.name)!.notNull);
  const triggers = objects.triggers.filter(
    (trigger) => assume || catalogs.get(trigger.table.quoted)?.triggers.has(trigger.name),
  );
  const sources = await loadFunctionSources(
    db,
    objects.functions.map((fn) => fn.name),
  );
  const functions = objects.functions.filter((fn) => assume || sources.get(fn.name) !== undefined);
  if (required.length > 0 && triggers.length > 0) {
    steps.push({
      phase: 'contract',
      description: `drop NOT NULL of old column${required.length > 1 ? 's' : ''} ${required.map((c) => c.name).join(', ')} of ${mainTable.display} (nothing fills them once the sync triggers are gone)`,
      sql: `ALTER TABLE ${mainTable.quoted} ${required.map((column) => `ALTER COLUMN ${column.quoted} DROP NOT NULL`).join(', ')}`,
      transactional: true,
      rollback: `ALTER TABLE ${mainTable.quoted} ${required.map((column) => `ALTER COLUMN ${column.quoted} SET NOT NULL`).join(', ')}`,
    });
  }
  for (const trigger of triggers) {
    steps.push({
      phase: 'contract',
      description: `drop sync trigger "${trigger.name}" on ${trigger.table.display}`,
      sql: trigger.drop,
      transactional: true,
      rollback: trigger.sql,
    });
  }
  for (const fn of functions) {
    // The body as installed (expand compiled it with the catalog's column types), when there is one.
    const source = sources.get(fn.name);
    steps.push({
      phase: 'contract',
      description: `drop sync function ${fn.name}()`,
      sql: fn.drop,
      transactional: true,
      rollback: source === undefined ? fn.sql : fn.sql.replace(fn.body, () => source),
    });
  }
  if (present.length > 0) {
    const readd = present.map((column) => `ADD COLUMN ${column.quoted} ${main.columns.get(column.name)!.type}`);
    steps.push({
      phase: 'contract',
      description: `drop old column${present.length > 1 ? 's' : ''} ${present.map((c) => c.name).join(', ')} of ${mainTable.display}`,
      sql: `ALTER TABLE ${mainTable.quoted} ${present.map((column) => `DROP COLUMN IF EXISTS ${column.quoted}`).join(', ')}`,
      transactional: true,
      rollback: `not reversible in place: the data is gone; ALTER TABLE ${mainTable.quoted} ${readd.join(', ')}, then run expand (sync triggers) and fill the old columns from the new ones with the backward transform`,
    });
  }
  return steps;
}

function notNullSteps(
  table: QualifiedName,
  column: BoundColumn,
  catalog: TableCatalog,
  alreadyNotNull: boolean,
): DdlStep[] {
  const check = derivedIdentifier([table.name, column.name], 'not_null');
  const hasCheck = catalog.constraints.has(check);
  const at = `${table.display}.${column.name}`;
  const drop: DdlStep = {
    phase: 'contract',
    description: `drop the helper check "${check}" of ${at}`,
    sql: `ALTER TABLE ${table.quoted} DROP CONSTRAINT IF EXISTS "${check}"`,
    transactional: true,
    rollback: `ALTER TABLE ${table.quoted} ADD CONSTRAINT "${check}" CHECK (${column.quoted} IS NOT NULL) NOT VALID`,
  };
  if (alreadyNotNull) return hasCheck ? [drop] : [];
  const steps: DdlStep[] = [];
  if (!hasCheck) {
    steps.push({
      phase: 'contract',
      description: `add check ${at} IS NOT NULL, not yet validated (no table scan under a strong lock)`,
      sql: `ALTER TABLE ${table.quoted} ADD CONSTRAINT "${check}" CHECK (${column.quoted} IS NOT NULL) NOT VALID`,
      transactional: true,
      rollback: `ALTER TABLE ${table.quoted} DROP CONSTRAINT IF EXISTS "${check}"`,
    });
  }
  steps.push(
    {
      phase: 'contract',
      description: `validate check "${check}" (scans ${table.display} under SHARE UPDATE EXCLUSIVE: writes go on)`,
      sql: `ALTER TABLE ${table.quoted} VALIDATE CONSTRAINT "${check}"`,
      transactional: true,
      rollback: 'nothing to undo: validation changes no data',
    },
    {
      phase: 'contract',
      description: `set ${at} NOT NULL (the validated check spares the scan)`,
      sql: `ALTER TABLE ${table.quoted} ALTER COLUMN ${column.quoted} SET NOT NULL`,
      transactional: true,
      rollback: `ALTER TABLE ${table.quoted} ALTER COLUMN ${column.quoted} DROP NOT NULL`,
    },
    drop,
  );
  return steps;
}

function foreignKeySteps(
  migration: Migration,
  side: QualifiedName,
  keyColumns: readonly BoundColumn[],
  catalog: TableCatalog,
  main: TableCatalog,
): DdlStep[] {
  const existing = [...catalog.constraints.values()].filter(
    (constraint) => constraint.type === 'f' && main.oid !== undefined && constraint.references === main.oid,
  );
  const name = derivedIdentifier([side.name, migration.table.table.name], 'fkey');
  const validate = (constraint: string): DdlStep => ({
    phase: 'contract',
    description: `validate foreign key "${constraint}" of ${side.display} (SHARE UPDATE EXCLUSIVE: writes go on)`,
    sql: `ALTER TABLE ${side.quoted} VALIDATE CONSTRAINT "${constraint}"`,
    transactional: true,
    rollback: 'nothing to undo: validation changes no data',
  });
  if (existing.some((constraint) => constraint.validated)) return [];
  if (existing.length > 0) return [validate(existing[0]!.name)];
  const mainKeys = migration.table.keyFields.map((field) => migration.table.columns[field]!.quoted);
  return [
    {
      phase: 'contract',
      description: `add foreign key "${name}" from ${side.display} to ${migration.table.table.display}, not yet validated`,
      sql: `ALTER TABLE ${side.quoted} ADD CONSTRAINT "${name}" FOREIGN KEY (${keyColumns.map((c) => c.quoted).join(', ')}) REFERENCES ${migration.table.table.quoted} (${mainKeys.join(', ')}) ON DELETE CASCADE ON UPDATE CASCADE NOT VALID`,
      transactional: true,
      rollback: `ALTER TABLE ${side.quoted} DROP CONSTRAINT IF EXISTS "${name}"`,
    },
    validate(name),
  ];
}

/**
 * Whether `migration` may be contracted: every process is at stage `complete` (the
 * caller says so in `stage`), and the latest verification passed, over every row, and
 * started after the latest write-path change (expand, contract or stage event): one that
 * was already scanning when the write path changed proves nothing about the rows it had
 * passed. Reads the
 * state tables without creating them.
 */
export async function contractGate(
  db: Queryable,
  migration: Migration,
  options: ContractGateOptions = {},
): Promise<ContractGate> {
  const subject = `contract of migration "${migration.name}" refused`;
  const { stateSchema = DEFAULT_STATE_SCHEMA, stage } = parseOptions(
    `${subject}:`,
    gateOptionsSchema,
    options ?? {},
    GATE_EXPECTED,
  );
  const stateExists = await stateTablesExist(db, stateSchema, ['verifications', 'events']);
  const verification = stateExists ? await lastVerification(db, migration.name, stateSchema) : undefined;
  const changed = stateExists ? await lastWritePathChange(db, migration.name, stateSchema) : undefined;
  const gate = (closedBy: ContractGate['closedBy'], reason: string): ContractGate => ({
    ok: closedBy === undefined,
    reason,
    closedBy,
    verification,
    lastWritePathChange: changed,
  });
  const problem = verificationProblem(verification, changed);
  if (stage !== 'complete') {
    // The verification's verdict too, so an override records everything it overrode.
    return gate(
      'stage',
      `${subject}: ${stage === undefined ? 'no stage given' : `its stage is "${stage}"`}; every stage before complete still reads or writes the old columns${problem === undefined ? '' : `; and ${problem}`}`,
    );
  }
  if (problem !== undefined) return gate('verification', `${subject}: ${problem}`);
  return gate(
    undefined,
    `stage complete, and verification passed (started ${verification!.startedAt.toISOString()}, finished ${verification!.at.toISOString()}, ${verification!.checkedRows} rows) after the last write-path change`,
  );
}

/** What is wrong with the latest verification for contract, or `undefined` when nothing is. */
function verificationProblem(
  verification: VerificationRecord | undefined,
  changed: Date | undefined,
): string | undefined {
  if (verification === undefined) return 'it has never been verified; run verify first';
  const at = verification.at.toISOString();
  if (verification.sample !== undefined && verification.sample < 1) {
    // 0.07 * 100 is 7.000000000000001: rounded to what an operator typed.
    const percent = Number((verification.sample * 100).toPrecision(12));
    return `the last verification (${at}) checked a ${percent}% sample; contract needs one over every row`;
  }
  if (!verification.passed) {
    const nulls = (verification.nullColumns ?? []).map(
      ({ column, rows }) => `; ${rows} NULL in ${column}, which contract makes NOT NULL`,
    );
    return `the last verification (${at}) failed: ${verification.mismatchedRows} mismatched and ${verification.missingRows} missing of ${verification.checkedRows} rows checked${nulls.join('')}; fix them and verify again`;
  }
  if (changed !== undefined && verifiedBefore(verification, changed)) {
    // Its end may be later: a verification already scanning when the write path changed
    // passed some rows before the change, and those may have been written differently since.
    return `the last verification (started ${verification.startedAt.toISOString()}, finished ${at}) started before the last write-path change (${changed.toISOString()}); verify again`;
  }
  return undefined;
}

/**
 * What runs before each contract step, in its transaction: takes the migration's lock
 * (which a flag change takes too, before its checks), then stops the run when the write
 * path changed since the gate was checked or the stage is no longer `complete`. Between
 * the gate and the last step a step may wait and retry on its table's lock for a while,
 * and a flag change made meanwhile must not meet dropped columns.
 */
function stepGuard(
  migration: Migration,
  gate: ContractGate,
  steps: readonly DdlStep[],
  forced: boolean,
  options: ContractOptions,
): BeforeStep {
  const stateSchema = options.stateSchema ?? DEFAULT_STATE_SCHEMA;
  return async (tx, step) => {
    await lockMigration(tx, migration.name, stateSchema);
    const index = steps.indexOf(step);
    const done =
      index <= 0
        ? 'nothing was changed'
        : `the ${index} step${index > 1 ? 's' : ''} before it ran (${steps
            .slice(0, index)
            .map((s) => s.description)
            .join('; ')})`;
    const stop = (closedBy: ContractGate['closedBy'], why: string, changed: Date | undefined) => {
      throw new ContractStoppedError(
        {
          ...gate,
          ok: false,
          closedBy,
          lastWritePathChange: changed ?? gate.lastWritePathChange,
          reason: `contract of migration "${migration.name}" stopped before "${step.description}": ${why}; ${done}`,
        },
        step,
      );
    };
    const changed = await lastWritePathChange(tx, migration.name, stateSchema);
    if (changed !== undefined && (gate.lastWritePathChange === undefined || changed > gate.lastWritePathChange)) {
      stop(
        'verification',
        `its write path changed at ${changed.toISOString()} (a stage move or schema change), after contract checked its gate`,
        changed,
      );
    }
    if (options.currentStage !== undefined && !forced) {
      const stage = await options.currentStage(tx);
      if (stage !== 'complete') {
        stop('stage', `its stage is now ${stage === undefined ? 'unknown' : `"${stage}"`}, not complete`, changed);
      }
    }
  };
}

/**
 * {@link contract} refused: the gate was closed and `force` not set. Nothing was changed.
 */
export class ContractRefusedError extends StageTransitionError {
  /** The closed gate: why, and what closed it. */
  readonly gate: ContractGate;

  constructor(gate: ContractGate) {
    const hint =
      gate.closedBy === 'stage'
        ? " (pass stage: 'complete' once every process is there, or force: true, which is logged)"
        : ' (or pass force: true, which is logged)';
    super(`${gate.reason}${hint}`);
    this.gate = gate;
  }
}

/**
 * {@link contract} stopped part-way, forced or not: before `step`, under the migration's
 * lock, it found the write path changed or the stage moved since it checked its gate. The
 * steps before `step` ran (none of them drops anything a stage before `complete` needs,
 * unless the stage moved after they ran); `step` and those after it did not. Unlike a
 * {@link ContractRefusedError}, something may have changed.
 */
export class ContractStoppedError extends StageTransitionError {
  /** The gate as the step found it closed: why, and what closed it. */
  readonly gate: ContractGate;
  /** The step that did not run. */
  readonly step: DdlStep;

  constructor(gate: ContractGate, step: DdlStep) {
    super(`${gate.reason}; once every process is back at complete, verify again and run contract again to finish`);
    this.gate = gate;
    this.step = step;
  }
}

/**
 * Contracts `migration`: checks the gate (see {@link contractGate}), plans (see
 * {@link planContract}) and runs the steps (see `runDdl`), and records a `contract`
 * event. Throws a {@link ContractRefusedError} when the gate is closed, unless `force`
 * is set, in which case a `force` event records the override first. A dry run checks the
 * gate (reported, not enforced), returns the SQL and changes nothing.
 *
 * @example
 * ```ts
 * import { contract } from 'flagshift/lifecycle';
 *
 * const report = await contract(driver, usernameRename, { stage: 'complete' }); // after verify passed
 * console.log(report.ddl.sql.join(';\n'));
 * ```
 */
export async function contract(
  driver: Driver,
  migration: Migration,
  options: ContractOptions = {},
): Promise<ContractReport> {
  parseOptions(`contract of migration "${migration.name}"`, contractOptionsSchema, options ?? {}, EXPECTED);
  const dryRun = options.dryRun === true;
  const gate = await contractGate(driver, migration, {
    ...(options.stateSchema === undefined ? {} : { stateSchema: options.stateSchema }),
    stage: options.stage,
  });
  const forced = !gate.ok && options.force === true;
  if (!gate.ok && !forced && !dryRun) throw new ContractRefusedError(gate);
  const steps = await planContract(
    driver,
    migration,
    options.stateSchema === undefined ? {} : { stateSchema: options.stateSchema },
  );
  if (forced && !dryRun) {
    await recordEvent(
      driver,
      migration.name,
      'force',
      {
        action: 'contract',
        overridden: gate.reason,
        steps: steps.map((step) => step.description),
        ...(options.actor === undefined ? {} : { actor: options.actor }),
      },
      options.stateSchema,
    );
  }
  const ddl = await runDdl(
    driver,
    steps,
    { ...ddlOptionsOf(options), migration: migration.name },
    stepGuard(migration, gate, steps, forced, options),
  );
  if (!dryRun && steps.length > 0) {
    await recordEvent(
      driver,
      migration.name,
      'contract',
      { forced, steps: ddl.steps.map((step) => ({ description: step.step.description, attempts: step.attempts })) },
      options.stateSchema,
    );
  }
  return { migration: migration.name, gate, forced, steps, ddl };
}
